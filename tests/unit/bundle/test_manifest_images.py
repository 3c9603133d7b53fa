"""Registry images in the manifest: kind image with ref + digest instead of url + sha256."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from airlock.bundle.manifest import ManifestError, override_mirrors, parse_manifest

ROOT = Path(__file__).resolve().parents[3]
INDEX = "sha256:" + "a" * 64
ARM = "sha256:" + "b" * 64

DOC = {
    "schema": 1,
    "kube_version": "v1.34.4",
    "architectures": ["amd64", "arm64"],
    "mirrors": {"registry-k8s": "docker://registry.k8s.io"},
    "artifacts": [
        {
            "name": "image-kube-apiserver",
            "component": "kube-apiserver",
            "kind": "image",
            "version": "v1.34.4",
            "ref": "{mirror.registry-k8s}/kube-apiserver:{version}",
            "digest": INDEX,
            "target": "images/{arch}/kube-apiserver_{version}.oci.tar",
            "roles": ["kube_control_plane"],
        }
    ],
}


def _parse(doc):
    return parse_manifest(doc, Path("m.yml"))


def _with(**changes):
    doc = copy.deepcopy(DOC)
    doc["artifacts"][0].update(changes)
    for key, value in changes.items():
        if value is None:
            del doc["artifacts"][0][key]
    return doc


def test_an_index_digest_pins_every_architecture():
    m = _parse(DOC)
    assert m.components == {"kube-apiserver": "v1.34.4"}
    (amd,) = m.resolve("amd64")
    assert amd.url == f"docker://registry.k8s.io/kube-apiserver@{INDEX}"
    assert amd.image == "registry.k8s.io/kube-apiserver:v1.34.4"
    assert amd.digest == INDEX and amd.sha256 == ""
    assert amd.target == "images/amd64/kube-apiserver_v1.34.4.oci.tar"
    assert m.resolve("arm64")[0].digest == INDEX


def test_per_arch_digests_ship_only_those_architectures():
    m = _parse(_with(digest={"arm64": ARM}))
    assert m.resolve("amd64") == []
    assert m.resolve("arm64")[0].digest == ARM


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([], "registry.k8s.io"),
        (["https://mirror.internal"], "mirror.internal/registry-k8s"),
        (["registry-k8s=docker://harbor.internal:8443/k8s"], "harbor.internal:8443/k8s"),
    ],
)
def test_a_mirror_moves_the_source_but_never_the_imported_name(spec, expected):
    m = _parse(DOC)
    (item,) = m.resolve("amd64", override_mirrors(m, spec))
    assert item.url == f"docker://{expected}/kube-apiserver@{INDEX}"
    assert item.image == "registry.k8s.io/kube-apiserver:v1.34.4"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"digest": None}, "has no digest; add digest: sha256:<64 hex>"),
        ({"digest": "a" * 64}, "not sha256:<64 lowercase hex>"),
        ({"digest": {"s390x": INDEX}}, "digest for 's390x', which is not in architectures"),
        ({"sha256": {"amd64": "a" * 64}}, "pinned by digest, not url/sha256"),
        ({"kind": "binary"}, "ref is only for kind image"),
        ({"ref": "{mirror.quay}/x:1"}, "{mirror.quay} names no mirror"),
        ({"ref": f"registry.k8s.io/pause@{INDEX}"}, "put it under digest: instead"),
        ({"target": None}, "target is missing"),
    ],
)
def test_broken_registry_images_are_refused_with_the_fix(changes, message):
    with pytest.raises(ManifestError) as exc:
        _parse(_with(**changes))
    assert "artifact image-kube-apiserver" in str(exc.value)
    assert message in str(exc.value)


def test_production_manifest_pins_containerd_from_its_release_archive():
    from airlock.bundle.manifest import load_manifest

    m = load_manifest(ROOT / "offline-bundle" / "manifest.yml")
    assert m.has_version("containerd", "v2.2.1")
    (amd,) = [a for a in m.resolve("amd64") if a.name == "containerd"]
    assert amd.url.endswith("/v2.2.1/containerd-2.2.1-linux-amd64.tar.gz")
    assert "registry-k8s" in m.mirrors
