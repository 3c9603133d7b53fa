"""What the lab end-to-end tests share to watch a cluster while they change it."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import VENV_BIN


@dataclass
class Probe:
    """Counts answers of a URL asked every `every` seconds until stopped."""

    url: str
    every: float
    context: ssl.SSLContext | None = None
    ok: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2, context=self.context) as r:
                    r.read()
                    self.ok += 1
            except Exception as exc:  # any failure counts; the first few are kept
                self.failed += 1
                if len(self.failures) < 10:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {exc}")
            self.stop.wait(self.every)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


@contextlib.contextmanager
def watching(url: str, every: float, context: ssl.SSLContext | None, label: str) -> Iterator[Probe]:
    """Probe `url` while the block runs; then print how many answered and the first failures.

    The caller asserts on the yielded Probe (`failed == 0`) after the block.
    """
    probe = Probe(url, every, context)
    thread = probe.start()
    try:
        yield probe
    finally:
        probe.stop.set()
        thread.join()
        print(f"\n--- {label}: {probe.ok} probes answered, {probe.failed} failed")
        for failure in probe.failures:
            print(f"  {failure}")


def api_context(kubeconfig: Path) -> ssl.SSLContext:
    """A TLS context that trusts the CA of an admin kubeconfig (read with the venv's yaml)."""
    config = json.loads(
        subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                "import sys,yaml,json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                str(kubeconfig),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as handle:
        handle.write(ca)
    return ssl.create_default_context(cafile=handle.name)
