"""Podman, run with airlock's project-local settings only.

The machine's global containers.conf is never touched: every podman call gets
CONTAINERS_CONF pointing at .airlock/containers.conf. It selects, explicitly, everything
the lab relies on, so the result never depends on what else is on the machine:
- runc instead of crun (crun refuses this kernel's hybrid cgroup v1 layout);
- lowered ulimits (the sandbox cannot raise rlimits);
- the netavark network backend (scripts/bootstrap installs netavark and aardvark-dns).
  Left to itself, podman picks CNI when netavark is missing or CNI configurations exist,
  and a CNI `--internal` network gives this machine no address on the lab's bridge: the
  controller could not reach its own lab hosts.
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

[network]
network_backend = "netavark"
"""

NETWORK_BACKEND = "netavark"


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


# Where podman 4 looks for its helper programs (containers.conf `helper_binaries_dir`).
HELPER_DIRS = (
    "/usr/local/libexec/podman",
    "/usr/local/lib/podman",
    "/usr/libexec/podman",
    "/usr/lib/podman",
)


def require_podman() -> str:
    """podman's path, once podman and the network backend airlock selects are installed."""
    path = shutil.which("podman")
    if path is None:
        raise AirlockError(
            "podman is not installed; run scripts/bootstrap "
            f"(or: apt-get install podman runc {NETWORK_BACKEND} aardvark-dns)"
        )
    if not any(Path(d, NETWORK_BACKEND).is_file() for d in HELPER_DIRS):
        raise AirlockError(
            f"podman's {NETWORK_BACKEND} network backend is not installed (airlock selects it: "
            "with CNI an --internal lab network gives this machine no route to its hosts); "
            f"run scripts/bootstrap (or: apt-get install {NETWORK_BACKEND} aardvark-dns)"
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


def network_backend() -> str:
    """The network backend podman uses under airlock's settings (netavark when bootstrapped).

    Fails with the fix when podman cannot start its backend (e.g. netavark missing).
    """
    cmd = [require_podman(), "info", "--format", "{{.Host.NetworkBackend}}"]
    proc = subprocess.run(cmd, capture_output=True, env=podman_env(), check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise AirlockError(
            f"podman cannot start its network backend ({detail}); run scripts/bootstrap "
            f"(it installs {NETWORK_BACKEND} and aardvark-dns, which "
            f"{state_dir() / 'containers.conf'} selects)"
        )
    return proc.stdout.decode(errors="replace").strip()


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
