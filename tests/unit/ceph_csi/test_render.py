"""Role ceph_csi's manifests, rendered through Ansible with the role's own defaults and vars:
the objects a user gets, the cluster's identity and key where ceph-csi reads them, the
images from the bundle's artifact map (or the references when the bundle has none), and
the reference images equal to what the bundle manifest names."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.playbook import run_playbook

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).with_name("render.yml")
MONS = {"c1": "10.77.90.11", "c2": "10.77.90.12", "c3": "10.77.90.13"}
FSID = "8d6c6a1e-2f4b-4c59-9d2c-0a1b2c3d4e5f"
KEY = "AQBz1Ttn0000000000000000000000000000000=="
DRIVER_IMAGES = (
    "image-cephcsi",
    "image-csi-provisioner",
    "image-csi-snapshotter",
    "image-csi-attacher",
    "image-csi-resizer",
    "image-csi-node-driver-registrar",
)


def render(
    tmp_path: Path, artifacts: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, list[dict]]:
    """Run render.yml; return each file's YAML documents (client-ceph.conf as one string)."""
    out = tmp_path / "out"
    out.mkdir()
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                },
                **{h: {"ip": ip} for h, ip in MONS.items()},
            },
            "children": {"ceph": {"hosts": dict.fromkeys(MONS)}},
        }
    }
    snapshot = {
        "image-snapshot-controller": {
            "image": "registry.k8s.io/sig-storage/snapshot-controller:v8.4.0"
        }
    }
    extra = {
        "render_dir": str(out),
        "airlock_credentials_dir": str(tmp_path / "credentials"),
        "_ceph_csi_fsid": FSID,
        "_ceph_csi_key": KEY,
        "_ceph_csi_artifacts": {
            "ansible_facts": {"airlock_artifacts": {**snapshot, **(artifacts or {})}}
        },
        **overrides,
    }
    run_playbook(PLAYBOOK, tmp_path, inventory, extra)
    docs = {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in out.glob("*.yml")}
    docs["client-ceph.conf"] = [{"text": (out / "client-ceph.conf").read_text()}]
    return docs


def _objects(docs: dict[str, list[dict]]) -> dict[tuple[str, str], dict]:
    return {
        (d["kind"], d["metadata"]["name"]): d
        for name, items in docs.items()
        if name.endswith(".yml")
        for d in items
    }


def _containers(obj: dict) -> dict[str, dict]:
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


@pytest.fixture(scope="module")
def default_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return render(tmp_path_factory.mktemp("default"))


def test_every_object_ceph_csi_and_the_snapshots_need_is_rendered(default_docs) -> None:
    kinds = sorted(_objects(default_docs))
    assert kinds == sorted(
        [
            ("Namespace", "ceph-csi-rbd"),
            ("ServiceAccount", "snapshot-controller"),
            ("ClusterRole", "airlock:snapshot-controller"),
            ("ClusterRoleBinding", "airlock:snapshot-controller"),
            ("Role", "snapshot-controller-leaderelection"),
            ("RoleBinding", "snapshot-controller-leaderelection"),
            ("Deployment", "snapshot-controller"),
            ("StorageClass", "ceph-rbd"),
            ("VolumeSnapshotClass", "ceph-rbd"),
            ("ServiceAccount", "rbd-csi-provisioner"),
            ("ServiceAccount", "rbd-csi-nodeplugin"),
            ("ClusterRole", "airlock:rbd-csi-provisioner"),
            ("ClusterRoleBinding", "airlock:rbd-csi-provisioner"),
            ("Role", "rbd-csi-provisioner"),
            ("RoleBinding", "rbd-csi-provisioner"),
            ("ClusterRole", "airlock:rbd-csi-nodeplugin"),
            ("ClusterRoleBinding", "airlock:rbd-csi-nodeplugin"),
            ("ConfigMap", "ceph-csi-config"),
            ("ConfigMap", "ceph-config"),
            ("ConfigMap", "ceph-csi-encryption-kms-config"),
            ("Secret", "csi-rbd-secret"),
            ("CSIDriver", "rbd.csi.ceph.com"),
            ("Deployment", "csi-rbdplugin-provisioner"),
            ("DaemonSet", "csi-rbdplugin"),
        ]
    )


def test_the_cluster_identity_and_key_are_where_ceph_csi_reads_them(default_docs) -> None:
    objects = _objects(default_docs)
    [cluster] = json.loads(objects["ConfigMap", "ceph-csi-config"]["data"]["config.json"])
    assert cluster == {"clusterID": FSID, "monitors": [f"{ip}:6789" for ip in MONS.values()]}
    secret = objects["Secret", "csi-rbd-secret"]
    assert secret["stringData"] == {"userID": "kubernetes", "userKey": KEY}
    sc = objects["StorageClass", "ceph-rbd"]
    assert sc["parameters"]["clusterID"] == FSID and sc["parameters"]["pool"] == "kubernetes"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
    for role in ("provisioner", "controller-expand", "node-stage"):
        assert sc["parameters"][f"csi.storage.k8s.io/{role}-secret-name"] == "csi-rbd-secret"
    assert objects["VolumeSnapshotClass", "ceph-rbd"]["parameters"]["clusterID"] == FSID
    conf = default_docs["client-ceph.conf"][0]["text"]
    assert f"fsid = {FSID}" in conf
    assert not [line for line in conf.splitlines() if line.startswith(("key", "keyring"))]
    assert "mon_host = [v2:10.77.90.11:3300,v1:10.77.90.11:6789]," in conf


def test_settings_reach_the_objects(tmp_path: Path) -> None:
    docs = render(
        tmp_path,
        ceph_csi_default_storage_class=True,
        ceph_csi_storage_class="fast",
        ceph_csi_provisioner_replicas=3,
        ceph_csi_kubelet_dir="/data/kubelet",
        ceph_rbd_pool="volumes",
        ceph_kubernetes_user="k8s",
    )
    objects = _objects(docs)
    sc = objects["StorageClass", "fast"]
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["parameters"]["pool"] == "volumes"
    assert objects["Secret", "csi-rbd-secret"]["stringData"]["userID"] == "k8s"
    assert objects["Deployment", "csi-rbdplugin-provisioner"]["spec"]["replicas"] == 3
    node = objects["DaemonSet", "csi-rbdplugin"]["spec"]["template"]["spec"]
    paths = {v["name"]: v["hostPath"]["path"] for v in node["volumes"] if "hostPath" in v}
    assert paths["registration-dir"] == "/data/kubelet/plugins_registry/"
    assert paths["socket-dir"] == "/data/kubelet/plugins/rbd.csi.ceph.com"


def test_images_come_from_the_bundle_when_it_has_them(tmp_path: Path, default_docs) -> None:
    bundle = {name: {"image": f"mirror.example/{name}:pinned"} for name in DRIVER_IMAGES}
    objects = _objects(render(tmp_path, artifacts=bundle))
    provisioner = _containers(objects["Deployment", "csi-rbdplugin-provisioner"])
    assert provisioner["csi-rbdplugin"]["image"] == "mirror.example/image-cephcsi:pinned"
    assert provisioner["csi-provisioner"]["image"] == "mirror.example/image-csi-provisioner:pinned"
    node = _containers(objects["DaemonSet", "csi-rbdplugin"])
    assert (
        node["driver-registrar"]["image"] == "mirror.example/image-csi-node-driver-registrar:pinned"
    )
    # Without them (ceph_csi_driver validate on the lab), the references the manifest names.
    default = _containers(_objects(default_docs)["Deployment", "csi-rbdplugin-provisioner"])
    assert default["csi-rbdplugin"]["image"].startswith("quay.io/cephcsi/cephcsi:v")


def test_the_snapshot_controller_runs_unprivileged_from_the_bundles_image(default_docs) -> None:
    deployment = _objects(default_docs)["Deployment", "snapshot-controller"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.k8s.io/sig-storage/snapshot-controller:v8.4.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_reference_images_are_the_ones_the_bundle_manifest_names() -> None:
    """ceph_csi_driver validate renders these when the bundle has no ceph-csi image: they
    must be what offline-bundle/manifest.yml pins (an entry's image) or plans (a slot's note)."""
    vars_ = yaml.safe_load((REPO / "roles" / "ceph_csi" / "vars" / "main.yml").read_text())
    manifest = yaml.safe_load((REPO / "offline-bundle" / "manifest.yml").read_text())
    entries = {a["name"]: a for a in manifest["artifacts"]}
    slots = {s["name"]: s for s in manifest.get("slots") or []}
    for name, reference in vars_["_ceph_csi_reference_images"].items():
        if name in entries:
            assert (
                entries[name]["image"].replace("{version}", entries[name]["version"]) == reference
            ), name
        else:
            assert name in slots, f"{name}: neither an artifact nor a slot of the bundle manifest"
            assert reference in " ".join(slots[name]["note"].split()), (name, slots[name]["note"])
