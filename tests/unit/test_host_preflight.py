"""airlock.cluster.host_preflight in-process on this machine: every check is reported as data
({check, ok, message, fix}), and a failed one also as the line `problems` has always had."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.modules import host_preflight

from tests.module_harness import run_module

LISTENER = (
    "import socket, sys\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
)


@contextmanager
def listener() -> Iterator[tuple[int, str]]:
    """Another process listening on a free loopback port: (port, its process name)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield port, Path(f"/proc/{proc.pid}/comm").read_text().strip()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")
def test_every_check_is_reported_as_data() -> None:
    with listener() as (busy, me), listener() as (allowed, _):
        result = run_module(
            host_preflight,
            {
                "ip": "127.0.0.1",
                "vip": "192.0.2.250",
                "supported_os": [host_preflight.os_release()],
                "ports": [{"port": busy, "owners": []}, {"port": allowed, "owners": [me]}],
                "min_free_gb": {"/var/lib": 0},
            },
        )
    checks = {(c["check"], c.get("port") or c.get("path")): c for c in result["checks"]}
    assert [c["check"] for c in result["checks"]] == [
        "os",
        "swap",
        "cgroup",
        "port",
        "port",
        "disk",
        "ip",
        "vip",
    ]
    assert checks[("port", busy)]["ok"] is False
    assert checks[("port", busy)]["message"].startswith(f"port {busy}/tcp is in use by {me} (pid ")
    assert checks[("port", busy)]["fix"] == "stop it or move it to another port"
    assert checks[("port", allowed)]["ok"] is True and checks[("port", allowed)]["fix"] == ""
    assert checks[("vip", None)] == {
        "check": "vip",
        "ok": False,
        "message": "airlock_api_vip 192.0.2.250 is outside this host's network 127.0.0.0/8",
        "fix": "choose a free address in 127.0.0.0/8",
    }
    assert all(
        checks[(name, key)]["ok"]
        for name, key in (("os", None), ("ip", None), ("disk", "/var/lib"))
    )
    failed = [f"{c['message']}; {c['fix']}" for c in result["checks"] if not c["ok"]]
    assert result["problems"] == failed and len(failed) == 2


def test_cgroup_v1_passes_with_a_note_that_it_is_deprecated(tmp_path: Path) -> None:
    v1 = host_preflight.cgroup_check(str(tmp_path))
    assert v1["ok"] is True and v1["warning"] is True and v1["cgroup_version"] == 1
    assert "cgroup v1, which Kubernetes deprecates" in v1["message"]
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    v2 = host_preflight.cgroup_check(str(tmp_path))
    assert v2 == {
        "check": "cgroup",
        "ok": True,
        "message": "cgroup v2",
        "fix": "",
        "cgroup_version": 2,
    }
