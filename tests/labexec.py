"""Commands on lab hosts for the end-to-end tests: `podman exec` into a host's container,
and waiting for a condition with a deadline.

New e2e modules use these; the older ones (tests/e2e, monitoring, registry, upgrade, storage)
still carry copies of their own.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT


def podman_env() -> dict[str, str]:
    """The environment podman needs for the lab's containers (airlock's containers.conf)."""
    return dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))


def lab_exec(
    lab: str,
    host: str,
    *argv: str,
    check: bool = True,
    stdin: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`argv` on lab host `host` of lab `lab`; with `check`, a non-zero exit fails the test
    naming the host, the command and its error output."""
    proc = subprocess.run(
        ["podman", "exec", "-i", f"airlock-{lab}-{host}", *argv],
        capture_output=True,
        text=True,
        env=podman_env(),
        input=stdin,
        timeout=timeout,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.stderr or proc.stdout}"
    return proc


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 300, every: float = 5) -> Any:
    """`probe()`'s first truthy result within `timeout` seconds; else the test fails naming
    `what` and the last result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not seen within {timeout:.0f}s (last: {last!r})")


def newest_deploy(lab: str) -> Path:
    """The run directory (.airlock/runs/*-site) of the newest deploy on lab `lab`."""
    runs = sorted((ROOT / ".airlock" / "runs").glob("*-site"), key=lambda p: p.name)
    for run in reversed(runs):
        events = run / "events.jsonl"
        if events.is_file() and f"labs/{lab}/inventory" in events.read_text(errors="replace"):
            return run
    raise AssertionError(f"no deploy run of lab {lab} in .airlock/runs")
