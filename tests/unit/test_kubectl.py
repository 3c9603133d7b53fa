"""`airlock kubectl`: the bundle's kubectl, checked against its manifest, run with the
inventory's admin kubeconfig; one-line errors for what is missing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.kubectl import kubectl_from_bundle
from tests.conftest import ROOT
from tests.inventory_factory import BASE_VARS, write_inventory

# A kubectl that shows what it was given.
PROGRAM = b'#!/bin/sh\necho "kubectl $* KUBECONFIG=$KUBECONFIG"\n'


def _bundle(path: Path, program: bytes = PROGRAM, listed: bytes = PROGRAM) -> Path:
    manifest = {"kube_version": "1.37.2", "artifacts": [
        {"name": "kubectl", "kind": "binary", "arch": "amd64", "version": "v1.37.2",
         "path": "bin/amd64/kubectl", "sha256": hashlib.sha256(listed).hexdigest()}]}  # fmt: skip
    with tarfile.open(path, "w") as tar:
        for name, data in (("MANIFEST.json", json.dumps(manifest).encode()),
                           ("bin/amd64/kubectl", program)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _inventory(tmp_path: Path, deployed: bool = True) -> Path:
    bundle = _bundle(tmp_path / "lab.tar")
    inventory = write_inventory(
        tmp_path / "inv", None, {**BASE_VARS, "airlock_bundle": str(bundle)}
    )
    if deployed:
        creds = inventory / ".credentials" / "kubernetes"
        creds.mkdir(parents=True)
        (creds / "admin.conf").write_text("apiVersion: v1\n")
    return inventory


def _airlock(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"  # a project tree with the real roles (their settings), own state
    if not home.exists():
        (home / "playbooks").mkdir(parents=True)
        (home / "playbooks" / "site.yml").touch()
        (home / "roles").symlink_to(ROOT / "roles")
    env = {**os.environ, "AIRLOCK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "airlock.cli", *args], capture_output=True,
                          text=True, env=env, check=False)  # fmt: skip


def test_the_bundles_kubectl_runs_with_the_admin_kubeconfig(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    run = _airlock(tmp_path, "kubectl", "-i", str(inventory), "get", "nodes", "-o", "wide")
    assert run.returncode == 0, run.stderr
    conf = inventory.resolve() / ".credentials" / "kubernetes" / "admin.conf"
    assert run.stdout.strip() == f"kubectl get nodes -o wide KUBECONFIG={conf}"
    kept = list((tmp_path / "home" / ".airlock" / "bin").iterdir())
    assert [p.name for p in kept] == [f"kubectl-v1.37.2-{hashlib.sha256(PROGRAM).hexdigest()[:12]}"]
    assert kept[0].stat().st_mode & 0o777 == 0o755
    shown = _airlock(tmp_path, "kubectl", "-i", str(inventory), "--path")
    assert f"export KUBECONFIG={conf}" in shown.stdout


def test_a_kubectl_that_is_not_the_manifests_is_refused(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b.tar", program=b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(AirlockError, match=r"b.tar: bin/amd64/kubectl does not match the sha256"):
        kubectl_from_bundle(bundle, tmp_path / "cache", "amd64")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-bundle-setting", "sets no airlock_bundle: set it to the bundle"),
        ("no-bundle-file", "no such file (the inventory's airlock_bundle)"),
        ("not-deployed", "no admin kubeconfig yet (the deploy writes it"),
        ("other-arch", "it carries no kubectl for arm64"),
    ],
)
def test_what_is_missing_is_one_line(tmp_path: Path, setup: str, message: str) -> None:
    inventory = _inventory(tmp_path, deployed=setup != "not-deployed")
    if setup == "no-bundle-setting":
        write_inventory(inventory, None, BASE_VARS)
    if setup == "no-bundle-file":
        (tmp_path / "lab.tar").unlink()
    if setup == "other-arch":
        with pytest.raises(AirlockError, match=message):
            kubectl_from_bundle(tmp_path / "lab.tar", tmp_path / "cache", "arm64")
        return
    run = _airlock(tmp_path, "kubectl", "-i", str(inventory), "get", "nodes")
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
