#!/usr/bin/env python3
"""Stand-in for kube-apiserver in tests: HTTPS that answers GET /readyz with 200 "ok".

Every other path answers 404. Each response names the host, so a client going through the
VIP can tell which backend served it. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import http.server
import socket
import ssl


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "airlock-readyz"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/readyz", "/livez", "/healthz"):
            body = f"ok {socket.gethostname()}\n".encode()
            self.send_response(200)
        else:
            body = b"not found\n"
            self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Health checks arrive every few seconds: keep the journal quiet."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=6443, help="port to listen on")
    parser.add_argument("--cert", required=True, help="PEM certificate (chain) of the server")
    parser.add_argument("--key", required=True, help="PEM private key of the server")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    # Handshake in the request thread, so one slow client cannot block accept().
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
