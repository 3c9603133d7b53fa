"""Loopback ports for tests that start real servers.

Binding to port 0 and closing the socket gives a free port, but the kernel may hand the
same port out again on the next call: an etcd member once got one port for both its
client and peer listener and failed with "address already in use". Every port handed out
here is remembered for the life of the test process and never handed out twice.
"""

from __future__ import annotations

import socket
import threading

_GIVEN: set[int] = set()
_LOCK = threading.Lock()
_ATTEMPTS = 200


def free_port() -> int:
    """A loopback TCP port that is free now and that this process has not handed out."""
    with _LOCK:
        for _ in range(_ATTEMPTS):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _GIVEN:
                _GIVEN.add(port)
                return port
    raise RuntimeError(f"no unused loopback port after {_ATTEMPTS} tries")
