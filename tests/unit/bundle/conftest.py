"""Fixtures for the bundle tests: a real HTTP server on loopback that can misbehave."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class Behaviour:
    """How the server answers one path."""

    body: bytes
    cut_first: int = 0  # this many requests send half the body, then close the connection
    fail_first: int = 0  # this many requests get a 503
    ranges: bool = True  # honour Range requests


@dataclass
class Mirror:
    """The running server: what it serves and what it was asked."""

    base: str
    files: dict[str, Behaviour] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    sent: int = 0

    def add(self, path: str, body: bytes, **kwargs: object) -> tuple[str, str]:
        """Serve `body` at `path`; returns (url, sha256)."""
        self.files[path] = Behaviour(body, **kwargs)  # type: ignore[arg-type]
        return f"{self.base}{path}", hashlib.sha256(body).hexdigest()

    def requests_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]


def _handler(mirror: Mirror) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            mirror.log.append((self.path, rng))
            spec = mirror.files.get(self.path)
            if spec is None:
                self.send_error(404)
                return
            if spec.fail_first > 0:
                spec.fail_first -= 1
                self.send_error(503)
                return
            start = 0
            if rng and spec.ranges and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
            body = spec.body[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(spec.body) - 1}/{len(spec.body)}"
                )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if spec.cut_first > 0:
                spec.cut_first -= 1
                half = body[: len(body) // 2]
                self.wfile.write(half)
                mirror.sent += len(half)
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
            mirror.sent += len(body)

    return Handler


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    state = Mirror(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()
