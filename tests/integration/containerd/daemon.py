"""containerd as a child of a test, on files of the test's own.

Its root, state and socket live under a short temporary directory (a unix socket path must
stay under 108 bytes); readiness is a command polled with a deadline; it is stopped, and its
state unmounted, after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

READY_DEADLINE = 30.0


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A new directory /tmp/ctrd-XXXXXXXX, removed on exit."""
    base = Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running(
    binary: str | Path, config: Path, base: Path, ready: Sequence[str | Path]
) -> Iterator[Path]:
    """`binary --config CONFIG` with its root and state under `base`, until exit; `ready`
    is a command that succeeds once it answers. Yields the path of its log."""
    if os.geteuid() != 0:
        pytest.fail("containerd needs root to mount snapshots: run the tests as root")
    log_path = base / "containerd.log"
    argv = [binary, "--config", config, "--root", base / "root", "--state", base / "state"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + READY_DEADLINE
            while subprocess.run(ready, capture_output=True, check=False).returncode != 0:
                if proc.poll() is not None:
                    pytest.fail(f"containerd exited: {log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"containerd did not answer within {READY_DEADLINE:.0f} s: "
                        f"{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
            yield log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            # Snapshots are mounted only while containers run; none ran, so removal is safe.
            subprocess.run(["umount", "-R", base / "state"], capture_output=True, check=False)
