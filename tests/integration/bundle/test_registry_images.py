"""Registry images pinned by digest, fetched by the builder from a real registry on loopback.

Debian's `docker-registry` (distribution 2.8) serves HTTPS on 127.0.0.1 with a certificate
from a CA made here (tests/registry.py). Two small images built with airlock/lab/bundle/oci.py
(amd64, arm64) are pushed with skopeo, and a multi-arch OCI index over both is PUT through
the registry API, as registry.k8s.io serves its images. The builder then fetches by the index
digest, per architecture, into OCI archives named for containerd; a wrong digest is refused
and named.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airlock.bundle.build.download import Cache, DownloadError
from airlock.bundle.build.images import ImageOptions
from airlock.bundle.build.pipeline import BuildOptions, build
from airlock.bundle.build.verify import require_valid
from airlock.bundle.manifest import load_manifest
from airlock.lab.bundle import oci
from tests.registry import Registry, push, serve

INDEX = "application/vnd.oci.image.index.v1+json"
NAME = "registry.k8s.io/pause:3.10.1"  # what containerd must import it as


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with serve(tmp_path_factory.mktemp("registry")) as served:
        yield served


def _push_multiarch(registry: Registry, tmp_path: Path, repo: str) -> tuple[str, dict[str, str]]:
    """Push one small image per architecture and an OCI index over them; returns
    (index digest, {arch: manifest digest})."""
    payload = tmp_path / "hello"
    per_arch, descriptors = {}, []
    for arch in ("amd64", "arm64"):
        payload.write_bytes(f"airlock {arch}\n".encode())
        archive = tmp_path / f"{arch}.oci.tar"
        oci.write_oci_archive(
            oci.ImageSpec(f"{repo}:{arch}", arch, [[oci.ImageFile(payload, "/hello", 0o644)]]),
            archive,
        )
        digest = push(registry, archive, f"{repo}:{arch}")
        raw = _get(registry, f"/v2/{repo}/manifests/{digest}")
        per_arch[arch] = digest
        descriptors.append(
            {
                "mediaType": oci.MEDIA_MANIFEST,
                "digest": digest,
                "size": len(raw),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors}).encode()
    request = urllib.request.Request(
        f"https://{registry.host}/v2/{repo}/manifests/multi",
        data=index,
        method="PUT",
        headers={"Content-Type": INDEX},
    )
    with urllib.request.urlopen(request, context=registry.context, timeout=10) as resp:
        assert resp.status == 201
    return "sha256:" + hashlib.sha256(index).hexdigest(), per_arch


def _get(registry: Registry, path: str) -> bytes:
    request = urllib.request.Request(
        f"https://{registry.host}{path}", headers={"Accept": oci.MEDIA_MANIFEST}
    )
    with urllib.request.urlopen(request, context=registry.context, timeout=10) as resp:
        return resp.read()


def _manifest(tmp_path: Path, registry: Registry, repo: str, digest: object) -> Path:
    doc = {
        "schema": 1,
        "kube_version": "v1.34.4",
        "architectures": ["amd64", "arm64"],
        # A mirror for the registry, as the production manifest declares registry.k8s.io;
        # here it already points at the loopback registry (as --mirror would).
        "mirrors": {"registry-k8s": f"docker://{registry.host}"},
        "artifacts": [
            {
                "name": "pause",
                "kind": "image",
                "version": "3.10.1",
                "ref": f"{{mirror.registry-k8s}}/{repo}:multi",
                "image": NAME,
                "digest": digest,
                "target": "images/{arch}/pause_{version}.oci.tar",
                "roles": ["kube_control_plane", "kube_node"],
            }
        ],
    }
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _opts(tmp_path: Path, manifest: Path, registry: Registry) -> BuildOptions:
    return BuildOptions(
        manifest=load_manifest(manifest),
        arches=["amd64", "arm64"],
        output=tmp_path / "bundle.tar",
        cache=Cache(tmp_path / "cache"),
        progress=False,
        images=ImageOptions(cert_dir=registry.certs),
    )


def test_builder_fetches_by_digest_per_arch_named_for_containerd(registry, tmp_path):
    index_digest, per_arch = _push_multiarch(registry, tmp_path, "airlock/pause")
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/pause", index_digest), registry)
    result = build(opts)
    assert result.fetched == 2 and result.reused == 0
    require_valid(opts.output)

    with tarfile.open(opts.output) as bundle:
        doc = json.load(bundle.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        sums = bundle.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
        for art in doc["artifacts"]:
            arch = art["arch"]
            assert art["digest"] == index_digest
            assert art["image"] == NAME
            assert art["source"] == f"docker://{registry.host}/airlock/pause@{index_digest}"
            assert f"{art['sha256']}  {art['path']}" in sums
            data = bundle.extractfile(art["path"]).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == art["sha256"]
            out = tmp_path / f"got-{arch}.oci.tar"
            out.write_bytes(data)
            with tarfile.open(out) as image:
                index = json.load(image.extractfile("index.json"))  # type: ignore[arg-type]
            (desc,) = index["manifests"]
            # skopeo picked this architecture's manifest out of the index, unchanged.
            assert desc["digest"] == per_arch[arch]
            assert desc["annotations"]["io.containerd.image.name"] == NAME
            assert desc["annotations"]["org.opencontainers.image.ref.name"] == "3.10.1"

    # Same pins again: nothing is fetched, and the archives are byte-for-byte the same.
    again = build(_opts(tmp_path, opts.manifest.path, registry))
    assert again.fetched == 0 and again.reused == 2


def test_a_wrong_digest_is_refused_and_named(registry, tmp_path):
    _push_multiarch(registry, tmp_path, "airlock/wrong")
    wrong = "sha256:" + "0" * 64
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/wrong", wrong), registry)
    with pytest.raises(DownloadError) as exc:
        build(opts)
    message = str(exc.value)
    assert "pause (amd64)" in message and "pause (arm64)" in message
    assert wrong in message and "refused" in message
    assert not opts.output.exists()


def test_a_per_arch_pin_of_another_architecture_is_refused(registry, tmp_path):
    _, per_arch = _push_multiarch(registry, tmp_path, "airlock/swapped")
    swapped = {"amd64": per_arch["arm64"], "arm64": per_arch["amd64"]}
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/swapped", swapped), registry)
    with pytest.raises(DownloadError) as exc:
        build(opts)
    assert "pause (amd64)" in str(exc.value)
    assert "is an image for arm64, not amd64" in str(exc.value)
