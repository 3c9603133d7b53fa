"""`make e2e-mirror`: a whole cluster whose nodes pull the bundle's images from the registry.

An --internal lab (one control plane, two workers, the registry on w2, the monitoring stack
on w1, whose kube-state-metrics runs from a bundle image) with
`airlock_image_source: registry` (`airlock lab up --image-source registry`) gets the
platform from the lab bundle with `airlock deploy`. Only w2 fetches the bundle's image
archives; its registry role keeps them in a read-only, anonymous mirror, and every node's
containerd pulls registry.k8s.io/..., ghcr.io/... through it by their own names. Then:

- the cluster is up: every node Ready, CoreDNS and flannel running;
- no node but the registry host holds an image archive; none imported anything (no image
  is pinned but the sandbox image, which containerd pins itself);
- w1's images carry the bundle archives' digests;
- kube-state-metrics (the monitoring stage named its image from the registry host's artifact
  map: the nodes have none) runs from the bundle's image;
- a pod on w1 with a bundle image w1 does not have (removed first, as the kubelet's garbage
  collection would) starts with no credentials and no pull secret: containerd pulls it from
  the mirror on demand;
- the mirror answers without credentials over TLS verified with the cluster CA, with the
  bundle's digests, and refuses pushes, with or without the admin's password; the loader
  is not listening;
- a second deploy changes nothing.

The lab is removed at the end (AIRLOCK_E2E_KEEP=1 keeps it; AIRLOCK_E2E_REUSE=1 then
deploys onto the kept lab instead of making a new one).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, lab_hosts, run_airlock
from tests.faults.test_interrupted_deploy import _changed_tasks
from tests.labexec import lab_exec, newest_deploy, wait_for

LAB = "mirror"
SUBNET = "10.77.21.0/24"
REGISTRY_HOST = "w2"
NODES = ("m1", "w1", "w2")
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
MIRROR_PORT = 5001
# A bundle image no pod of a cluster without Ceph runs.
ON_DEMAND = "registry.k8s.io/sig-storage/snapshot-controller"
KSM = "registry.k8s.io/kube-state-metrics/kube-state-metrics"
# containerd_sandbox_image's default: containerd pins it, however it got it.
SANDBOX = "registry.k8s.io/pause:3.10.2"


def _exec(host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return lab_exec(LAB, host, *argv, check=check)


def _kubectl(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _exec("m1", *KUBECTL, *argv, check=check)


def _bundle_digests(bundle: Path) -> dict[str, str]:
    """Every image of the lab bundle: reference -> manifest digest (its archive's index.json)."""
    digests: dict[str, str] = {}
    with tarfile.open(bundle) as outer:
        for member in outer:
            if not member.name.endswith(".oci.tar"):
                continue
            data = outer.extractfile(member)
            assert data is not None
            with tarfile.open(fileobj=io.BytesIO(data.read())) as inner:
                index_file = inner.extractfile("index.json")
                assert index_file is not None
                index = json.load(index_file)
            for desc in index["manifests"]:
                digests[desc["annotations"]["io.containerd.image.name"]] = desc["digest"]
    return digests


@dataclass
class Lab:
    inventory: Path
    digests: dict[str, str]  # the bundle's images
    registry_ip: str

    @property
    def ca(self) -> Path:
        return self.inventory / ".credentials" / "kubernetes" / "ca.crt"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from airlock.lab.bundle import lab_archive

    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    built = run_airlock("bundle", "build", "--profile", "lab", timeout=4 * 3600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr
    up = (
        "--internal", "--masters", "1", "--workers", "2",
        "--registry", REGISTRY_HOST, "--image-source", "registry", "--monitoring", "w1",
    )  # fmt: skip
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
        print(f"\ndeploy with the nodes pulling from the mirror: {time.monotonic() - started:.0f}s")
        ip = _host_ip(inventory, REGISTRY_HOST)
        yield Lab(inventory, _bundle_digests(lab_archive(None)), ip)


def _host_ip(inventory: Path, host: str) -> str:
    """`host`'s ip in the lab's hosts.yml."""

    def find(node: object) -> str:
        if isinstance(node, dict):
            hosts = node.get("hosts")
            if isinstance(hosts, dict) and isinstance(hosts.get(host), dict):
                return str(hosts[host].get("ip", ""))
            for value in node.values():
                found = find(value)
                if found:
                    return found
        return ""

    ip = find(yaml.safe_load((inventory / "hosts.yml").read_text()))
    assert ip, f"no ip for {host} in {inventory / 'hosts.yml'}"
    return ip


def test_the_cluster_is_up(lab: Lab) -> None:
    nodes = json.loads(_kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = {
        n["metadata"]["name"]: next(
            c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"
        )
        for n in nodes
    }
    assert ready == dict.fromkeys(NODES, "True"), ready
    pods = json.loads(_kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    running = {
        p["metadata"]["name"].rsplit("-", 1)[0]
        for p in pods
        if p["status"].get("phase") == "Running"
    }
    assert any(name.startswith("coredns") for name in running), running
    assert any(name.startswith("kube-flannel-ds") for name in running), running


def test_only_the_registry_host_holds_image_archives_and_no_node_imported_one(lab: Lab) -> None:
    for host in NODES:
        found = _exec(
            host, "find", "/opt/airlock/artifacts", "-name", "*.oci.tar", check=False
        ).stdout.split()
        if host == REGISTRY_HOST:
            assert len(found) == len(lab.digests), found
        else:
            assert found == [], f"{host} holds {found}"
        # containerd_image pins what it imports; a pulled image is not pinned, except the
        # sandbox image, which containerd's CRI plugin pins itself.
        images = json.loads(_exec(host, "crictl", "images", "-o", "json").stdout)["images"]
        assert images, f"{host}: containerd has no image"
        pinned = [i["repoTags"] for i in images if i.get("pinned") and SANDBOX not in i["repoTags"]]
        assert pinned == [], f"{host}: pinned (imported) images {pinned}"


def _repo_digests(host: str, image: str) -> list[str]:
    status = json.loads(_exec(host, "crictl", "inspecti", "-o", "json", image).stdout)["status"]
    return list(status["repoDigests"])


def test_nodes_run_the_bundles_images_with_their_digests(lab: Lab) -> None:
    wanted = [ref for ref in lab.digests if "/pause:" in ref or "/kube-proxy:" in ref]
    wanted += [ref for ref in lab.digests if "/flannel:" in ref]
    assert len(wanted) == 3, lab.digests
    for ref in wanted:
        name = ref.rsplit(":", 1)[0]
        assert _repo_digests("w1", ref) == [f"{name}@{lab.digests[ref]}"], ref


def test_kube_state_metrics_runs_from_the_bundles_image(lab: Lab) -> None:
    [ref] = [r for r in lab.digests if r.startswith(KSM + ":")]
    pods = json.loads(
        _kubectl(
            "get", "pods", "-A", "-l", "app.kubernetes.io/name=kube-state-metrics", "-o", "json"
        ).stdout
    )["items"]
    assert pods, "no kube-state-metrics pod"
    for pod in pods:
        [status] = pod["status"]["containerStatuses"]
        assert status["ready"], status
        assert status["imageID"].endswith(lab.digests[ref]), (status["imageID"], lab.digests[ref])


def test_a_pod_pulls_a_bundle_image_on_demand_without_credentials(lab: Lab) -> None:
    [ref] = [r for r in lab.digests if r.startswith(ON_DEMAND + ":")]
    # As the kubelet's image garbage collection would (a kept lab may have it from a run before).
    _exec("w1", "crictl", "rmi", ref, check=False)
    before = _exec("w1", "crictl", "inspecti", ref, check=False)
    assert before.returncode != 0, f"w1 still has {ref}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "e2e-on-demand", "namespace": "default"},
        "spec": {
            "nodeName": "w1",
            "restartPolicy": "Never",
            "containers": [
                {"name": "probe", "image": ref, "command": ["/snapshot-controller", "--version"]}
            ],
        },
    }
    _kubectl("delete", "pod", "e2e-on-demand", "--ignore-not-found", "--wait=true")
    lab_exec(LAB, "m1", *KUBECTL, "apply", "-f", "-", stdin=json.dumps(pod))

    def phase() -> str:
        out = _kubectl("get", "pod", "e2e-on-demand", "-o", "jsonpath={.status.phase}").stdout
        return out if out in ("Succeeded", "Failed") else ""

    assert wait_for("the on-demand pod to finish", phase, timeout=180) == "Succeeded"
    assert _repo_digests("w1", ref) == [f"{ON_DEMAND}@{lab.digests[ref]}"]
    _kubectl("delete", "pod", "e2e-on-demand", "--wait=false")


def _cert_dir(lab: Lab, tmp: Path) -> Path:
    certs = tmp / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(lab.ca, certs / "ca.crt")
    return certs


def test_the_mirror_is_anonymous_verified_and_read_only(lab: Lab, tmp_path: Path) -> None:
    certs = _cert_dir(lab, tmp_path)
    mirror = f"{lab.registry_ip}:{MIRROR_PORT}"
    [pause] = [r for r in lab.digests if "/pause:" in r]
    inspect = subprocess.run(
        ["skopeo", "inspect", "--no-creds", "--cert-dir", str(certs), f"docker://{mirror}/{pause}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == lab.digests[pause]

    admin = (lab.inventory / ".credentials" / "registry" / "admin.password").read_text().strip()
    for creds in (["--dest-no-creds"], ["--dest-creds", f"admin:{admin}"]):
        push = subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-cert-dir", str(certs), *creds,
             f"docker://{mirror}/{pause}", f"docker://{mirror}/registry.k8s.io/e2e/intruder:1"],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert push.returncode != 0, f"a push to the mirror worked ({creds[0]})"

    loader_url = f"https://{lab.registry_ip}:{MIRROR_PORT + 1}/"
    loader = subprocess.run(
        ["curl", "--silent", "--cacert", str(lab.ca), loader_url],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert loader.returncode == 7, "the loader listens outside a deploy"  # curl: refused


def test_a_second_deploy_changes_nothing(lab: Lab) -> None:
    again = run_airlock("deploy", "-i", str(lab.inventory), timeout=3600)
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr
    assert _changed_tasks(newest_deploy(LAB)) == []
