"""Write a bundle: one tar archive with SHA256SUMS, MANIFEST.json and the payload.

Layout of the archive (uncompressed tar; the payload is mostly compressed already, and a
plain tar verifies at disk speed):

    SHA256SUMS        `sha256sum -c` format: every member below except the two SHA256SUMS*
    SHA256SUMS.sig    optional signature over SHA256SUMS (see airlock.bundle.build.signing)
    MANIFEST.json     versions, sizes and checksums of every artifact and file
    <payload>         bin/amd64/kubeadm, images/..., debs/bookworm/..., wheels/...

SHA256SUMS comes first so that a reader can check each member as it streams past.
Members are written in sorted order with fixed owner and mtime (airlock.tarball), so the
same inputs give the same archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.bundle.build.download import sha256_file
from airlock.errors import AirlockError
from airlock.tarball import tar_writer

SUMS = "SHA256SUMS"
SIG = "SHA256SUMS.sig"
MANIFEST = "MANIFEST.json"
RESERVED = (SUMS, SIG, MANIFEST)
MTIME = 0


@dataclass(frozen=True)
class Member:
    """A payload file: where it goes in the bundle, where it is now, its checksum."""

    arcname: str
    source: Path
    sha256: str
    size: int


def sums_text(files: Mapping[str, str]) -> bytes:
    return "".join(f"{sha}  {name}\n" for name, sha in sorted(files.items())).encode()


def parse_sums(data: bytes) -> tuple[dict[str, str], list[str]]:
    """Parse SHA256SUMS; returns (path -> sha256, problems)."""
    files: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        sha, sep, name = line.partition("  ")
        if not sep or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            problems.append(f"{SUMS}: line {number} is malformed ({line[:80]!r})")
            continue
        files[name] = sha
    return files, problems


def write_bundle(
    output: Path,
    members: Iterable[Member],
    manifest: Mapping[str, Any],
    sign: Any = None,
) -> dict[str, Any]:
    """Write the archive atomically; returns the MANIFEST.json document written.

    `sign`, if given, is a callable bytes -> signature bytes applied to SHA256SUMS.
    """
    payload = sorted(members, key=lambda m: m.arcname)
    _check_names(payload)
    doc = dict(manifest)
    doc["files"] = {m.arcname: {"sha256": m.sha256, "size": m.size} for m in payload}
    manifest_bytes = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
    checks = {m.arcname: m.sha256 for m in payload}
    checks[MANIFEST] = hashlib.sha256(manifest_bytes).hexdigest()
    sums = sums_text(checks)
    with tar_writer(output, mtime=MTIME, owner="root", part_suffix=".part") as tar:
        tar.add_bytes(SUMS, sums)
        if sign is not None:
            tar.add_bytes(SIG, sign(sums))
        tar.add_bytes(MANIFEST, manifest_bytes)
        for member in payload:
            mode = 0o755 if _executable(member) else 0o644
            tar.add_file(member.arcname, member.source, mode, size=member.size)
    output.with_name(output.name + ".sha256").write_text(
        f"{sha256_file(output)}  {output.name}\n", encoding="utf-8"
    )
    return doc


def _check_names(payload: list[Member]) -> None:
    seen: set[str] = set()
    for member in payload:
        name = member.arcname
        if name in RESERVED or name.startswith("/") or ".." in name.split("/"):
            raise AirlockError(f"bundle member name {name!r} is not allowed; fix the target")
        if name in seen:
            raise AirlockError(
                f"two artifacts both want bundle path {name}; give them different targets"
            )
        seen.add(name)


def _executable(member: Member) -> bool:
    return member.arcname.startswith("bin/") or os.access(member.source, os.X_OK)




