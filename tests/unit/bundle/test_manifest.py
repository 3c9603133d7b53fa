"""Manifest schema: what loads, what is refused and why."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from airlock.bundle.manifest import ManifestError, load_manifest, override_mirrors, parse_manifest

ROOT = Path(__file__).resolve().parents[3]
A = "a" * 64
B = "b" * 64

GOOD = {
    "schema": 1,
    "kube_version": "v1.34.4",
    "architectures": ["amd64", "arm64"],
    "mirrors": {"k8s": "https://dl.k8s.io", "github": "https://github.com"},
    "artifacts": [
        {
            "name": "kubeadm",
            "version": "v1.34.4",
            "roles": ["kube_control_plane"],
            "url": "{mirror.k8s}/release/{version}/bin/linux/{arch}/kubeadm",
            "target": "bin/{arch}/kubeadm",
            "sha256": {"amd64": A, "arm64": B},
        },
        {
            "name": "etcd-archive",
            "component": "etcd",
            "kind": "archive",
            "version": "v3.6.4",
            "url": "{mirror.github}/etcd-io/etcd/releases/download/{version}/"
            "etcd-{version}-linux-{arch}.tar.gz",
            "target": "archives/{arch}/etcd.tar.gz",
            "sha256": {"amd64": B},
        },
    ],
    "slots": [{"name": "harbor-offline-installer", "issue": 5}],
}


def _parse(doc):
    return parse_manifest(doc, Path("m.yml"))


def _broken(mutate):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    return str(exc.value)


def test_versions_can_be_read():
    m = _parse(GOOD)
    assert m.kube_version == "v1.34.4"
    assert m.version_of("etcd") == "v3.6.4"
    assert m.components == {"kubeadm": "v1.34.4", "etcd": "v3.6.4"}
    assert m.has_version("etcd", "v3.6.4") and not m.has_version("etcd", "v3.5.0")
    with pytest.raises(ManifestError, match=r"no component 'flannel'.*pins: etcd, kubeadm"):
        m.version_of("flannel")


def test_resolve_per_arch_fills_templates():
    m = _parse(GOOD)
    amd = {a.name: a for a in m.resolve("amd64")}
    arm = {a.name: a for a in m.resolve("arm64")}
    assert amd["kubeadm"].url == "https://dl.k8s.io/release/v1.34.4/bin/linux/amd64/kubeadm"
    assert amd["kubeadm"].target == "bin/amd64/kubeadm"
    assert arm["kubeadm"].sha256 == B
    assert "etcd-archive" not in arm  # pinned for amd64 only


def test_mirror_overrides():
    m = _parse(GOOD)
    one = override_mirrors(m, ["k8s=http://mirror.lan/k8s/"])
    assert one == {"k8s": "http://mirror.lan/k8s"}
    assert m.resolve("amd64", one)[0].url.startswith("http://mirror.lan/k8s/release/")
    assert override_mirrors(m, ["https://mirror.lan"]) == {
        "k8s": "https://mirror.lan/k8s",
        "github": "https://mirror.lan/github",
    }
    with pytest.raises(ManifestError, match="no mirror named 'quay'"):
        override_mirrors(m, ["quay=http://x"])


def test_version_without_checksum_is_an_error():
    msg = _broken(lambda d: d["artifacts"][0].pop("sha256"))
    assert "artifact kubeadm: version v1.34.4 has no sha256" in msg


@pytest.mark.parametrize("bad", ["", "abc", A.upper(), A[:-1] + "g", None])
def test_malformed_checksum_is_an_error(bad):
    msg = _broken(lambda d: d["artifacts"][0]["sha256"].update(arm64=bad))
    assert "artifact kubeadm: sha256 for arm64 is" in msg


def test_missing_version_is_an_error():
    assert "artifact kubeadm: version is missing" in _broken(
        lambda d: d["artifacts"][0].pop("version")
    )


def test_unknown_arch_and_placeholder_and_mirror():
    msg = _broken(lambda d: d["artifacts"][0]["sha256"].update(s390x=A))
    assert "sha256 for 's390x', which is not in architectures" in msg
    msg = _broken(lambda d: d["artifacts"][0].update(url="{mirror.k8s}/{os}/kubeadm"))
    assert "unknown placeholder {os}" in msg
    msg = _broken(lambda d: d["artifacts"][0].update(url="{mirror.quay}/kubeadm"))
    assert "{mirror.quay} names no mirror" in msg


def test_duplicate_names_and_versioned_slots_are_errors():
    msg = _broken(lambda d: d["artifacts"].append(copy.deepcopy(d["artifacts"][0])))
    assert "artifact kubeadm: the name is used twice" in msg
    msg = _broken(lambda d: d["slots"][0].update(version="v2.13.0"))
    assert "slot harbor-offline-installer: has a version" in msg


def test_every_problem_is_listed_at_once():
    def two(d):
        d["artifacts"][0].pop("sha256")
        d["artifacts"][1]["sha256"]["amd64"] = "nope"

    msg = _broken(two)
    assert "kubeadm" in msg and "etcd-archive" in msg


def test_load_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "none.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("schema: [1\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(bad)
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(GOOD))
    assert load_manifest(good).kube_version == "v1.34.4"
