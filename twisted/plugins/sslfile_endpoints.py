"""Registers the ``sslfile:`` endpoint type with Twisted's plugin system.

``serverFromString`` and ``clientFromString`` load every endpoint-parser
plugin whenever they meet a type Twisted does not build in (``tcp6``,
``systemd``, ...), so this module must be cheap to import and must never
fail: the parsers below import :mod:`twisted_sslfile.endpoints` (and with it
``cryptography``) only when an ``sslfile:`` description is actually parsed.

There is deliberately no ``__init__.py`` in ``twisted/`` or
``twisted/plugins/``: this directory is a portion of Twisted's own plugin
package.
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IReactorCore,
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IStreamServerEndpointStringParser)
class _SSLFileServerParser:
    """``sslfile:`` server descriptions; the work is in twisted_sslfile.endpoints."""

    prefix = "sslfile"

    # The interface types the arguments as object, but a description is a
    # string and Twisted's parser hands over only strings.
    def parseStreamServer(  # type: ignore[override]
        self, reactor: IReactorCore, *args: str, **kwargs: str
    ) -> IStreamServerEndpoint:
        from twisted_sslfile.endpoints import server_from_parsed

        return server_from_parsed(reactor, args, kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class _SSLFileClientParser:
    """``sslfile:`` client descriptions; the work is in twisted_sslfile.endpoints."""

    prefix = "sslfile"

    # As parseStreamServer: Twisted's parser hands over only strings.
    def parseStreamClient(  # type: ignore[override]
        self, reactor: IReactorCore, *args: str, **kwargs: str
    ) -> IStreamClientEndpoint:
        from twisted_sslfile.endpoints import client_from_parsed

        return client_from_parsed(reactor, args, kwargs)


sslfileServerParser = _SSLFileServerParser()
sslfileClientParser = _SSLFileClientParser()
