"""Several Kubernetes releases in one manifest: `kube_versions`, per-entry `kube`, the
release a load selects, and the slots that keep a production build of a release from
starting."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from airlock.bundle.manifest import ManifestError, load_manifest, missing_for, parse_manifest
from airlock.cli import bundle as cli

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "offline-bundle" / "manifest.yml"
RELEASES = ("v1.37.2", "v1.36.3", "v1.35.4")
A = "a" * 64

# Per release: kubeadm, etcd, coredns, pause as pinned (None: a slot of that release).
EXPECTED = {
    "v1.37.2": (None, None, None, "3.10.2"),
    "v1.36.3": ("v1.36.3", "v3.6.14", "v1.14.2", "3.10.2"),
    "v1.35.4": ("v1.35.4", "v3.6.14", None, "3.10.1"),
}


def _kubeadm(version: str, kube: list[str] | None) -> dict:
    entry = {
        "name": "kubeadm",
        "version": version,
        "url": "https://dl.k8s.io/release/{version}/bin/linux/{arch}/kubeadm",
        "target": "bin/{arch}/kubeadm",
        "sha256": {"amd64": A},
    }
    return entry if kube is None else {**entry, "kube": kube}


DOC = {
    "schema": 1,
    "kube_version": "v1.2.0",
    "kube_versions": ["v1.2.0", "v1.1.0"],
    "architectures": ["amd64"],
    "artifacts": [_kubeadm("v1.2.0", ["v1.2.0"]), _kubeadm("v1.1.0", ["v1.1.0"])],
    "slots": [
        {"name": "kubelet", "kube": ["v1.2.0"], "note": "pin it"},
        {"name": "harbor-offline-installer", "issue": "harbor"},
    ],
}


def _parse(doc: dict, kube_version: str | None = None):
    return parse_manifest(copy.deepcopy(doc), Path("m.yml"), kube_version)


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_pins_what_its_kubeadm_expects(release):
    m = load_manifest(PRODUCTION, release)
    assert m.kube_version == release
    components = m.components
    got = tuple(components.get(c) for c in ("kubeadm", "etcd", "coredns", "pause"))
    assert got == EXPECTED[release]
    # What is not pinned is a slot of that release.
    names = {"kubeadm": "kubeadm", "etcd": "etcd", "coredns": "image-coredns"}
    for (component, name), version in zip(names.items(), got, strict=False):
        assert (version is None) == (name in missing_for(m)), component


@pytest.mark.parametrize("release", RELEASES)
def test_a_release_holds_no_other_release_entries(release):
    m = load_manifest(PRODUCTION, release)
    others = [r for r in RELEASES if r != release]
    for art in m.artifacts:
        assert release in art.extra.get("kube", RELEASES), art.name
        assert art.version not in others, art.name
    # The runtime is shared by every release.
    assert {"containerd", "runc", "cni-plugins"} <= {a.name for a in m.artifacts}


def test_the_default_release_is_the_manifest_kube_version():
    assert load_manifest(PRODUCTION).kube_version == "v1.37.2"
    assert _parse(DOC).kube_version == "v1.2.0"
    assert _parse(DOC, "1.1.0").version_of("kubeadm") == "v1.1.0"


def test_kube_naming_a_release_not_in_kube_versions_is_an_error():
    doc = copy.deepcopy(DOC)
    doc["artifacts"][1]["kube"] = ["v1.0.9"]
    with pytest.raises(ManifestError) as exc:
        _parse(doc)
    assert "artifact kubeadm: kube lists v1.0.9, which is not in kube_versions" in str(exc.value)


def test_an_unknown_kube_version_is_refused_naming_the_releases():
    with pytest.raises(ManifestError) as exc:
        load_manifest(PRODUCTION, "1.34.4")
    msg = str(exc.value)
    assert "--kube-version 1.34.4" in msg
    assert all(r in msg for r in RELEASES)


def test_names_repeat_across_releases_but_not_within_one():
    assert [a.version for a in _parse(DOC, "v1.2.0").artifacts] == ["v1.2.0"]
    assert [a.version for a in _parse(DOC, "v1.1.0").artifacts] == ["v1.1.0"]
    doc = copy.deepcopy(DOC)
    doc["artifacts"][1]["kube"] = ["v1.1.0", "v1.2.0"]
    with pytest.raises(ManifestError, match="kubeadm: the name is used twice"):
        _parse(doc)
    doc["artifacts"][1].pop("kube")  # no kube: every release, so v1.2.0's too
    with pytest.raises(ManifestError, match="kubeadm: the name is used twice"):
        _parse(doc)


def test_missing_for_names_only_the_slots_of_that_release():
    assert missing_for(_parse(DOC)) == ["kubelet"]
    assert missing_for(_parse(DOC), "1.1.0") == []
    assert missing_for(_parse(DOC, "v1.1.0"), "v1.2.0") == ["kubelet"]


def test_production_slots_per_release_say_how_to_pin_them():
    m = load_manifest(PRODUCTION)
    assert missing_for(m, "v1.36.3") == ["image-kube-proxy"]
    assert {"kubeadm", "kubelet", "kubectl", "crictl", "etcd"} <= set(missing_for(m, "v1.37.2"))
    for slot in m.slots:
        assert "version" not in slot
        if slot.get("kube"):
            assert set(slot["kube"]) <= set(RELEASES), slot["name"]
            assert "curl -sL" in slot["note"] or "skopeo inspect" in slot["note"], slot["name"]


def test_production_build_of_an_unpinned_release_refuses_before_downloading(tmp_path, capsys):
    cache = tmp_path / "cache"
    rc = cli.main(
        [
            "bundle",
            "build",
            "--manifest",
            str(PRODUCTION),
            "--kube-version",
            "1.37.2",
            "--arch",
            "amd64",
            "--cache-dir",
            str(cache),
            "--output",
            str(tmp_path / "b.tar"),
            "--mirror",
            "http://127.0.0.1:9",  # nothing listens: a download would fail, not reach out
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Kubernetes v1.37.2" in err and "kubeadm" in err and "etcd" in err
    assert "slot" in err and "docs/bundle.md" in err
    assert not cache.exists() and not (tmp_path / "b.tar").exists()
