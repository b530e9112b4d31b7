"""A TLS echo server on the twisted_sslfile engine, with plain blocking sockets.

Run it from the repository root::

    python examples/echo_server.py                  # 127.0.0.1:8443, fresh cert
    python examples/echo_server.py --cert cert.pem --key key.pem --port 9443

Without ``--cert``/``--key`` it makes a self-signed certificate for
``localhost`` and 127.0.0.1, writes it to a temporary directory and prints
the path and SHA-256 fingerprint, so a client can trust exactly that
certificate (``examples/echo_client.py --cafile PATH``, ``openssl s_client
-CAfile PATH``, ``curl --cacert PATH``).

One thread per connection drives the sans-I/O engine by hand: bytes from the
socket go into ``Connection.receive_data``, events come back, and
``data_to_send()`` goes out.  That loop is all an adapter does; the Twisted
adapter does the same from a reactor.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading

# Run from a checkout without installing: the package is one level up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted_sslfile import x509
from twisted_sslfile.constants import ClientCertificatePolicy
from twisted_sslfile.context import Context, Credential
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import (
    ApplicationData,
    CloseNotify,
    HandshakeCompleted,
)
from twisted_sslfile.errors import TLSError

#: A connection silent for this long is dropped, so threads do not pile up.
IDLE_TIMEOUT = 300.0


def log(message: str) -> None:
    """One line per event, flushed at once: threads share stdout."""
    print(message, flush=True)


def make_credential(args: argparse.Namespace) -> tuple[Credential, str]:
    """Load --cert/--key, or generate and save a self-signed certificate.

    Returns the credential and the path of its certificate file.
    """
    if args.cert:
        credential = Credential.from_files(args.cert, args.key)
        cert_path = os.path.abspath(args.cert)
        print(f"certificate: {cert_path}")
    else:
        cert, key = x509.generate_self_signed(
            ["localhost", "127.0.0.1"], key_type=args.key_type
        )
        directory = tempfile.mkdtemp(prefix="sslfile-echo-")
        cert_path = x509.write_pem(os.path.join(directory, "cert.pem"), cert)
        x509.write_pem(os.path.join(directory, "key.pem"), key)
        credential = Credential([cert], key)
        print(f"certificate: {cert_path} (self-signed, {args.key_type})")
    fingerprint = x509.fingerprint_sha256(credential.certificate)
    print(f"SHA-256 fingerprint: {fingerprint}")
    return credential, cert_path


def serve_connection(context: Context, sock: socket.socket, peer: str) -> None:
    """Echo one client until it closes; every failure ends only this client."""
    conn = Connection(context, is_client=False)
    sock.settimeout(IDLE_TIMEOUT)
    try:
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    log(f"{peer}: closed without close_notify")
                    return
                try:
                    events = conn.receive_data(data)
                except TLSError as e:
                    sock.sendall(conn.data_to_send())  # the alert
                    log(f"{peer}: TLS error: {e}")
                    return
                for event in events:
                    if isinstance(event, HandshakeCompleted):
                        alpn = (
                            event.alpn_protocol.decode() if event.alpn_protocol else "-"
                        )
                        log(
                            f"{peer}: {event.version.name} {event.cipher_suite.name} "
                            f"group={event.group.name if event.group else '-'} "
                            f"alpn={alpn} sni={event.server_name or '-'}"
                        )
                    elif isinstance(event, ApplicationData):
                        conn.send(event.data)
                    elif isinstance(event, CloseNotify):
                        conn.close()
                sock.sendall(conn.data_to_send())
                if conn.received_close_notify:
                    log(f"{peer}: closed")
                    return
    except OSError as e:
        log(f"{peer}: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", help="PEM certificate chain, leaf first")
    parser.add_argument("--key", help="PEM private key (default: in --cert)")
    parser.add_argument(
        "--key-type",
        default="ecdsa-p256",
        help="key of the generated certificate: ecdsa-p256, rsa-2048, ed25519...",
    )
    parser.add_argument(
        "--alpn", default="", help="comma-separated ALPN protocols, e.g. h2,http/1.1"
    )
    parser.add_argument(
        "--client-ca", help="require client certificates issued by this PEM CA"
    )
    parser.add_argument("--min-version", default="TLSv1.2")
    parser.add_argument("--max-version", default="TLSv1.3")
    args = parser.parse_args(argv)
    if args.key and not args.cert:
        parser.error("--key needs --cert")

    credential, cert_path = make_credential(args)
    context = Context(
        credentials=[credential],
        alpn_protocols=[p for p in args.alpn.split(",") if p],
        min_version=args.min_version,
        max_version=args.max_version,
        trust_roots=args.client_ca,
        client_certificate=(
            ClientCertificatePolicy.REQUIRE
            if args.client_ca
            else ClientCertificatePolicy.NONE
        ),
    )
    listener = socket.create_server((args.host, args.port))
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    print(f"listening on {args.host}:{port}; try")
    print(f"  openssl s_client -connect {args.host}:{port} -CAfile {cert_path}")
    print(
        f"  python examples/echo_client.py --port {port} --cafile {cert_path} hello",
        flush=True,
    )
    try:
        while True:
            sock, address = listener.accept()
            peer = f"{address[0]}:{address[1]}"
            threading.Thread(
                target=serve_connection, args=(context, sock, peer), daemon=True
            ).start()
    except KeyboardInterrupt:
        print("bye")
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
