"""An image assembled by airlock.lab.bundle.oci loads into a real container engine under the
name kubeadm expects, and runs."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from airlock.lab.bundle import oci
from tests.conftest import ROOT

REF = "registry.k8s.io/pause:3.10.1-airlock-test"


def _podman(*args):
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture
def pause_binary(tmp_path):
    if shutil.which("podman") is None or shutil.which("go") is None:
        pytest.fail("podman and go are needed: run scripts/bootstrap, install Go >= 1.24")
    work = tmp_path / "pause"
    shutil.copytree(ROOT / "offline-bundle" / "lab" / "pause", work)
    out = tmp_path / "pause-bin"
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(out), "."],
        cwd=work,
        check=True,
        env=dict(os.environ, CGO_ENABLED="0"),
    )
    return out


def test_assembled_image_loads_and_runs_in_podman(pause_binary, tmp_path):
    archive = tmp_path / "pause.oci.tar"
    spec = oci.ImageSpec(
        REF, "amd64", [[oci.ImageFile(pause_binary, "/pause")]], entrypoint=["/pause"]
    )
    oci.write_oci_archive(spec, archive)
    try:
        loaded = _podman("load", "--input", str(archive))
        assert loaded.returncode == 0, loaded.stderr
        assert f"Loaded image: {REF}" in loaded.stdout
        run = _podman("run", "--rm", REF, "-v")
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "pause (airlock) 3.10.1"
    finally:
        _podman("rmi", "--force", REF)
