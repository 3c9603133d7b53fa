"""airlock.cluster.bundle_artifacts: the host's artifact map, written by bundle_client and
looked up by every other role (docs/bundle.md, "Artifact map for roles")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.modules import bundle_artifacts

from tests.module_harness import ModuleFailed, run_module

BUNDLE = {"url": "https://10.0.0.11:8843", "profile": "lab", "kube_version": "v1.34.4"}

# Entries as bundle_client's wanted.yml.j2 passes them (MANIFEST.json's fields, path
# relative to the bundle), one of each kind the roles read.
ENTRIES: list[dict[str, Any]] = [
    {
        "name": "kubeadm",
        "kind": "binary",
        "path": "bin/amd64/kubeadm",
        "sha256": "a" * 64,
        "size": 7,
        "version": "v1.34.4",
        "component": "kubeadm",
        "image": "",
    },
    {
        "name": "etcd",
        "kind": "archive",
        "path": "archives/amd64/etcd-v3.6.5.tar.gz",
        "sha256": "b" * 64,
        "size": 4,
        "version": "v3.6.5",
        "component": "etcd",
        "image": "",
    },
    {
        "name": "image-pause",
        "kind": "image",
        "path": "images/amd64/pause_3.10.1.oci.tar",
        "sha256": "c" * 64,
        "size": 5,
        "version": "3.10.1",
        "component": "pause",
        "image": "registry.k8s.io/pause:3.10.1",
    },
    # An image without a reference in the manifest is still imported: keyed by its name.
    {"name": "image-x", "kind": "image", "path": "images/amd64/x.oci.tar", "sha256": "d" * 64},
]


def fetch(root: Path) -> None:
    """Put the files on 'the host' as bundle_client's get_url would."""
    for entry in ENTRIES:
        path = root / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * int(entry.get("size", 3)))


def publish(root: Path, check_mode: bool = False, **extra: Any) -> dict[str, Any]:
    params = {"dir": str(root), "artifacts": ENTRIES, "bundle": BUNDLE, **extra}
    return run_module(bundle_artifacts, params, check_mode=check_mode)


def lookup(root: Path, **params: Any) -> dict[str, Any]:
    return run_module(bundle_artifacts, {"dir": str(root), **params})


def test_publish_writes_the_map_and_sets_the_facts(tmp_path):
    fetch(tmp_path)
    result = publish(tmp_path)
    assert result["changed"] and result["found"]
    facts = result["ansible_facts"]
    assert facts["airlock_artifacts"]["kubeadm"] == {
        "path": f"{tmp_path}/bin/amd64/kubeadm",
        "kind": "binary",
        "version": "v1.34.4",
        "sha256": "a" * 64,
        "size": 7,
        "component": "kubeadm",
    }
    assert facts["airlock_artifacts"]["etcd"]["kind"] == "archive"
    assert facts["airlock_artifacts"]["image-pause"]["image"] == "registry.k8s.io/pause:3.10.1"
    assert facts["airlock_images"] == {
        "registry.k8s.io/pause:3.10.1": f"{tmp_path}/images/amd64/pause_3.10.1.oci.tar",
        "image-x": f"{tmp_path}/images/amd64/x.oci.tar",
    }
    written = json.loads((tmp_path / "artifacts.json").read_text())
    assert written["bundle"] == BUNDLE
    assert written["artifacts"] == facts["airlock_artifacts"]
    assert oct((tmp_path / "artifacts.json").stat().st_mode & 0o777) == "0o644"


def test_publishing_the_same_map_again_changes_nothing(tmp_path):
    fetch(tmp_path)
    publish(tmp_path)
    before = (tmp_path / "artifacts.json").stat().st_mtime_ns
    again = publish(tmp_path)
    assert not again["changed"]
    assert (tmp_path / "artifacts.json").stat().st_mtime_ns == before


def test_check_mode_reports_and_sets_facts_without_writing(tmp_path):
    result = publish(tmp_path / "fresh", check_mode=True)
    assert result["changed"]
    assert "kubeadm" in result["ansible_facts"]["airlock_artifacts"]
    assert result["diff"]["before"] == ""
    assert not (tmp_path / "fresh").exists()


def test_a_role_reads_back_what_bundle_client_published(tmp_path):
    fetch(tmp_path)
    published = publish(tmp_path)["ansible_facts"]
    read = lookup(tmp_path, require=["kubeadm", "etcd", "image-pause"], caller="kubernetes")
    assert not read["changed"] and read["found"]
    assert read["ansible_facts"] == published


@pytest.mark.parametrize(
    ("require", "damage", "expected"),
    [
        (
            ["kubeadm", "runc", "flannel"],
            None,
            r"^containerd: the bundle's artifacts on this host lack "
            r"runc \(not in the bundle from https://10\.0\.0\.11:8843 \(profile lab, "
            r"Kubernetes v1\.34\.4\)\); flannel \(not in .*\) \(map .*/artifacts\.json\): "
            r"run the bundle stage first .* with a bundle that has them; or install from "
            r"the distribution\.$",
        ),
        (["kubeadm"], "remove", r"kubeadm \(.*/bin/amd64/kubeadm is gone\)"),
        (["kubeadm"], "truncate", r"kubeadm \(.*/bin/amd64/kubeadm has 2 bytes, not 7\)"),
    ],
    ids=["not-in-bundle", "file-gone", "file-cut-short"],
)
def test_a_missing_artifact_is_named_with_the_bundle(tmp_path, require, damage, expected):
    fetch(tmp_path)
    publish(tmp_path)
    kubeadm = tmp_path / "bin" / "amd64" / "kubeadm"
    if damage == "remove":
        kubeadm.unlink()
    elif damage == "truncate":
        kubeadm.write_bytes(b"xx")
    with pytest.raises(ModuleFailed, match=expected) as failed:
        lookup(
            tmp_path, require=require, caller="containerd", hint="or install from the distribution"
        )
    assert failed.value.result["map"] == f"{tmp_path}/artifacts.json"


def test_without_a_map_nothing_required_means_empty_facts(tmp_path):
    # An install from the distribution: no bundle stage ran, the role asks for nothing.
    result = lookup(tmp_path)
    assert result["found"] is False
    assert result["ansible_facts"] == {"airlock_artifacts": {}, "airlock_images": {}}


def test_without_a_map_a_required_artifact_says_run_the_bundle_stage(tmp_path):
    with pytest.raises(
        ModuleFailed,
        match=r"^etcd: no artifact map .*artifacts\.json on this "
        r"host, so none of etcd: run the bundle stage first",
    ):
        lookup(tmp_path, require=["etcd"], caller="etcd")


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [{"name": "a", "path": "/etc/passwd"}],
            r"entry a: artifact path '/etc/passwd' is absolute",
        ),
        (
            [{"name": "a", "path": "bin/../../x"}],
            r"entry a: artifact path 'bin/\.\./\.\./x' leaves the directory",
        ),
        ([{"name": "a", "path": ""}], r"entry a: artifact path '' is empty"),
        ([{"name": "", "path": "bin/x"}], r"entry with path 'bin/x' has no name"),
        (
            [{"name": "a", "path": "bin/a"}, {"name": "a", "path": "bin/b"}],
            r"artifact a is listed twice",
        ),
    ],
)
def test_a_manifest_entry_that_cannot_be_mapped_is_refused(tmp_path, entries, expected):
    with pytest.raises(ModuleFailed, match=expected):
        run_module(bundle_artifacts, {"dir": str(tmp_path), "artifacts": entries})
    assert not (tmp_path / "artifacts.json").exists()
    # The bundle stage's check before it creates or fetches anything refuses the same.
    with pytest.raises(ModuleFailed, match=expected):
        params = {"dir": str(tmp_path), "artifacts": entries, "validate_only": True}
        run_module(bundle_artifacts, params)


def test_validate_only_writes_nothing_and_sets_no_facts(tmp_path):
    entries = [{"name": "kubeadm", "path": "bin/amd64/kubeadm", "kind": "binary"}]
    params = {"dir": str(tmp_path), "artifacts": entries, "validate_only": True}
    result = run_module(bundle_artifacts, params)
    assert result["changed"] is False and "ansible_facts" not in result
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_map_is_named(tmp_path):
    (tmp_path / "artifacts.json").write_text("{not json")
    with pytest.raises(ModuleFailed, match=r"cannot read the artifact map .*artifacts\.json"):
        lookup(tmp_path)
    (tmp_path / "artifacts.json").write_text("[]")
    with pytest.raises(ModuleFailed, match=r"is not an artifact map"):
        lookup(tmp_path)
