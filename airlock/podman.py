"""Podman, run with airlock's project-local settings only.

The machine's global containers.conf is never touched: every podman call gets
CONTAINERS_CONF pointing at .airlock/containers.conf (runc instead of crun, lowered
ulimits; see LAB-NOTES: crun refuses hybrid cgroup v1 and the sandbox cannot raise
rlimits).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from airlock.errors import AirlockError, CommandError
from airlock.paths import state_dir

CONTAINERS_CONF = """\
# Written by airlock; project-local podman settings (selected with CONTAINERS_CONF).
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=10000:10000", "nproc=8192:8192"]
"""


def containers_conf() -> Path:
    """Write (if needed) and return the project-local containers.conf."""
    path = state_dir() / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        path.write_text(CONTAINERS_CONF)
    return path


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(containers_conf())
    env["LC_ALL"] = "C"
    return env


def require_podman() -> str:
    path = shutil.which("podman")
    if path is None:
        raise AirlockError(
            "podman is not installed; run scripts/bootstrap (or: apt-get install podman runc)"
        )
    return path


def podman(*args: str, check: bool = True, stdin: bytes | None = None) -> str:
    """Run `podman ARGS...`; return stdout; raise CommandError on failure when check."""
    cmd = [require_podman(), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=podman_env(), check=False)
    if check and proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout.decode(errors="replace")


def remove_container(name: str, attempts: int = 5) -> None:
    """`podman rm -f NAME`, again while podman still finishes stopping it.

    Removing a container that has just been stopped (an e2e stops a host, then tears the
    lab down) can fail with "container state improper: stopped" while podman's own
    cleanup of it runs; a moment later the same command succeeds.
    """
    for attempt in range(1, attempts + 1):
        try:
            podman("rm", "-f", "-t", "2", name)
            return
        except CommandError as exc:
            if "state improper" not in str(exc) or attempt == attempts:
                raise
            time.sleep(2 * attempt)


def podman_ok(*args: str) -> bool:
    cmd = [require_podman(), *args]
    return subprocess.run(cmd, capture_output=True, env=podman_env(), check=False).returncode == 0


def inspect(kind: str, name: str) -> dict[str, Any] | None:
    """`podman KIND inspect NAME` as a dict, or None when it does not exist."""
    cmd = [require_podman(), kind, "inspect", name]
    proc = subprocess.run(cmd, capture_output=True, env=podman_env(), check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or b"[]")
    return data[0] if data else None


def list_json(kind: str, *filters: str) -> list[dict[str, Any]]:
    args = [kind, "ls", "--format", "json"] if kind != "ps" else ["ps", "-a", "--format", "json"]
    for flt in filters:
        args += ["--filter", flt]
    out = podman(*args)
    return json.loads(out or "[]") or []
