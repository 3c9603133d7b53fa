"""Assemble OCI images from files, written as OCI archives (a tar of an OCI image layout).

An archive holds `oci-layout`, `index.json` and `blobs/sha256/...`: one gzip layer per
group of files, an image config and an image manifest. `index.json` names the image
twice, as `org.opencontainers.image.ref.name` (the tag, per the image-layout spec) and
`io.containerd.image.name` (the full reference, which `ctr images import` uses), so
`ctr -n k8s.io images import --platform linux/ARCH FILE` yields exactly the
name and tag kubeadm expects. Output is byte-for-byte reproducible (fixed mtimes,
owners, gzip headers: airlock.tarball), so the same inputs give the same checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from airlock.tarball import tar_writer

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageFile:
    """A file to put in the image: from `source` on disk to `dest` in the image."""

    source: Path
    dest: str
    mode: int = 0o755


@dataclass(frozen=True)
class ImageSpec:
    """What the image holds and how it starts."""

    reference: str  # registry.k8s.io/kube-apiserver:v1.34.4
    arch: str
    layers: Sequence[Sequence[ImageFile]]
    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = field(default=(f"PATH={DEFAULT_PATH}",))
    tree_layers: Sequence[Path] = ()  # directories whose whole content becomes a layer
    user: str = ""  # the image's USER ("" runs as root)


def write_oci_archive(spec: ImageSpec, output: Path) -> str:
    """Write the image to `output`; returns the manifest digest (sha256:...)."""
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for files in spec.layers:
        layers.append(_layer(_files_tar(files), blobs, diff_ids))
    for tree in spec.tree_layers:
        layers.append(_layer(_tree_tar(tree), blobs, diff_ids))
    config = {
        "architecture": spec.arch,
        "os": "linux",
        "config": {
            "Env": list(spec.env),
            "Entrypoint": list(spec.entrypoint) or None,
            "Cmd": list(spec.cmd) or None,
            "WorkingDir": "/",
            **({"User": spec.user} if spec.user else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "airlock bundle build --profile lab"}],
    }
    config_desc = _blob(_json(config), MEDIA_CONFIG, blobs)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_desc,
        "layers": layers,
    }
    manifest_desc = _blob(_json(manifest), MEDIA_MANIFEST, blobs)
    tag = spec.reference.rsplit(":", 1)[1]
    manifest_desc["platform"] = {"architecture": spec.arch, "os": "linux"}
    manifest_desc["annotations"] = {
        "io.containerd.image.name": spec.reference,
        "org.opencontainers.image.ref.name": tag,
    }
    index = {"schemaVersion": 2, "manifests": [manifest_desc]}
    _write_archive(output, index, blobs)
    return str(manifest_desc["digest"])


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _blob(data: bytes, media_type: str, blobs: dict[str, bytes]) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _layer(raw: bytes, blobs: dict[str, bytes], diff_ids: list[str]) -> dict[str, object]:
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw)
    return _blob(buf.getvalue(), MEDIA_LAYER, blobs)


def _files_tar(files: Sequence[ImageFile]) -> bytes:
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tar_writer(buf) as tar:
        for item in sorted(files, key=lambda f: f.dest):
            parts = item.dest.strip("/").split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in dirs:
                    dirs.add(parent)
                    tar.add_dir(parent)
            tar.add_bytes("/".join(parts), item.source.read_bytes(), item.mode)
    return buf.getvalue()


def _tree_tar(root: Path) -> bytes:
    buf = io.BytesIO()
    with tar_writer(buf) as tar:
        tar.add_tree(root)
    return buf.getvalue()


def _write_archive(output: Path, index: dict[str, object], blobs: dict[str, bytes]) -> None:
    entries = [("oci-layout", _json({"imageLayoutVersion": "1.0.0"})), ("index.json", _json(index))]
    entries += [(f"blobs/sha256/{d.split(':', 1)[1]}", data) for d, data in sorted(blobs.items())]
    with tar_writer(output, part_suffix=".tmp") as tar:
        for directory in ("blobs", "blobs/sha256"):
            tar.add_dir(directory)
        for name, data in entries:
            tar.add_bytes(name, data)
