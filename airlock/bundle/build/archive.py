"""Write a bundle: one tar archive with INDEX, SHA256SUMS, MANIFEST.json and the payload.

Layout of the archive (uncompressed tar; the payload is mostly compressed already, and a
plain tar verifies at disk speed):

    INDEX             sha256, size, mode and name of every member below, in order
    INDEX.sig         optional signature over INDEX (see airlock.bundle.build.signing)
    SHA256SUMS        `sha256sum -c` format: every member below
    MANIFEST.json     versions, sizes and checksums of every artifact and file
    <payload>         bin/amd64/kubeadm, images/..., debs/bookworm/..., wheels/...

INDEX comes first so that a reader can check each member as it streams past. What a
member may be and the INDEX format are in airlock.bundle.build.bundletar. Members are
written in sorted order with fixed owner and mtime (airlock.tarball), so the same inputs
give the same archive. The written archive is verified (airlock.bundle.build.verify, the
same checks as `airlock bundle verify`) before it replaces OUTPUT: a build never leaves
behind a bundle that verify refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.bundle.build.bundletar import (
    INDEX,
    INDEX_SIG,
    LEGACY_SIG,
    MANIFEST,
    SUMS,
    Entry,
    index_text,
    name_problem,
    parse_sums,
    sums_text,
)
from airlock.bundle.build.download import sha256_file
from airlock.errors import AirlockError
from airlock.tarball import tar_writer

SIG = INDEX_SIG
RESERVED = (INDEX, INDEX_SIG, SUMS, LEGACY_SIG, MANIFEST)
MTIME = 0
__all__ = ["MANIFEST", "RESERVED", "SIG", "SUMS", "Member", "parse_sums", "write_bundle"]


@dataclass(frozen=True)
class Member:
    """A payload file: where it goes in the bundle, where it is now, its checksum."""

    arcname: str
    source: Path
    sha256: str
    size: int


def write_bundle(
    output: Path,
    members: Iterable[Member],
    manifest: Mapping[str, Any],
    sign: Callable[[bytes], bytes] | None = None,
) -> dict[str, Any]:
    """Write the archive atomically and verify it; returns the MANIFEST.json document written.

    `sign`, if given, is a callable bytes -> signature bytes applied to INDEX.
    """
    payload = sorted(members, key=lambda m: m.arcname)
    _check_names(payload)
    doc = dict(manifest)
    doc["files"] = {m.arcname: {"sha256": m.sha256, "size": m.size} for m in payload}
    manifest_bytes = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    checks = {m.arcname: m.sha256 for m in payload}
    checks[MANIFEST] = hashlib.sha256(manifest_bytes).hexdigest()
    sums = sums_text(checks)
    modes = {m.arcname: 0o755 if _executable(m) else 0o644 for m in payload}
    index = index_text(
        [
            Entry(hashlib.sha256(sums).hexdigest(), len(sums), 0o644, SUMS),
            Entry(checks[MANIFEST], len(manifest_bytes), 0o644, MANIFEST),
            *(Entry(m.sha256, m.size, modes[m.arcname], m.arcname) for m in payload),
        ]
    )
    part = output.with_name(output.name + ".part")
    with tar_writer(part, mtime=MTIME, owner="root") as tar:
        tar.add_bytes(INDEX, index)
        if sign is not None:
            tar.add_bytes(INDEX_SIG, sign(index))
        tar.add_bytes(SUMS, sums)
        tar.add_bytes(MANIFEST, manifest_bytes)
        for member in payload:
            tar.add_file(member.arcname, member.source, modes[member.arcname], size=member.size)
    _verify_written(part)
    os.replace(part, output)
    output.with_name(output.name + ".sha256").write_text(
        f"{sha256_file(output)}  {output.name}\n", encoding="utf-8"
    )
    return doc


def _verify_written(part: Path) -> None:
    """The same checks as `airlock bundle verify`, on what was just written."""
    from airlock.bundle.build.verify import verify_bundle

    report = verify_bundle(part)
    if not report.ok:
        part.unlink()
        raise AirlockError(
            "the bundle just written fails verification, so it was not kept (a source file "
            "changed while it was packed?):\n  - " + "\n  - ".join(report.problems)
        )


def _check_names(payload: list[Member]) -> None:
    seen: set[str] = set()
    for member in payload:
        name = member.arcname
        problem = "a name the bundle itself uses" if name in RESERVED else name_problem(name)
        if problem:
            raise AirlockError(
                f"bundle member name {name!r} is not allowed ({problem}); fix the target"
            )
        if name in seen:
            raise AirlockError(
                f"two artifacts both want bundle path {name}; give them different targets"
            )
        seen.add(name)


def _executable(member: Member) -> bool:
    return member.arcname.startswith("bin/") or os.access(member.source, os.X_OK)
