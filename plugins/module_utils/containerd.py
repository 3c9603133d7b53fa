"""Shared code of airlock's containerd modules: OCI archives and containerd's image list.

Standard library only: it runs on the managed hosts. An OCI archive is a tar of an OCI
image layout (`oci-layout`, `index.json`, `blobs/sha256/...`). Each descriptor of
`index.json` names one image: `io.containerd.image.name` holds the full reference that
`ctr images import` gives the image (airlock/bundle/oci.py writes it), and
`org.opencontainers.image.ref.name` the tag only (image-layout spec) or, from some tools,
a full reference. containerd records the image with the descriptor's digest as its
target, so "same reference, same digest" means "this archive is already imported".
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# containerd's CRI plugin reports an image with this label as pinned, and the kubelet's
# image garbage collection never removes a pinned image (containerd >= 1.7).
PINNED_LABEL = "io.cri-containerd.pinned"
PINNED_VALUE = "pinned"
# Largest index.json we read (a real one is a few hundred bytes per image).
_MAX_INDEX_BYTES = 4 * 1024 * 1024


class ArchiveError(ValueError):
    """An archive that cannot be imported; the message names the file and the problem."""


@dataclass(frozen=True)
class ArchiveImage:
    """One image named in an archive's index.json."""

    ref: str
    digest: str
    media_type: str = ""


@dataclass
class Archive:
    """An OCI archive and the images its index names."""

    path: str
    images: list[ArchiveImage] = field(default_factory=list)


@dataclass(frozen=True)
class PlanEntry:
    """What to do with one archive: import it, or nothing (every image is present)."""

    archive: Archive
    missing: list[str]  # refs absent, or present with another digest
    present: list[str]

    @property
    def needs_import(self) -> bool:
        return bool(self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.archive.path,
            "images": [{"ref": i.ref, "digest": i.digest} for i in self.archive.images],
            "action": "import" if self.needs_import else "none",
            "missing": list(self.missing),
            "present": list(self.present),
        }


def is_full_reference(name: str) -> bool:
    """True for `registry.k8s.io/pause:3.10.1` or `docker.io/library/x@sha256:...`.

    A bare tag (`3.10.1`, what the image-layout spec puts in ref.name) is not: it names
    no repository.
    """
    if not name or any(c.isspace() for c in name):
        return False
    return "/" in name and (":" in name.rsplit("/", 1)[1] or "@" in name)


def _image_ref(desc: dict[str, Any]) -> str | None:
    annotations = desc.get("annotations") or {}
    name = annotations.get(ANNOTATION_CONTAINERD_NAME)
    if isinstance(name, str) and name:
        return name
    ref = annotations.get(ANNOTATION_REF_NAME)
    if isinstance(ref, str) and is_full_reference(ref):
        return ref
    return None


def parse_index(doc: Any, path: str) -> Archive:
    """The images an OCI `index.json` document names; ArchiveError if it names none."""
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        raise ArchiveError(f"{path}: index.json has no `manifests` list; not an OCI image layout")
    archive = Archive(path=path)
    unnamed: list[str] = []
    for desc in doc["manifests"]:
        if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
            raise ArchiveError(f"{path}: index.json has a descriptor without a digest")
        digest = desc["digest"]
        if not digest.startswith("sha256:") or len(digest) != len("sha256:") + 64:
            raise ArchiveError(f"{path}: index.json has a malformed digest {digest!r}")
        ref = _image_ref(desc)
        if ref is None:
            unnamed.append(digest)
            continue
        archive.images.append(ArchiveImage(ref, digest, str(desc.get("mediaType", ""))))
    if not archive.images:
        raise ArchiveError(
            f"{path}: index.json names no image (no {ANNOTATION_CONTAINERD_NAME} annotation "
            f"and no full reference in {ANNOTATION_REF_NAME}; descriptors: "
            f"{', '.join(unnamed) or 'none'}); `ctr images import` would not know what to "
            "call it. Rebuild the archive with a name (airlock bundle build does)."
        )
    return archive


def _read_index(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> Any:
    if member.size > _MAX_INDEX_BYTES:
        raise ArchiveError(f"{path}: index.json is {member.size} bytes; too big")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{path}: index.json cannot be read")
    try:
        return json.loads(handle.read())
    except ValueError as exc:
        raise ArchiveError(f"{path}: index.json is not JSON: {exc}") from exc


def read_archive(path: str) -> Archive:
    """Read `index.json` from the OCI archive at `path` (plain or compressed tar)."""
    file = Path(path)
    if not file.exists():
        raise ArchiveError(f"{path}: no such file (was the bundle stage run on this host?)")
    if not file.is_file():
        raise ArchiveError(f"{path}: not a regular file")
    index_doc: Any = None
    has_layout = has_docker_manifest = False
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                has_layout = has_layout or name == "oci-layout"
                has_docker_manifest = has_docker_manifest or name == "manifest.json"
                if name == "index.json" and member.isfile():
                    index_doc = _read_index(tar, member, path)
                if index_doc is not None and has_layout:
                    break
    except tarfile.TarError as exc:
        raise ArchiveError(f"{path}: not a tar archive ({exc})") from exc
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read: {exc}") from exc
    if index_doc is None:
        hint = " (it looks like a `docker save` archive)" if has_docker_manifest else ""
        raise ArchiveError(f"{path}: not an OCI archive: no index.json{hint}")
    return parse_index(index_doc, path)


def parse_image_list(output: str) -> dict[str, str]:
    """`ctr images list` table -> {ref: target digest}.

    Columns are REF TYPE DIGEST SIZE PLATFORMS LABELS; REF, TYPE and DIGEST never
    contain spaces (SIZE does: "1.2 MiB"), so the first three fields are reliable.
    ctr 1.6 has no JSON output for this command.
    """
    images: dict[str, str] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] == "REF":
            continue
        if fields[2].startswith("sha256:"):
            images[fields[0]] = fields[2]
    return images


def parse_pinned(output: str) -> set[str]:
    """`ctr images list` table -> the references labelled pinned.

    LABELS is the last column: `-`, or `key=value` pairs joined by commas (airlock's and
    containerd's own labels hold no spaces or commas).
    """
    wanted = f"{PINNED_LABEL}={PINNED_VALUE}"
    pinned = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "REF" or not fields[2].startswith("sha256:"):
            continue
        if wanted in fields[-1].split(","):
            pinned.add(fields[0])
    return pinned


def plan(archives: list[Archive], present: dict[str, str]) -> list[PlanEntry]:
    """For each archive, which of its images containerd lacks (or has with another digest)."""
    entries = []
    for archive in archives:
        missing = [i.ref for i in archive.images if present.get(i.ref) != i.digest]
        have = [i.ref for i in archive.images if present.get(i.ref) == i.digest]
        entries.append(PlanEntry(archive, missing, have))
    return entries
