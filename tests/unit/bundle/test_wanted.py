"""What each host fetches from the bundle (roles/bundle_client/templates/wanted.yml.j2):
the artifacts of its architecture meant for its groups, never .debs; with
airlock_image_source registry, every image to the registry hosts and none to the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.playbook import run_playbook

PLAYBOOK = Path(__file__).with_name("wanted.yml")
NODE = ["kube_control_plane", "kube_node"]


def _artifact(name: str, kind: str, roles: list[str], arch: str = "amd64") -> dict[str, Any]:
    return {
        "name": name, "kind": kind, "arch": arch, "roles": roles,
        "path": f"{kind}/{arch}/{name}", "sha256": "0" * 64, "size": 1,
    }  # fmt: skip


MANIFEST = {
    "artifacts": [
        _artifact("kubelet", "binary", NODE),
        _artifact("kubelet-arm", "binary", NODE, arch="arm64"),
        _artifact("etcd", "archive", ["etcd"]),
        _artifact("image-pause", "image", NODE),
        _artifact("image-kube-apiserver", "image", ["kube_control_plane"]),
        _artifact("image-pause-arm", "image", NODE, arch="arm64"),
        _artifact("deb-curl", "deb", ["all"]),
    ]
}
INVENTORY = {
    "all": {
        "children": {
            "kube_control_plane": {"hosts": {"m1": {}}},
            "kube_node": {"hosts": {"w1": {}, "w2": {}}},
            "etcd": {"hosts": {"m1": {}}},
            "registry": {"hosts": {"w2": {}, "reg1": {}}},
        }
    }
}


def wanted(tmp_path: Path, image_source: str) -> dict[str, list[str]]:
    out = tmp_path / "out"
    out.mkdir()
    extra = {
        "out": str(out),
        "airlock_arch": "amd64",
        "airlock_image_source": image_source,
        "bundle_client_artifacts": [],
        "_bundle_client_manifest": {"json": MANIFEST},
    }
    run_playbook(PLAYBOOK, tmp_path, INVENTORY, extra)
    return {p.stem: sorted(a["name"] for a in json.loads(p.read_text())) for p in out.iterdir()}


def test_import_gives_each_node_the_images_of_its_groups(tmp_path: Path) -> None:
    assert wanted(tmp_path, "import") == {
        "m1": ["etcd", "image-kube-apiserver", "image-pause", "kubelet"],
        "w1": ["image-pause", "kubelet"],
        "w2": ["image-pause", "kubelet"],
        "reg1": [],
    }


def test_registry_gives_every_image_to_the_registry_hosts_only(tmp_path: Path) -> None:
    assert wanted(tmp_path, "registry") == {
        "m1": ["etcd", "kubelet"],
        "w1": ["kubelet"],
        "w2": ["image-kube-apiserver", "image-pause", "kubelet"],
        "reg1": ["image-kube-apiserver", "image-pause"],
    }
