"""`airlock upgrade` before any host is touched: the flags, the target bundle, the plan text."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from airlock import upgrade
from airlock.errors import AirlockError
from tests.conftest import ROOT, run_airlock

COMPONENTS = {
    "kubeadm": "v1.37.2",
    "kubelet": "v1.37.2",
    "kubectl": "v1.37.2",
    "kube-apiserver": "v1.37.2",
    "kube-controller-manager": "v1.37.2",
    "kube-scheduler": "v1.37.2",
    "kube-proxy": "v1.37.2",
    "coredns": "v1.14.6",
    "etcd": "v3.7.3",
    "containerd": "2.2.1",
}


def _bundle(tmp_path: Path, kube: str = "v1.37.2", drop: str = "") -> Path:
    manifest = {
        "kube_version": kube,
        "artifacts": [
            {"name": n, "component": n, "version": v, "kind": "binary"}
            for n, v in COMPONENTS.items()
            if n != drop
        ],
    }
    data = json.dumps(manifest).encode()
    path = tmp_path / f"airlock-lab-{kube}.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_the_target_bundle_is_read_and_accepted(tmp_path: Path) -> None:
    bundle = upgrade.read_bundle(_bundle(tmp_path))
    assert bundle.kube_version == "v1.37.2"
    assert upgrade.bundle_problems(bundle, "v1.37.2") == []
    variables = upgrade.extra_vars(bundle, "v1.37.2", "20%")
    assert variables["airlock_kube_version"] == "1.37.2"
    assert variables["kubernetes_upgrade_components"] == {
        "coredns": "v1.14.6",
        "etcd": "v3.7.3",
        "containerd": "2.2.1",
    }


def test_a_bundle_of_another_release_is_refused_naming_both(tmp_path: Path) -> None:
    bundle = upgrade.read_bundle(_bundle(tmp_path, kube="v1.36.3"))
    (problem,) = upgrade.bundle_problems(bundle, "v1.37.2")
    assert "carries Kubernetes v1.36.3, not v1.37.2" in problem
    assert "--kube-version v1.37.2" in problem


def test_a_bundle_missing_a_program_is_refused_naming_it(tmp_path: Path) -> None:
    bundle = upgrade.read_bundle(_bundle(tmp_path, drop="kubelet"))
    (problem,) = upgrade.bundle_problems(bundle, "v1.37.2")
    assert "lacks kubelet at v1.37.2" in problem


def test_a_file_that_is_no_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    path.write_text("not a tar")
    with pytest.raises(AirlockError, match=r"cannot read its MANIFEST\.json"):
        upgrade.read_bundle(path)


@pytest.mark.parametrize("flag", ["latest", "1.37", "v1.37.x"])
def test_a_target_that_is_no_release_is_refused(flag: str) -> None:
    with pytest.raises(AirlockError, match=r"give a Kubernetes release such as 1\.37\.2"):
        upgrade.normalise(flag)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--to", "latest"], "--to latest: give a Kubernetes release"),
        (["--to", "1.37.2", "--batch", "0"], "--batch 0: give a number of workers"),
        (["--to", "1.37.2", "--batch", "150%"], "--batch 150%"),
        (["--to", "1.37.2", "--bundle", "/nonexistent.tar"], "--bundle /nonexistent.tar: no such"),
    ],
)
def test_bad_flags_get_one_line_before_anything_runs(args: list[str], words: str) -> None:
    proc = run_airlock("upgrade", "-i", str(ROOT / "inventories" / "example"), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_plan_reads_like_a_plan() -> None:
    plan = {
        "current": "v1.36.3",
        "target": "v1.37.2",
        "blockers": [],
        "cluster": [{"component": "coredns", "current": "v1.14.2", "target": "v1.14.6"}],
        "config_diff": "-kubernetesVersion: v1.36.3\n+kubernetesVersion: v1.37.2\n",
        "nodes": [
            {
                "name": "m1",
                "role": "control-plane",
                "ready": True,
                "cordoned": False,
                "interrupted": False,
                "action": "kubeadm upgrade apply",
                "components": {"kubelet": ["v1.36.3", "v1.37.2"]},
                "drain": ["kube-system/coredns-1"],
            },
            {
                "name": "w1",
                "role": "worker",
                "ready": True,
                "cordoned": False,
                "interrupted": False,
                "action": "done",
                "components": {"kubelet": ["v1.37.2", "v1.37.2"]},
                "drain": [],
            },
        ],
        "pending": ["m1"],
    }
    text = upgrade.render_plan(plan)
    assert "Upgrade plan: Kubernetes v1.36.3 -> v1.37.2" in text
    assert "1. m1 (control-plane, Ready): kubeadm upgrade apply" in text
    assert "drain: kube-system/coredns-1" in text
    assert "2. w1 (worker, Ready): done" in text
    assert "+kubernetesVersion: v1.37.2" in text
    assert "Blockers: none" in text
    assert "1 node(s) to upgrade: m1" in text
