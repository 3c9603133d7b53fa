"""Conformance test images as the suite uses them, run in podman.

busybox: built here from busybox 1.37.0's release tarball, because the ConfigMap and Secret
envFrom specs print `sh -c env` and expect names that are not shell identifiers
(`data-1=value-1`, `1-data-1=...`) in it; Debian's busybox (a Debian patch to ash) and dash
drop them. nonroot: Debian's Essential packages with USER 1234, as the image config says.
The first run builds busybox (about a minute on 2 cores) and resolves Debian packages into
the lab cache; later runs reuse them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.lab.conformance import build
from tests.conftest import ROOT

BUSYBOX = f"{build.E2E_REGISTRY}/busybox:1.37.0-2"
NONROOT = f"{build.E2E_REGISTRY}/nonroot:1.5"


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def loaded() -> Iterator[dict[str, Path]]:
    made = build.build(ROOT / ".airlock" / "cache" / "lab", only=(BUSYBOX, NONROOT))
    for reference, archive in made.archives.items():
        _podman("rmi", "--force", reference)
        result = _podman("load", "--input", str(archive))
        assert result.returncode == 0, result.stderr
        assert f"Loaded image: {reference}" in result.stdout
    yield made.archives
    for reference in made.archives:
        _podman("rmi", "--force", reference)


def test_busyboxs_shell_passes_on_variables_whose_names_are_not_identifiers(
    loaded: dict[str, Path],
) -> None:
    run = _podman(
        "run", "--rm", "--network", "none",
        "-e", "data-1=value-1", "-e", "1-data-1=value-1", "-e", "$_-data-1=value-1",
        BUSYBOX, "sh", "-c", "env",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    printed = run.stdout.splitlines()
    for line in ("data-1=value-1", "1-data-1=value-1", "$_-data-1=value-1"):
        assert line in printed, run.stdout


def test_busybox_has_its_applets_and_the_base_accounts(loaded: dict[str, Path]) -> None:
    script = "busybox | head -1; id nobody; wget --help 2>&1 | grep -q 'Usage: wget' && echo wget"
    run = _podman("run", "--rm", "--network", "none", BUSYBOX, "sh", "-c", script)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("BusyBox v1.37.0"), run.stdout
    assert "uid=65534(nobody)" in run.stdout
    assert run.stdout.splitlines()[-1] == "wget", run.stdout


def test_nonroot_runs_as_user_1234(loaded: dict[str, Path]) -> None:
    run = _podman("run", "--rm", "--network", "none", NONROOT, "sh", "-c", "id -u; which sh")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1234", "/bin/sh"], run.stdout
