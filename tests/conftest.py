"""Shared pytest setup: import paths, the airlock CLI, and lab fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Our modules and module_utils are imported as the collection airlock.cluster.
sys.path.insert(0, str(ROOT / "collections"))
VENV_BIN = Path(sys.executable).parent
AIRLOCK = str(VENV_BIN / "airlock")


def run_airlock(
    *args: str, check: bool = False, timeout: float = 900
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        AIRLOCK_HOME=str(ROOT),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    proc = subprocess.run(
        [AIRLOCK, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"airlock {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def popen_airlock(*args: str) -> subprocess.Popen[str]:
    """`airlock ARGS` started in the background, its output (stdout and stderr) a text pipe;
    for tests that act while it runs (kill it at a point, read its progress)."""
    env = dict(
        os.environ,
        AIRLOCK_HOME=str(ROOT),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return subprocess.Popen(
        [AIRLOCK, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )


def podman_json(*args: str) -> list[dict]:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    out = subprocess.run(
        ["podman", *args, "--format", "json"], capture_output=True, text=True, env=env, check=True
    ).stdout
    return json.loads(out or "[]") or []


@contextlib.contextmanager
def lab_hosts(name: str, *up_args: str, timeout: float = 900, keep: bool = False) -> Iterator[Path]:
    """`airlock lab up --name NAME UP_ARGS`, yield its inventory, and always `lab down`.

    The hosts are removed whatever happens: when `lab up` itself fails half-way, when the
    test fails, and when it passes (then a failing `lab down` fails the test too). `keep`
    leaves them for a person to inspect.
    """
    run_airlock("lab", "down", "--name", name)
    passed = False
    try:
        run_airlock("lab", "up", "--name", name, *up_args, check=True, timeout=timeout)
        yield ROOT / ".airlock" / "labs" / name / "inventory"
        passed = True
    finally:
        if not keep:
            down = run_airlock("lab", "down", "--name", name)
            if passed and down.returncode != 0:
                raise AssertionError(f"airlock lab down --name {name} failed:\n{down.stderr}")


def lab_program(name: str) -> Path:
    """The lab bundle's program `name` (containerd, crictl, promtool, ...) for this machine,
    built from its Go module by the lab profile into the lab cache on first use (later runs
    reuse it); without Go, an error that says how to install it."""
    from airlock.arch import host_arch
    from airlock.lab.bundle import gobuild, profile
    from airlock.paths import state_dir

    target = next(t for t in profile.go_targets(profile.release(None)) if t.name == name)
    gobuild.require_go()
    return gobuild.build(target, host_arch(), state_dir() / "cache" / "lab")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def _require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: run scripts/bootstrap (tests never skip silently)")


@pytest.fixture(scope="session")
def test_lab() -> Iterator[dict[str, str]]:
    """A real 3+2 lab named `pytest`, shared by the tests that need hosts; removed after."""
    _require_podman()
    name = "pytest"
    up = ("--masters", "3", "--workers", "2", "--subnet", "10.77.30.0/24")
    with lab_hosts(name, *up) as inventory:
        yield {"name": name, "inventory": str(inventory)}
