"""`airlock bundle build`: manifest -> verified downloads -> one archive.

The same path serves both profiles: production fetches from upstream (or a mirror), the
lab profile first makes its artifacts locally and writes a manifest pointing at them
(file:// URLs), then comes through here exactly like production.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from airlock.bundle.build import debrepo
from airlock.bundle.build.archive import Member, write_bundle
from airlock.bundle.build.download import Cache, DownloadError, Request, fetch_all
from airlock.bundle.build.images import ImageOptions, fetch_images
from airlock.bundle.manifest import Manifest, ResolvedArtifact
from airlock.paths import state_dir

DEFAULT_OUTPUT = "airlock-bundle.tar"


@dataclass
class BuildOptions:
    """What to build: the manifest, which architectures, where to, and how."""

    manifest: Manifest
    arches: Sequence[str]
    output: Path
    cache: Cache
    mirrors: dict[str, str] = field(default_factory=dict)
    jobs: int = 4
    profile: str = "production"
    extra_members: Sequence[Member] = ()
    sign: Callable[[bytes], bytes] | None = None
    progress: bool | None = None
    images: ImageOptions = field(default_factory=ImageOptions)
    # Made at build time, not downloaded (the rendered alert rules): file:// URLs, sha256s.
    generated: Sequence[ResolvedArtifact] = ()


@dataclass
class BuildResult:
    """What a build produced."""

    output: Path
    artifacts: int
    fetched: int
    reused: int
    size: int
    seconds: float


def default_archive(profile: str, kube_version: str) -> Path:
    """Where `airlock bundle build --profile PROFILE` writes its archive by default."""
    return state_dir() / "bundles" / f"airlock-{profile}-{kube_version}.tar"


def plan(opts: BuildOptions) -> list[ResolvedArtifact]:
    """Every artifact of every requested architecture, URLs resolved."""
    out: list[ResolvedArtifact] = []
    for arch in opts.arches:
        out += opts.manifest.resolve(arch, opts.mirrors)
    return out + list(opts.generated)


def print_plan(
    items: Sequence[ResolvedArtifact], extra: Sequence[Member], stream: TextIO | None = None
) -> None:
    """The --dry-run listing: every source and its target in the bundle."""
    stream = stream or sys.stdout
    unique: dict[tuple[str, str], ResolvedArtifact] = {}
    for item in items:  # an arch-independent .deb pinned for each arch is one file
        unique.setdefault((item.target, item.sha256 or item.url), item)
    items = list(unique.values())
    for item in items:
        pin = f"sha256:{item.sha256}" if item.sha256 else f"as {item.image} (sha256 on fetch)"
        stream.write(f"{item.url}\n    -> {item.target}  {pin}\n")
    for member in extra:
        stream.write(f"{member.source}\n    -> {member.arcname}  sha256:{member.sha256}\n")
    stream.write(f"{len(items) + len(extra)} files\n")


def build(opts: BuildOptions) -> BuildResult:
    """Fetch and verify everything, then write the archive. Raises DownloadError on failures,
    after every other artifact has been fetched and cached."""
    start = time.monotonic()
    items = plan(opts)
    registry = [i for i in items if i.digest]
    requests = [Request(i.url, i.sha256, f"{i.name} ({i.arch})") for i in items if not i.digest]
    outcome = fetch_all(requests, opts.cache, jobs=opts.jobs, progress=opts.progress)
    pulled = fetch_images(registry, opts.cache, opts.images, jobs=opts.jobs)
    errors = [*outcome.errors.values(), *pulled.errors.values()]
    if errors:
        details = "\n  - ".join(str(e) for e in errors)
        total = len(set(r.sha256 for r in requests)) + len(registry)
        raise DownloadError(
            f"{len(errors)} of {total} artifacts failed "
            f"(the others are cached and will not be fetched again):\n  - {details}"
        )
    items = [pulled.items[(i.name, i.arch)] if i.digest else i for i in items]
    paths = {**outcome.paths, **pulled.paths}
    members = [
        Member(i.target, paths[i.sha256], i.sha256, paths[i.sha256].stat().st_size) for i in items
    ]
    debs = _unique([m for m, i in zip(members, items, strict=True) if i.kind == "deb"])
    members = _unique(members)
    if debs:
        members += debrepo.index_members(debs, opts.cache.root / "repo-index", {})
    members += list(opts.extra_members)
    write_bundle(opts.output, members, _manifest_doc(opts, items, members), opts.sign)
    return BuildResult(
        output=opts.output,
        artifacts=len(members),
        fetched=outcome.fetched + pulled.fetched,
        reused=outcome.reused + pulled.reused,
        size=opts.output.stat().st_size,
        seconds=time.monotonic() - start,
    )


def _unique(members: list[Member]) -> list[Member]:
    """One copy of each file: an arch-independent .deb is pinned once per architecture,
    with the same path and sha256 (two different files for one path stay an error)."""
    return list({(m.arcname, m.sha256): m for m in members}.values())


def _manifest_doc(
    opts: BuildOptions, items: Sequence[ResolvedArtifact], members: Sequence[Member]
) -> dict[str, Any]:
    sizes = {m.arcname: m.size for m in members}
    return {
        "schema": 1,
        "profile": opts.profile,
        "kube_version": opts.manifest.kube_version,
        "architectures": list(opts.arches),
        "components": opts.manifest.components,
        "artifacts": [
            {
                "name": i.name,
                "component": i.component,
                "kind": i.kind,
                "version": i.version,
                "arch": i.arch,
                "source": i.url,
                "path": i.target,
                "sha256": i.sha256,
                "size": sizes[i.target],
                "roles": list(i.roles),
                "image": i.image,
                **({"digest": i.digest} if i.digest else {}),
            }
            for i in items
        ],
    }
