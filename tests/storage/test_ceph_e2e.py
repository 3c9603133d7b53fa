"""`make e2e-ceph`: Ceph, its client on the nodes and ceph-csi's objects on a whole lab.

An --internal lab with one control plane and three workers, Ceph on the workers (`airlock
lab up --ceph w1,w2,w3`: a monitor, a manager and a 4 GiB `lab-file` OSD on each, pool size
3), gets the whole platform from the lab bundle with `airlock deploy`. Then:

- `ceph -s`: HEALTH_OK, the three monitors in quorum, the three OSDs up and in;
- client.kubernetes has exactly ceph-csi's documented caps;
- from m1, a Kubernetes node that runs no Ceph daemon (ceph-common and its client ceph.conf
  are there from the ceph stage), with the Kubernetes client's key (not admin's): an RBD
  image is created, written (`rbd bench`), imported and exported back identical,
  snapshotted, resized and deleted - the librbd operations ceph-csi's controller performs -
  and `ceph auth ls` is denied;
- w3's host stopped (its monitor, manager, OSD and kubelet): HEALTH_WARN, the data still
  read back; w3 started again: HEALTH_OK;
- the snapshot CRDs, the snapshot-controller (acting on a VolumeSnapshot), the StorageClass
  and the VolumeSnapshotClass exist for real; every ceph-csi object the ceph stage wrote
  passes `kubectl apply --dry-run=server`, and none was stored (the lab has no ceph-csi
  image and no rbd kernel driver: ceph_csi_driver validate, docs/ceph.md);
- a second deploy changes nothing.

The lab is removed at the end (AIRLOCK_E2E_KEEP=1 keeps it; AIRLOCK_E2E_REUSE=1 then
deploys onto the kept lab instead of making a new one, for a quicker run while developing).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, lab_hosts, run_airlock
from tests.faults.test_interrupted_deploy import _changed_tasks
from tests.labexec import lab_exec, newest_deploy, podman_env, wait_for

LAB = "ceph"
SUBNET = "10.77.19.0/24"
CEPH_HOSTS = ("w1", "w2", "w3")
CLIENT_HOST = "m1"
MANIFESTS = "/etc/kubernetes/airlock/ceph-csi"
DRIVER_FILES = (
    "rbac.yml",
    "config.yml",
    "secret.yml",
    "csidriver.yml",
    "provisioner.yml",
    "nodeplugin.yml",
)
KEYRING = "/root/e2e-kubernetes.keyring"
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
# Image names of this run (a reused lab keeps the last run's data image).
RUN = time.strftime("%H%M%S")
VOLUME = f"kubernetes/e2e-volume-{RUN}"
DATA = f"kubernetes/e2e-data-{RUN}"


def _exec(
    host: str, *argv: str, check: bool = True, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return lab_exec(LAB, host, *argv, check=check, stdin=stdin, timeout=timeout)


def _podman(*argv: str) -> None:
    subprocess.run(
        ["podman", *argv], check=True, env=podman_env(), capture_output=True, timeout=120
    )


def _wait(what: str, probe: Callable[[], Any], timeout: float = 300, every: float = 5) -> Any:
    return wait_for(what, probe, timeout=timeout, every=every)


def _ceph(*argv: str, host: str = "w1") -> dict[str, Any]:
    """An admin `ceph` command on a monitor host, its JSON output."""
    return json.loads(_exec(host, "ceph", *argv, "--format", "json").stdout)


def _rbd(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`rbd` on the client host as client.kubernetes, with its keyring only."""
    return _exec(CLIENT_HOST, "rbd", "--id", "kubernetes", "--keyring", KEYRING, *argv, check=check)


def _kubectl(
    *argv: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return _exec(CLIENT_HOST, *KUBECTL, *argv, check=check, stdin=stdin)


@dataclass
class Lab:
    inventory: Path
    fsid: str


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    built = run_airlock("bundle", "build", "--profile", "lab", timeout=4 * 3600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr
    up = ("--internal", "--masters", "1", "--workers", "3", "--ceph", ",".join(CEPH_HOSTS))
    kept = ROOT / ".airlock" / "labs" / LAB / "inventory"
    hosts = (
        contextlib.nullcontext(kept)
        if os.environ.get("AIRLOCK_E2E_REUSE") == "1" and kept.is_dir()
        else lab_hosts(LAB, *up, "--subnet", SUBNET, timeout=1800, keep=keep)
    )
    with hosts as inventory:
        run_airlock("check", "-i", str(inventory), check=True, timeout=600)
        started = time.monotonic()
        deploy = run_airlock("deploy", "-i", str(inventory), timeout=3600)
        assert deploy.returncode == 0, deploy.stdout[-6000:] + deploy.stderr
        print(f"\ndeploy with Ceph: {time.monotonic() - started:.0f}s")
        creds = inventory / ".credentials" / "ceph"
        keyring = creds / "ceph.client.kubernetes.keyring"
        assert oct(keyring.stat().st_mode & 0o777) == "0o600"
        _exec(
            CLIENT_HOST, "install", "-m", "0600", "/dev/stdin", KEYRING, stdin=keyring.read_text()
        )
        yield Lab(inventory, (creds / "fsid").read_text().strip())


def test_ceph_is_healthy_with_every_monitor_in_quorum_and_every_osd_up(lab: Lab) -> None:
    status = _ceph("-s")
    assert status["fsid"] == lab.fsid
    assert status["health"]["status"] == "HEALTH_OK", status["health"]
    assert sorted(status["quorum_names"]) == sorted(CEPH_HOSTS)
    osds = status["osdmap"]
    assert (osds["num_osds"], osds["num_up_osds"], osds["num_in_osds"]) == (3, 3, 3), osds


def test_the_kubernetes_client_has_exactly_ceph_csis_caps(lab: Lab) -> None:
    [entry] = _ceph("auth", "get", "client.kubernetes")
    assert entry["caps"] == {
        "mon": "profile rbd",
        "osd": "profile rbd pool=kubernetes",
        "mgr": "profile rbd pool=kubernetes",
    }


def test_a_kubernetes_node_has_cephs_client_and_no_ceph_daemon(lab: Lab) -> None:
    conf = _exec(CLIENT_HOST, "cat", "/etc/ceph/ceph.conf").stdout
    assert f"fsid = {lab.fsid}" in conf and "mon_host = " in conf
    assert not [line for line in conf.splitlines() if line.startswith(("key", "keyring"))]
    files = _exec(CLIENT_HOST, "ls", "/etc/ceph").stdout.split()
    assert "ceph.conf" in files and not [f for f in files if "keyring" in f], files
    daemons = _exec(CLIENT_HOST, "pgrep", "-l", "ceph-", check=False).stdout
    assert daemons == "", f"Ceph daemons on {CLIENT_HOST}: {daemons}"


def test_rbd_operations_of_ceph_csi_work_with_the_clients_key(lab: Lab) -> None:
    image = VOLUME
    _exec(CLIENT_HOST, "dd", "if=/dev/urandom", "of=/root/e2e.bin", "bs=1M", "count=8")
    _rbd("create", "--size", "64M", image)
    _rbd("bench", "--io-type", "write", "--io-size", "4K", "--io-total", "8M", image)
    _rbd("import", "/root/e2e.bin", DATA)
    _exec(CLIENT_HOST, "rm", "-f", "/root/e2e.back")
    _rbd("export", DATA, "/root/e2e.back")
    _exec(CLIENT_HOST, "cmp", "/root/e2e.bin", "/root/e2e.back")
    _rbd("snap", "create", f"{image}@before")
    _rbd("resize", "--size", "128M", image)
    info = json.loads(_rbd("info", image, "--format", "json").stdout)
    assert info["size"] == 128 * 1024 * 1024
    _rbd("snap", "rm", f"{image}@before")
    _rbd("rm", image)
    names = json.loads(_rbd("ls", "kubernetes", "--format", "json").stdout)
    assert DATA.split("/")[1] in names and VOLUME.split("/")[1] not in names, names
    denied = _exec(
        CLIENT_HOST, "ceph", "--id", "kubernetes", "--keyring", KEYRING, "auth", "ls", check=False
    )
    assert denied.returncode != 0 and "denied" in (denied.stderr + denied.stdout).lower()


def test_a_second_deploy_changes_nothing(lab: Lab) -> None:
    # Before the host-down test: podman rewrites a restarted lab host's /etc/hosts, which
    # the next deploy puts back (a lab artifact; a real host keeps its file).
    started = time.monotonic()
    deploy = run_airlock("deploy", "-i", str(lab.inventory), timeout=3600)
    assert deploy.returncode == 0, deploy.stdout[-6000:] + deploy.stderr
    print(f"\nno-op re-deploy with Ceph: {time.monotonic() - started:.0f}s")
    changed = _changed_tasks(newest_deploy(LAB))
    assert changed == [], f"a second deploy changed: {changed}"


def test_a_ceph_host_down_leaves_the_data_readable_and_comes_back(lab: Lab) -> None:
    _podman("stop", "-t", "10", f"airlock-{LAB}-w3")
    try:
        _wait(
            "HEALTH_WARN with w3's OSD down",
            lambda: (
                (s := _ceph("-s"))["health"]["status"] == "HEALTH_WARN"
                and s["osdmap"]["num_up_osds"] == 2
            ),
            timeout=180,
        )
        _exec(CLIENT_HOST, "rm", "-f", "/root/e2e.back")
        _rbd("export", DATA, "/root/e2e.back")
        _exec(CLIENT_HOST, "cmp", "/root/e2e.bin", "/root/e2e.back")
    finally:
        _podman("start", f"airlock-{LAB}-w3")
    _wait(
        "HEALTH_OK after w3 is back", lambda: _ceph("health")["status"] == "HEALTH_OK", timeout=600
    )
    status = _ceph("-s")
    assert sorted(status["quorum_names"]) == sorted(CEPH_HOSTS)
    assert status["osdmap"]["num_up_osds"] == 3


def test_snapshot_crds_controller_and_classes_exist_for_real(lab: Lab) -> None:
    for crd in ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"):
        _kubectl("get", "crd", f"{crd}.snapshot.storage.k8s.io")
    _kubectl(
        "-n", "kube-system", "rollout", "status", "deployment/snapshot-controller", "--timeout=120s"
    )
    sc = json.loads(_kubectl("get", "storageclass", "ceph-rbd", "-o", "json").stdout)
    assert sc["provisioner"] == "rbd.csi.ceph.com"
    assert sc["parameters"]["clusterID"] == lab.fsid and sc["parameters"]["pool"] == "kubernetes"
    vsc = json.loads(_kubectl("get", "volumesnapshotclass", "ceph-rbd", "-o", "json").stdout)
    assert vsc["driver"] == "rbd.csi.ceph.com" and vsc["parameters"]["clusterID"] == lab.fsid
    # The controller acts: a snapshot of a claim that does not exist gets its error.
    _kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": {"name": "e2e-orphan", "namespace": "default"},
                "spec": {
                    "volumeSnapshotClassName": "ceph-rbd",
                    "source": {"persistentVolumeClaimName": "e2e-missing"},
                },
            }
        ),
    )

    def error() -> str:
        snap = json.loads(_kubectl("get", "volumesnapshot", "e2e-orphan", "-o", "json").stdout)
        return (snap.get("status") or {}).get("error", {}).get("message", "")

    message = _wait("the snapshot-controller's error on the orphan snapshot", error, timeout=120)
    print(f"\nsnapshot-controller on a snapshot of a missing claim: {message}")
    assert "claim" in message
    _kubectl("delete", "volumesnapshot", "e2e-orphan", "--wait=true")


def test_every_ceph_csi_object_passes_the_api_servers_dry_run_and_none_is_stored(lab: Lab) -> None:
    for name in DRIVER_FILES:
        out = _kubectl("apply", "--dry-run=server", "-f", f"{MANIFESTS}/{name}").stdout
        assert "(server dry run)" in out, out
    kinds = _kubectl(
        "-n", "ceph-csi-rbd", "get", "deployments,daemonsets,secrets,configmaps", "-o", "name"
    ).stdout.split()
    assert [k for k in kinds if "kube-root-ca" not in k] == [], kinds
    assert _kubectl("get", "csidriver", "rbd.csi.ceph.com", check=False).returncode != 0
