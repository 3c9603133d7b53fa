"""The lab profile's parts: go.mod wrappers, OCI archives, the flat apt repository."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from airlock.bundle.build import debrepo
from airlock.bundle.build.archive import Member
from airlock.bundle.manifest import load_manifest
from airlock.bundle.pin.aptroot import ResolvedDeb
from airlock.lab.bundle import gobuild, oci

ROOT = Path(__file__).resolve().parents[3]

K8S_GOMOD = """module k8s.io/kubernetes

go 1.24.0

require (
	github.com/blang/semver/v4 v4.0.0
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

ETCD_GOMOD = """module go.etcd.io/etcd/server/v3

require go.etcd.io/etcd/api/v3 v3.6.5

replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
"""


def test_kubernetes_staging_modules_are_replaced_by_published_versions():
    target = gobuild.GoTarget(
        "kubeadm", "k8s.io/kubernetes", "v1.34.4", "k8s.io/kubernetes/cmd/kubeadm", "kubernetes"
    )
    text = gobuild._wrapper_gomod(target, K8S_GOMOD)
    assert "require k8s.io/kubernetes v1.34.4" in text
    assert "\tk8s.io/api => k8s.io/api v0.34.4" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in text


def test_guard_replaces_are_not_copied():
    target = gobuild.GoTarget(
        "etcd", "go.etcd.io/etcd/server/v3", "v3.6.5", "go.etcd.io/etcd/server/v3", "etcd"
    )
    assert "replace" not in gobuild._wrapper_gomod(target, ETCD_GOMOD)


def test_kube_ldflags_stamp_the_version_kubeadm_reads():
    flags = gobuild.kube_ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags


def _image(tmp_path):
    binary = tmp_path / "kube-apiserver"
    binary.write_bytes(b"\x7fELF fake binary")
    spec = oci.ImageSpec(
        "registry.k8s.io/kube-apiserver:v1.34.4",
        "amd64",
        [[oci.ImageFile(binary, "/usr/local/bin/kube-apiserver")]],
    )
    out = tmp_path / "img.oci.tar"
    return spec, out, oci.write_oci_archive(spec, out)


def test_oci_archive_is_a_valid_layout_with_kubeadm_names(tmp_path):
    _, out, digest = _image(tmp_path)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert json.load(tar.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.load(tar.extractfile("index.json"))
        desc = index["manifests"][0]
        assert desc["digest"] == digest
        assert (
            desc["annotations"]["io.containerd.image.name"]
            == "registry.k8s.io/kube-apiserver:v1.34.4"
        )
        assert desc["annotations"]["org.opencontainers.image.ref.name"] == "v1.34.4"
        # Every blob is stored under its own digest.
        for name in names:
            if name.startswith("blobs/sha256/") and tar.getmember(name).isfile():
                data = tar.extractfile(name).read()
                assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
        manifest = json.loads(tar.extractfile(f"blobs/sha256/{digest[7:]}").read())
        config = json.loads(
            tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}").read()
        )
        layer = tar.extractfile(f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}").read()
    raw = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    assert config["architecture"] == "amd64"
    with tarfile.open(fileobj=io.BytesIO(raw)) as layer_tar:
        member = layer_tar.getmember("usr/local/bin/kube-apiserver")
        assert member.mode == 0o755
        assert layer_tar.extractfile(member).read() == b"\x7fELF fake binary"


def test_oci_archive_is_reproducible(tmp_path):
    spec, out, digest = _image(tmp_path)
    first = out.read_bytes()
    assert oci.write_oci_archive(spec, out) == digest
    assert out.read_bytes() == first


def _fake_deb(tmp_path, name, version):
    root = tmp_path / f"{name}-pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: airlock <a@example.org>\nDescription: test package\n"
    )
    (root / "usr" / "share" / name).mkdir(parents=True)
    (root / "usr" / "share" / name / "hello").write_text("hi\n")
    deb = tmp_path / f"{name}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def test_flat_repository_index(tmp_path):
    debs = [_fake_deb(tmp_path, "alpha", "1.0"), _fake_deb(tmp_path, "beta", "2:3.1-1")]
    members = [
        Member(
            f"debs/bookworm/{d.name}",
            d,
            hashlib.sha256(d.read_bytes()).hexdigest(),
            d.stat().st_size,
        )
        for d in debs
    ]
    index = {m.arcname: m for m in debrepo.index_members(members, tmp_path / "idx", {})}
    assert set(index) == {
        "debs/bookworm/Packages",
        "debs/bookworm/Packages.gz",
        "debs/bookworm/Release",
    }
    packages = index["debs/bookworm/Packages"].source.read_text()
    assert "Package: alpha\n" in packages and "Version: 2:3.1-1\n" in packages
    assert f"Filename: ./{debs[0].name}\n" in packages
    assert f"SHA256: {members[1].sha256}\n" in packages
    release = index["debs/bookworm/Release"].source.read_text()
    gz = index["debs/bookworm/Packages.gz"]
    assert f" {gz.sha256} {gz.size} Packages.gz" in release
    assert gzip.decompress(gz.source.read_bytes()).decode() == packages


def test_apt_reads_the_flat_repository(tmp_path):
    """apt itself (not our parser) accepts the repository and resolves a package from it."""
    deb = _fake_deb(tmp_path, "airlock-probe", "1.0")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(deb, repo / deb.name)
    member = Member(
        f"debs/bookworm/{deb.name}",
        repo / deb.name,
        hashlib.sha256(deb.read_bytes()).hexdigest(),
        deb.stat().st_size,
    )
    for m in debrepo.index_members([member], tmp_path / "idx", {}):
        shutil.copy(m.source, repo / m.arcname.rsplit("/", 1)[1])
    state = tmp_path / "apt"
    for sub in (
        "lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
    ):
        (state / sub).mkdir(parents=True)
    (state / "etc" / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    opts = [
        f"-oDir::State={state}",
        f"-oDir::Cache={state / 'cache'}",
        f"-oDir::Etc={state / 'etc'}",
        f"-oDir::State::status={state / 'status'}",
    ]
    (state / "status").write_text("")
    subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True)
    shown = subprocess.run(
        ["apt-cache", *opts, "show", "airlock-probe"], check=True, capture_output=True, text=True
    ).stdout
    assert f"SHA256: {member.sha256}" in shown


@pytest.mark.parametrize("release", ["v1.37.2", "v1.36.3", "v1.35.4"])
def test_production_manifest_is_valid(release):
    m = load_manifest(ROOT / "offline-bundle" / "manifest.yml", release)
    assert m.kube_version == release
    for arch in ("amd64", "arm64"):
        assert {"containerd", "runc", "cni-plugins"} <= {a.name for a in m.resolve(arch)}
    if release == "v1.37.2":  # not pinned yet: its programs and etcd are slots
        return
    assert m.version_of("kubeadm") == release
    for arch in ("amd64", "arm64"):
        assert {a.name for a in m.resolve(arch)} >= {"kubeadm", "kubelet", "kubectl"}
    # etcd, etcdctl and etcdutl travel in upstream's release archive, which roles/etcd
    # unpacks (tasks/install_bundle.yml finds it as archives/ARCH/etcd-*.tar.gz).
    etcd = next(a for a in m.resolve("amd64") if a.name == "etcd")
    assert etcd.kind == "archive" and etcd.roles == ("etcd",)
    assert etcd.target == f"archives/amd64/etcd-{etcd.version}.tar.gz"
    assert etcd.url.endswith(f"/etcd-{etcd.version}-linux-amd64.tar.gz")


@pytest.mark.parametrize("release", ["v1.37.2", "v1.36.3"])
def test_lab_builds_the_etcd_programs_at_one_version(release):
    from airlock.lab.bundle import profile as lab

    rel = lab.release(release)
    targets = {t.name: t for t in lab.go_targets(rel)}
    # etcd 3.6's etcdctl has no snapshot status/restore; etcd_snapshot needs etcdutl.
    for name, module in (
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3"),
        ("etcdutl", "go.etcd.io/etcd/etcdutl/v3"),
    ):
        assert targets[name].module == module
        assert targets[name].version == rel.etcd
        assert lab.BINARY_ROLES[name] == ("etcd",)
        assert ("CGO_ENABLED", "1") not in targets[name].env


def _lab_binaries(cache, rel, content):
    from airlock.lab.bundle import profile as lab

    binaries = {}
    for target in lab.go_targets(rel):
        path = gobuild.output_path(cache, target, "amd64")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(target))
        binaries[target.name] = path
    return binaries


def test_lab_manifest_passes_the_same_schema(tmp_path):
    from airlock.bundle.manifest import parse_manifest
    from airlock.lab.bundle import profile as lab

    cache = tmp_path / "lab"
    rel = lab.release("v1.36.3")
    binaries = _lab_binaries(cache, rel, lambda t: t.name.encode())
    image_path = cache / "images" / "amd64" / f"pause_{rel.pause}_x.oci.tar"
    image_path.parent.mkdir(parents=True)
    image_path.write_bytes(b"image")
    pause = next(i for i in lab.images(rel) if i.name == "pause")
    deb = ResolvedDeb(
        "conntrack",
        "1:1.4.7-1+b2",
        "amd64",
        "http://deb.debian.org/debian/pool/main/c/conntrack-tools/conntrack_1.4.7-1%2bb2_amd64.deb",
        "conntrack_1.4.7-1+b2_amd64.deb",
        10,
        "c" * 64,
    )
    archives = lab._pack_archives(cache, "amd64", rel, binaries)
    crd = lab.files()[0]
    crd_path = cache / "files" / crd.version / "crd.yaml"
    crd_path.parent.mkdir(parents=True)
    crd_path.write_text("kind: CustomResourceDefinition\n")
    doc = lab._manifest_doc(
        cache,
        "amd64",
        rel,
        binaries,
        {"pause": (pause, image_path)},
        [deb],
        archives,
        {crd.name: (crd, crd_path)},
    )
    m = parse_manifest(doc, cache / "manifest.yml")
    assert m.kube_version == "v1.36.3"
    assert m.version_of("kubelet") == "v1.36.3" and m.version_of("etcd") == rel.etcd
    by_name = {a.name: a for a in m.resolve("amd64")}
    assert by_name["kubeadm"].url == f"{cache.as_uri()}/bin/amd64/v1.36.3/kubeadm"
    for name in ("etcd", "etcdctl", "etcdutl"):
        assert by_name[name].target == f"bin/amd64/{name}"
        assert by_name[name].roles == ("etcd",) and by_name[name].version == rel.etcd
    assert by_name["image-pause"].image == "registry.k8s.io/pause:3.10.2"
    # Under production's mirror name, named as in production's pinned files; the file keeps
    # the pool's name (no epoch).
    conntrack = by_name["deb-bookworm-amd64-conntrack"]
    assert conntrack.url == deb.url and conntrack.version == "1:1.4.7-1+b2"
    assert conntrack.target == "debs/bookworm/conntrack_1.4.7-1+b2_amd64.deb"
    # Server-side programs are not shipped loose; they travel in their images.
    assert "kube-apiserver" not in by_name
    # A module's file (the snapshot CRDs) under production's name and target, kind file.
    assert by_name[crd.name].kind == "file" and by_name[crd.name].target == crd.target
    assert by_name[crd.name].roles == ("kube_control_plane",)


def test_lab_runtime_matches_production_artifacts(tmp_path):
    """containerd, runc, the CNI plugins and crictl: the same names, versions, targets and
    archive layout as production's manifest, so the containerd role installs both alike.
    Compared for v1.36.3: production's v1.37.2 (the default) has no crictl pinned yet."""
    import tarfile

    from airlock.bundle.manifest import load_manifest, parse_manifest
    from airlock.lab.bundle import profile as lab
    from airlock.paths import project_root

    cache = tmp_path / "lab"
    rel = lab.release("v1.36.3")
    binaries = _lab_binaries(cache, rel, lambda t: f"{t.name} {t.version}".encode())
    archives = lab._pack_archives(cache, "amd64", rel, binaries)
    doc = lab._manifest_doc(cache, "amd64", rel, binaries, {}, [], archives, {})
    ours = {a.name: a for a in parse_manifest(doc, cache / "manifest.yml").resolve("amd64")}
    production = load_manifest(project_root() / "offline-bundle" / "manifest.yml", rel.kube)
    theirs = {a.name: a for a in production.resolve("amd64", {})}
    for name in ("containerd", "cni-plugins", "crictl", "runc"):
        assert (ours[name].kind, ours[name].version, ours[name].target) == (
            theirs[name].kind,
            theirs[name].version,
            theirs[name].target,
        ), name
    with tarfile.open(archives["containerd"][1]) as tar:
        assert sorted(tar.getnames()) == [
            "bin/containerd",
            "bin/containerd-shim-runc-v2",
            "bin/ctr",
        ]
        member = tar.getmember("bin/containerd")
        assert member.mode == 0o755 and tar.extractfile(member).read() == b"containerd v2.2.1"
    with tarfile.open(archives["cni-plugins"][1]) as tar:
        assert sorted(tar.getnames()) == ["./bridge", "./host-local", "./loopback", "./portmap"]
    # The monitoring stack: production's names, versions and targets (Prometheus is a slot
    # there), laid out as promu's release archives, licence files from the module.
    for name in ("alertmanager", "node_exporter", "blackbox_exporter"):
        assert (ours[name].kind, ours[name].version, ours[name].target) == (
            theirs[name].kind,
            theirs[name].version,
            theirs[name].target,
        ), name
    assert ours["prometheus"].target == "archives/amd64/prometheus-3.15.1.tar.gz"
    assert ours["node_exporter"].roles == ("all",)
    assert ours["prometheus"].roles == ("monitoring",)
    with tarfile.open(archives["prometheus"][1]) as tar:
        top = "prometheus-3.15.1.linux-amd64"
        assert sorted(tar.getnames()) == [
            f"{top}/{n}" for n in ("LICENSE", "NOTICE", "prometheus", "prometheus.yml", "promtool")
        ]
        assert tar.getmember(f"{top}/promtool").mode == 0o755
        assert tar.getmember(f"{top}/LICENSE").mode == 0o644
        assert b"Apache License" in tar.extractfile(f"{top}/LICENSE").read()
    # Packed again from the same programs: the same bytes (a rebuild changes nothing).
    first = archives["containerd"][1].read_bytes()
    archives["containerd"][1].unlink()
    again = lab._pack_archives(cache, "amd64", rel, binaries)
    assert again["containerd"][1].read_bytes() == first


def test_without_go_the_lab_build_says_how_to_get_it(monkeypatch, tmp_path):
    """A machine without Go gets one line with the fix, not a FileNotFoundError."""
    from airlock.errors import AirlockError

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(gobuild, "GO_FALLBACK_DIR", tmp_path / "none")
    with pytest.raises(AirlockError, match=r"Go is not installed.*install Go >= 1\.24"):
        gobuild.require_go()


def test_go_only_under_usr_local_is_found(monkeypatch, tmp_path):
    (tmp_path / "go").write_text("#!/bin/sh\n")
    (tmp_path / "go").chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(gobuild, "GO_FALLBACK_DIR", tmp_path)
    gobuild.require_go()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(tmp_path)
