"""Registers ``twistd sslfile-echo`` (see :mod:`twisted_sslfile.echo`).

``twistd --help`` loads every service-maker plugin to list it, so this
module only names the implementation: :class:`ServiceMaker` imports
:mod:`twisted_sslfile.echo` when the options or the service are needed.
"""

from __future__ import annotations

from twisted.application.service import ServiceMaker

sslfileEcho = ServiceMaker(
    "sslfile-echo",
    "twisted_sslfile.echo",
    "A TLS echo server on twisted_sslfile (generates a certificate if none is given)",
    "sslfile-echo",
)
