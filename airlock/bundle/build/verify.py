"""Verify a bundle archive, fully offline: every member, by name.

One streaming pass over the tar: each member's header is checked against the rules of
airlock.bundle.build.bundletar (regular file, plain relative name, mode 0644/0755, owner
root, once) and its data hashed as it goes by; then the result is compared with INDEX,
SHA256SUMS and MANIFEST.json, and INDEX.sig with the public key. Problems are collected,
never stop the pass, so a user sees every bad, missing, extra, truncated or altered member
at once, one line each naming it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airlock.bundle.build.bundletar import (
    INDEX,
    INDEX_SIG,
    LEGACY_SIG,
    MANIFEST,
    MAX_META,
    REBUILD,
    SUMS,
    Entry,
    member_problem,
    name_problem,
    parse_index,
    parse_sums,
    shown,
)
from airlock.bundle.build.signing import SignatureError, verify_signature
from airlock.errors import AirlockError

CHUNK = 4 << 20
KEPT = (INDEX, INDEX_SIG, SUMS, LEGACY_SIG, MANIFEST)


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
    mode: dict[str, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # good members, in archive order
    raw: dict[str, bytes] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # members reported by member_problem
    truncated: str | None = None  # the member the archive ends inside of


def verify_bundle(path: Path, public_key: Path | None = None) -> Report:
    """Check every member of the bundle at `path`; returns a Report (never raises on content)."""
    report = Report(path)
    if not path.is_file():
        report.problems.append(f"{path}: no such file; pass the bundle archive's path")
        return report
    seen = _read_members(path, report)
    if seen.truncated is None and not seen.order and not seen.refused:
        report.problems.append(f"{path}: holds no members; {REBUILD}")
        return report
    sums_data = seen.raw.get(SUMS)
    if sums_data is None:
        if SUMS not in seen.refused and seen.truncated is None:
            report.problems.append(f"{SUMS}: missing; the bundle cannot be checked, {REBUILD}")
        return report
    listed, problems = parse_sums(sums_data)
    report.problems += problems
    _check_index(seen, listed, report)
    manifest = _load_manifest(seen, listed, report)
    _compare(listed, manifest, seen, report)
    if public_key is not None:
        _check_signature(public_key, seen, report)
    return report


def _read_members(path: Path, report: Report) -> _Seen:
    # tarfile parses the headers; member data is read straight from the file in large
    # chunks (a streaming tarfile reads 10 KiB at a time, several times slower).
    seen = _Seen()
    current = "(archive header)"
    try:
        with path.open("rb", buffering=0) as raw, tarfile.open(path, mode="r:") as tar:
            while (info := tar.next()) is not None:
                current = shown(info.name)
                problem = member_problem(info)
                if problem is None and info.name in seen.sha256:
                    problem = f"{current}: a second member of that name; {REBUILD}"
                if problem:
                    report.problems.append(problem)
                    seen.refused.add(info.name)
                    current = f"the end of {current}"
                    continue
                keep = info.name in KEPT and info.size <= MAX_META
                raw.seek(info.offset_data)
                sha, size, data = _hash(raw, info.size, keep)
                if size != info.size:
                    raise EOFError(f"got {size} of {info.size} bytes")
                seen.sha256[info.name], seen.size[info.name] = sha, size
                seen.mode[info.name] = info.mode
                seen.order.append(info.name)
                if keep:
                    seen.raw[info.name] = data
                report.members += 1
                report.bytes += size
                current = f"the end of {current}"
    except (tarfile.TarError, EOFError, OSError) as exc:
        seen.truncated = current
        report.problems.append(
            f"{current}: the archive is truncated or corrupt here, or not a tar archive "
            f"({exc}); copy it again"
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


def _check_index(seen: _Seen, listed: dict[str, str], report: Report) -> None:
    """INDEX against the members (name, order, size, mode, sha256) and SHA256SUMS."""
    data = seen.raw.get(INDEX)
    if data is None:
        if INDEX in seen.sha256:
            report.problems.append(f"{INDEX}: too large to be an index; {REBUILD}")
        # No INDEX: a bundle made before it, checked by SHA256SUMS alone (and refused by
        # _check_signature when a public key is given).
        return
    entries, problems = parse_index(data)
    report.problems += problems
    if problems:
        return
    head = [INDEX, INDEX_SIG] if INDEX_SIG in seen.sha256 else [INDEX]
    if seen.order[: len(head)] != head:
        report.problems.append(
            f"{INDEX}: must be the first member (then {INDEX_SIG}); found "
            f"{', '.join(seen.order[:2])}; {REBUILD}"
        )
    for entry in entries:
        _check_entry(entry, seen, listed, report)
    by_name = {e.name: e for e in entries}
    for name in listed:
        if name not in by_name:
            report.problems.append(f"{name}: listed in {SUMS} but not in {INDEX}; {REBUILD}")
    _check_order(entries, seen, report)


def _check_entry(entry: Entry, seen: _Seen, listed: dict[str, str], report: Report) -> None:
    """One line of INDEX against the member of that name and SHA256SUMS."""
    if entry.name in (INDEX, INDEX_SIG):
        report.problems.append(f"{INDEX}: lists {entry.name}, which it cannot; {REBUILD}")
    elif entry.name not in seen.sha256:
        if entry.name not in listed and entry.name != seen.truncated:
            report.problems.append(f"{entry.name}: missing from the archive (listed in {INDEX})")
    elif (seen.size[entry.name], seen.mode[entry.name]) != (entry.size, entry.mode):
        report.problems.append(
            f"{entry.name}: size {seen.size[entry.name]} mode {seen.mode[entry.name]:04o}, "
            f"but {INDEX} says size {entry.size} mode {entry.mode:04o}; {REBUILD}"
        )
    elif seen.sha256[entry.name] != entry.sha256 and entry.name == SUMS:
        report.problems.append(
            f"{SUMS}: altered (sha256 {seen.sha256[SUMS]}, {INDEX} says {entry.sha256})"
        )
    if entry.name != SUMS and entry.name in listed and listed[entry.name] != entry.sha256:
        report.problems.append(
            f"{entry.name}: {INDEX} and {SUMS} disagree on its sha256; {REBUILD}"
        )
    if entry.name not in listed and entry.name != SUMS and entry.name in seen.sha256:
        report.problems.append(f"{entry.name}: listed in {INDEX} but not in {SUMS}")


def _check_order(entries: list[Entry], seen: _Seen, report: Report) -> None:
    """The members INDEX lists come in its order (the first one out of place is reported)."""
    indexed = {e.name for e in entries}
    rest = [n for n in seen.order if n not in (INDEX, INDEX_SIG)]
    in_both = [n for n in rest if n in indexed]
    expected = [e.name for e in entries if e.name in seen.sha256]
    for got, want in zip(in_both, expected, strict=False):
        if got != want:
            report.problems.append(
                f"{got}: out of place, {INDEX} lists {want} here: re-ordered members; {REBUILD}"
            )
            break


def _load_manifest(seen: _Seen, listed: dict[str, str], report: Report) -> dict[str, Any]:
    """MANIFEST.json must parse, and every path it names must be a member of the bundle."""
    data = seen.raw.get(MANIFEST)
    if data is None:
        if MANIFEST not in listed and MANIFEST not in seen.refused and seen.truncated is None:
            report.problems.append(f"{MANIFEST}: missing; {REBUILD}")
        return {}
    try:
        doc = json.loads(data)
    except ValueError as exc:
        report.problems.append(f"{MANIFEST}: not valid JSON ({exc}); {REBUILD}")
        return {}
    if not isinstance(doc, dict):
        report.problems.append(f"{MANIFEST}: not a JSON object; {REBUILD}")
        return {}
    artifacts = doc.get("artifacts", [])
    files = doc.get("files", {})
    if not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts):
        report.problems.append(f"{MANIFEST}: 'artifacts' is not a list of objects; {REBUILD}")
        artifacts = []
    if not isinstance(files, dict):
        report.problems.append(f"{MANIFEST}: 'files' is not an object; {REBUILD}")
        files = {}
    paths = [(f"artifact {shown(str(a.get('name')))}", a.get("path")) for a in artifacts]
    paths += [("files", name) for name in files]
    for what, name in paths:
        problem = name_problem(name) if isinstance(name, str) else "not a string"
        if problem:
            report.problems.append(
                f"{MANIFEST}: {what} has path {shown(str(name))}, which is not allowed "
                f"({problem}); {REBUILD}"
            )
        elif name not in seen.sha256 and name not in listed and name != seen.truncated:
            report.problems.append(
                f"{MANIFEST}: {what} has path {name}, which is not a member of the bundle; "
                f"{REBUILD}"
            )
    return {"files": {k: v for k, v in files.items() if isinstance(v, dict)}}


def _compare(listed: dict[str, str], manifest: dict[str, Any], seen: _Seen, report: Report) -> None:
    files = manifest.get("files") or {}
    for name in sorted(listed):
        want = listed[name]
        if name == seen.truncated or name in seen.refused:
            continue  # already reported as the place the archive ends, or as not allowed
        if name not in seen.sha256:
            report.problems.append(f"{name}: missing from the archive (listed in {SUMS})")
        elif seen.sha256[name] != want:
            report.problems.append(_altered(name, want, seen, files))
    for name in seen.order:
        if name not in listed and name not in (INDEX, INDEX_SIG, SUMS, LEGACY_SIG):
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


def _check_signature(public_key: Path, seen: _Seen, report: Report) -> None:
    data, sig = seen.raw.get(INDEX), seen.raw.get(INDEX_SIG)
    if data is None and LEGACY_SIG in seen.sha256:
        report.problems.append(
            f"{LEGACY_SIG}: the old signature format, which covers checksums but not names, "
            f"modes or order; rebuild and sign it with `airlock bundle build --signing-key`"
        )
        return
    if data is None or sig is None:
        report.problems.append(
            f"{INDEX_SIG}: missing, but a public key was given; the bundle is unsigned"
        )
        return
    try:
        verify_signature(public_key, data, sig)
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
