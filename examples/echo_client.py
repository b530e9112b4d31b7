"""Talk to examples/echo_server.py (or any TLS echo server) with the engine.

Usage, with the certificate path the server printed::

    python examples/echo_client.py --cafile /tmp/sslfile-echo-XXXX/cert.pem hello
    echo hello | python examples/echo_client.py --cafile cert.pem

The client verifies the server's chain against ``--cafile`` and its name
against ``--server-name`` (default ``localhost``), sends the message, reads
the same number of bytes back, prints them and closes with close_notify.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

# Run from a checkout without installing: the package is one level up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted_sslfile.context import Context
from twisted_sslfile.engine.connection import Connection
from twisted_sslfile.engine.events import ApplicationData, CloseNotify
from twisted_sslfile.errors import TLSError

TIMEOUT = 10.0


def pump(conn: Connection, sock: socket.socket, received: bytearray) -> bool:
    """Send what the engine queued, read once, feed it; False at end of stream."""
    sock.sendall(conn.data_to_send())
    data = sock.recv(65536)
    if not data:
        return False
    try:
        events = conn.receive_data(data)
    finally:
        # On a TLSError this carries our alert to the server.
        sock.sendall(conn.data_to_send())
    for event in events:
        if isinstance(event, ApplicationData):
            received += event.data
        elif isinstance(event, CloseNotify):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message", nargs="*", help="text to send (default: stdin)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--cafile", help="PEM trust roots (default: system roots)")
    parser.add_argument("--alpn", default="", help="comma-separated ALPN protocols")
    parser.add_argument("--cert", help="client certificate chain (PEM)")
    parser.add_argument("--key", help="client private key (default: in --cert)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server (for debugging only)",
    )
    args = parser.parse_args(argv)

    message = (
        " ".join(args.message).encode() if args.message else sys.stdin.buffer.read()
    )
    context = Context(
        trust_roots=args.cafile,
        insecure_skip_verify=args.insecure,
        alpn_protocols=[p for p in args.alpn.split(",") if p],
    )
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    conn = Connection(context, is_client=True, server_name=args.server_name)
    received = bytearray()
    try:
        with socket.create_connection((args.host, args.port), timeout=TIMEOUT) as sock:
            conn.start()
            while not conn.handshake_complete:
                if not pump(conn, sock, received):
                    print("server closed during the handshake", file=sys.stderr)
                    return 1
            print(
                f"connected: {conn.version.name} {conn.cipher_suite.name} "
                f"group={conn.group.name if conn.group else '-'} "
                f"alpn={conn.alpn_protocol.decode() if conn.alpn_protocol else '-'}",
                file=sys.stderr,
            )
            conn.send(message)
            while len(received) < len(message):
                if not pump(conn, sock, received):
                    break
            conn.close()
            sock.sendall(conn.data_to_send())
    except TLSError as e:
        print(f"TLS error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"connection error: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(bytes(received))
    if not received.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    return 0 if bytes(received) == message else 1


if __name__ == "__main__":
    sys.exit(main())
