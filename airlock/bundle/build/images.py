"""Fetch registry images pinned by digest into OCI archives, with skopeo.

A manifest entry of kind image with `ref` + `digest` (see airlock/bundle/manifest/model.py)
becomes, per architecture, one OCI archive named as the hosts' containerd must import it:

1. `skopeo inspect --raw docker://REF@DIGEST`: the manifest (or multi-arch index) the
   registry serves for the digest. Its sha256 is computed here and must equal the pin;
   a registry that does not know the digest, or serves other bytes, refuses the artifact.
2. `skopeo copy [--override-arch ARCH] docker://REF@DIGEST oci-archive:TMP`: for an index
   skopeo picks ARCH's manifest and checks it against the index's descriptor (a copy by
   digest is verified by containers/image); a single-arch pin must be for ARCH.
3. The archive is rewritten with fixed tar metadata and `index.json` annotated with
   `io.containerd.image.name` (the name kubeadm pulls) and `org.opencontainers.image.ref.name`
   (the tag), as airlock/lab/bundle/oci.py does for the lab images, so
   `ctr -n k8s.io images import` names it exactly. Its sha256 then goes into the bundle's
   MANIFEST.json and SHA256SUMS like every other member.

Results are cached under CACHE/images/ by (digest, arch, name): a pin that did not change
is never fetched again. skopeo reads the usual containers configuration: registry CAs in
/etc/containers/certs.d/HOST/ca.crt, credentials in ${XDG_RUNTIME_DIR}/containers/auth.json
or ~/.docker/config.json, the signature policy in /etc/containers/policy.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from airlock.bundle.build.download import Cache, ChecksumMismatchError, DownloadError, sha256_file
from airlock.bundle.manifest import ResolvedArtifact
from airlock.tarball import tar_writer

_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
SKOPEO_HINT = "install skopeo (Debian/Ubuntu: apt-get install skopeo; scripts/bootstrap does)"


@dataclass
class ImageOptions:
    """How to reach the registries: extra CA/client certificates, retries."""

    cert_dir: Path | None = None  # *.crt CAs (and *.cert/*.key) for every registry
    retries: int = 2
    timeout: float = 600.0
    skopeo: str = field(default_factory=lambda: shutil.which("skopeo") or "")


@dataclass
class ImageOutcome:
    """What fetch_images did: items with their archive sha256 filled in, and failures."""

    items: dict[tuple[str, str], ResolvedArtifact]  # (name, arch) -> item with sha256
    paths: dict[str, Path]  # archive sha256 -> cached archive
    errors: dict[tuple[str, str], DownloadError]
    fetched: int = 0
    reused: int = 0


def fetch_images(
    items: Sequence[ResolvedArtifact],
    cache: Cache,
    opts: ImageOptions | None = None,
    jobs: int = 4,
    on_done: Callable[[str], None] | None = None,
) -> ImageOutcome:
    """Fetch every registry image of `items` (in parallel); failures never stop the others."""
    opts = opts or ImageOptions()
    outcome = ImageOutcome({}, {}, {})

    def one(item: ResolvedArtifact) -> None:
        key = (item.name, item.arch)
        try:
            path, reused = fetch_image(item, cache, opts)
        except DownloadError as exc:
            outcome.errors[key] = exc
        else:
            sha = path.name.split(".", 1)[0]
            outcome.items[key] = replace(item, sha256=sha)
            outcome.paths[sha] = path
            if reused:
                outcome.reused += 1
            else:
                outcome.fetched += 1
        if on_done:
            on_done(f"{item.name} ({item.arch})")

    if items and not opts.skopeo:
        error = DownloadError(f"registry images need skopeo, which is not installed: {SKOPEO_HINT}")
        for item in items:
            outcome.errors[(item.name, item.arch)] = error
        return outcome
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        list(pool.map(one, items))
    return outcome


def fetch_image(item: ResolvedArtifact, cache: Cache, opts: ImageOptions) -> tuple[Path, bool]:
    """Return (cached archive named <sha256>.oci.tar, whether it was in the cache already)."""
    label = f"{item.name} ({item.arch})"
    if not item.digest or not item.url.startswith("docker://"):
        raise DownloadError(f"{label}: not a registry image (no ref/digest in the manifest)")
    key = hashlib.sha256(f"{item.digest} {item.arch} {item.image}".encode()).hexdigest()
    slot = cache.root / "images" / key
    done = sorted(slot.glob("*.oci.tar")) if slot.is_dir() else []
    if done and sha256_file(done[0]) == done[0].name.split(".", 1)[0]:
        return done[0], True
    source = item.url  # docker://REF@DIGEST
    raw = _skopeo(opts, label, source, "inspect", "--raw", *_certs(opts, "--cert-dir"), source)
    actual = "sha256:" + hashlib.sha256(raw).hexdigest()
    if actual != item.digest:
        raise ChecksumMismatchError(
            f"{label}: {source} served a manifest with digest {actual}, the manifest pins "
            f"{item.digest}; the image was refused. Fix the mirror, or the digest if the new "
            "image is trusted"
        )
    manifest = json.loads(raw)
    is_index = manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest
    if is_index and not any(
        (m.get("platform") or {}).get("architecture") == item.arch
        and (m.get("platform") or {}).get("os", "linux") == "linux"
        for m in manifest["manifests"]
    ):
        raise DownloadError(
            f"{label}: {source} is a multi-arch index without linux/{item.arch}; "
            f"remove {item.arch} from this artifact's digest or pin another image"
        )
    slot.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=slot) as tmp:
        copied = Path(tmp) / "copy.oci.tar"
        args = ["copy", "--quiet", *_certs(opts, "--src-cert-dir")]
        if is_index:
            args += ["--override-os", "linux", "--override-arch", item.arch]
        _skopeo(opts, label, source, *args, source, f"oci-archive:{copied}")
        final = Path(tmp) / "final.oci.tar"
        _annotate(copied, final, item, label)
        sha = sha256_file(final)
        for stale in slot.glob("*.oci.tar"):
            stale.unlink()
        path = slot / f"{sha}.oci.tar"
        os.replace(final, path)
    return path, False


def _certs(opts: ImageOptions, flag: str) -> list[str]:
    return [flag, str(opts.cert_dir)] if opts.cert_dir else []


def _skopeo(opts: ImageOptions, label: str, source: str, *args: str) -> bytes:
    env = dict(os.environ, LC_ALL="C")
    last = ""
    for _ in range(max(opts.retries, 0) + 1):
        try:
            proc = subprocess.run(
                [opts.skopeo, *args],
                capture_output=True,
                env=env,
                timeout=opts.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            last = f"skopeo {args[0]} timed out after {opts.timeout:.0f}s"
            continue
        if proc.returncode == 0:
            return proc.stdout
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        last = last[0]
        if "manifest unknown" in last or "unauthorized" in last or "denied" in last:
            break  # retrying will not help
    if "manifest unknown" in last:
        raise ChecksumMismatchError(
            f"{label}: {source}: the registry has no manifest with this digest; the image "
            "was refused. Fix the digest in the manifest, or point --mirror at a registry "
            f"that holds this image ({last})"
        )
    raise DownloadError(
        f"{label}: {source}: skopeo {args[0]} failed: {last}. Check the registry is "
        "reachable and trusted (CA in /etc/containers/certs.d/HOST/ca.crt), or point "
        "--mirror at one that is"
    )


def _annotate(source: Path, output: Path, item: ResolvedArtifact, label: str) -> None:
    """Copy the OCI archive with fixed metadata and the containerd name on its manifest."""
    with tarfile.open(source) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        if "index.json" not in members:
            raise DownloadError(f"{label}: skopeo wrote no index.json; not an OCI archive")
        index = json.loads(_read(tar, members["index.json"]))
        manifests = index.get("manifests") or []
        if len(manifests) != 1:
            raise DownloadError(
                f"{label}: the archive holds {len(manifests)} manifests, expected one"
            )
        desc = manifests[0]
        digest = str(desc["digest"]).split(":", 1)[1]
        body = json.loads(_read(tar, members[f"blobs/sha256/{digest}"]))
        config_hex = str(body["config"]["digest"]).split(":", 1)[1]
        config = json.loads(_read(tar, members[f"blobs/sha256/{config_hex}"]))
        if config.get("architecture") != item.arch:
            raise DownloadError(
                f"{label}: {item.url} is an image for {config.get('architecture')}, not "
                f"{item.arch}; pin the {item.arch} manifest (or the multi-arch index)"
            )
        tag = item.image.rsplit(":", 1)[1] if ":" in item.image.rsplit("/", 1)[-1] else "latest"
        desc["annotations"] = {
            **(desc.get("annotations") or {}),
            "io.containerd.image.name": item.image,
            "org.opencontainers.image.ref.name": tag,
        }
        desc.setdefault("platform", {"architecture": item.arch, "os": "linux"})
        index["manifests"] = [desc]
        entries: list[tuple[str, Any]] = [
            ("oci-layout", _read(tar, members["oci-layout"])),
            ("index.json", _json(index)),
        ]
        blobs = sorted(n for n in members if n.startswith("blobs/"))
        with tar_writer(output) as out:
            for directory in ("blobs", "blobs/sha256"):
                out.add_dir(directory)
            for name, data in entries:
                out.add_bytes(name, data)
            for name in blobs:
                handle = tar.extractfile(members[name])
                assert handle is not None
                out.add_stream(name, handle, members[name].size)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
