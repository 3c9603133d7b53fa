"""Verify a bundle archive, fully offline: every member, by name.

One streaming pass over the tar: each member is hashed as it goes by, then the result is
compared with SHA256SUMS and MANIFEST.json. Problems are collected, never stop the pass,
so a user sees every missing, extra, truncated or altered member at once.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airlock.bundle.build.archive import MANIFEST, SIG, SUMS, parse_sums
from airlock.bundle.build.signing import SignatureError, verify_signature
from airlock.errors import AirlockError

CHUNK = 4 << 20


class VerifyError(AirlockError):
    """The bundle failed verification; the message lists every problem."""


@dataclass
class Report:
    """The outcome of a verification."""

    path: Path
    members: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    signed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Seen:
    sha256: dict[str, str] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    truncated: str | None = None  # the member the archive ends inside of


def verify_bundle(path: Path, public_key: Path | None = None) -> Report:
    """Check every member of the bundle at `path`; returns a Report (never raises on content)."""
    report = Report(path)
    if not path.is_file():
        report.problems.append(f"{path}: no such file; pass the bundle archive's path")
        return report
    seen = _read_members(path, report)
    sums_data = seen.raw.get(SUMS)
    if sums_data is None:
        report.problems.append(f"{SUMS}: missing; the bundle cannot be checked, rebuild it")
        return report
    listed, problems = parse_sums(sums_data)
    report.problems += problems
    manifest = _load_manifest(seen.raw.get(MANIFEST), report)
    _compare(listed, manifest, seen, report)
    if public_key is not None:
        _check_signature(public_key, sums_data, seen.raw.get(SIG), report)
    return report


def _read_members(path: Path, report: Report) -> _Seen:
    # tarfile parses the headers; member data is read straight from the file in large
    # chunks (a streaming tarfile reads 10 KiB at a time, several times slower).
    seen = _Seen()
    current = "(archive header)"
    try:
        with path.open("rb", buffering=0) as raw, tarfile.open(path, mode="r:") as tar:
            while (info := tar.next()) is not None:
                current = info.name
                if not info.isfile():
                    report.problems.append(f"{info.name}: not a regular file; bundles hold files")
                    continue
                keep = info.name in (SUMS, SIG, MANIFEST)
                raw.seek(info.offset_data)
                sha, size, data = _hash(raw, info.size, keep)
                if size != info.size:
                    raise EOFError(f"got {size} of {info.size} bytes")
                seen.sha256[info.name], seen.size[info.name] = sha, size
                if keep:
                    seen.raw[info.name] = data
                report.members += 1
                report.bytes += size
                current = f"the end of {info.name}"
    except (tarfile.TarError, EOFError, OSError) as exc:
        seen.truncated = current
        report.problems.append(
            f"{current}: the archive is truncated or corrupt here ({exc}); copy it again"
        )
    return seen


def _hash(handle: IO[bytes], length: int, keep: bool) -> tuple[str, int, bytes]:
    digest = hashlib.sha256()
    size = 0
    kept = bytearray()
    while size < length and (chunk := handle.read(min(CHUNK, length - size))):
        digest.update(chunk)
        size += len(chunk)
        if keep:
            kept += chunk
    return digest.hexdigest(), size, bytes(kept)


def _load_manifest(data: bytes | None, report: Report) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        doc = json.loads(data)
    except ValueError:
        return {}  # its checksum mismatch is reported by _compare
    return doc if isinstance(doc, dict) else {}


def _compare(listed: dict[str, str], manifest: dict[str, Any], seen: _Seen, report: Report) -> None:
    files = manifest.get("files") or {}
    for name in sorted(listed):
        want = listed[name]
        if name == seen.truncated:
            continue  # already reported as the place the archive ends
        if name not in seen.sha256:
            report.problems.append(f"{name}: missing from the archive (listed in {SUMS})")
        elif seen.sha256[name] != want:
            report.problems.append(_altered(name, want, seen, files))
    for name in sorted(seen.sha256):
        if name not in listed and name not in (SUMS, SIG):
            report.problems.append(f"{name}: extra member, not listed in {SUMS}; remove it")
    for name in sorted(set(files) - set(listed)):
        report.problems.append(f"{SUMS}: does not list {name}, which {MANIFEST} does")
    manifest_ok = MANIFEST in seen.sha256 and seen.sha256[MANIFEST] == listed.get(MANIFEST)
    if manifest_ok:
        for name in sorted(set(listed) - set(files) - {MANIFEST}):
            report.problems.append(f"{SUMS}: lists {name}, which {MANIFEST} does not")


def _altered(name: str, want: str, seen: _Seen, files: dict[str, Any]) -> str:
    entry = files.get(name) or {}
    actual = seen.sha256[name]
    if entry.get("sha256") == actual and name != MANIFEST:
        return f"{SUMS}: its line for {name} was altered ({MANIFEST} and the file agree)"
    size = entry.get("size")
    if isinstance(size, int) and seen.size[name] < size:
        return f"{name}: truncated ({seen.size[name]} of {size} bytes)"
    return f"{name}: altered (sha256 {actual}, expected {want})"


def _check_signature(public_key: Path, sums: bytes, sig: bytes | None, report: Report) -> None:
    if sig is None:
        report.problems.append(
            f"{SIG}: missing, but a public key was given; the bundle is unsigned"
        )
        return
    try:
        verify_signature(public_key, sums, sig)
    except SignatureError as exc:
        report.problems.append(str(exc))
    else:
        report.signed = True


def require_valid(path: Path, public_key: Path | None = None) -> Report:
    """verify_bundle, raising VerifyError naming every problem."""
    report = verify_bundle(path, public_key)
    if not report.ok:
        raise VerifyError(
            f"bundle {path} failed verification ({len(report.problems)} problems):\n  - "
            + "\n  - ".join(report.problems)
        )
    return report
