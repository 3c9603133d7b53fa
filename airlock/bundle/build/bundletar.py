"""What a bundle member may be, the signed index, and the verified extraction.

The one place that says what may be in a bundle: the writer (airlock.bundle.build.archive)
checks what it writes, `airlock bundle verify` (airlock.bundle.build.verify) checks what
it reads, and the bundle host unpacks with `extract_bundle`. The bundle host has no
airlock installed (its wheels are for the deploy machine's CPython), so roles/bundle_server
runs this very file there with the host's python3 (ansible.builtin.script): it imports
nothing but the standard library, and nothing from airlock.

A member of a bundle is
- a regular file: no directory, symbolic or hard link, device, fifo or sparse file;
- named by a plain relative path: not absolute, no `..`, `.` or empty component, no
  backslash or control character;
- mode 0644 or 0755 exactly (so never setuid, setgid, sticky, group- or world-writable);
- owned by uid 0 and gid 0, with owner names empty or `root` (GNU tar as root prefers the
  name when the host knows it);
- present once.

The index (member INDEX, the first of the archive) lists every other member except
INDEX.sig, in archive order, one line each after a header line:

    airlock-bundle-index 1
    <sha256> <size> <mode, 4 octal digits> <name>

INDEX.sig (optional, second) is the signature over INDEX's bytes. So a valid signature
covers the name, size, mode, content and position of every member (the owner is always
root), including SHA256SUMS and MANIFEST.json.

    python3 bundletar.py ARCHIVE TARGET [--sha256 HEX]   # one JSON line; exit 1 on refusal
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INDEX = "INDEX"
INDEX_SIG = "INDEX.sig"
SUMS = "SHA256SUMS"
LEGACY_SIG = "SHA256SUMS.sig"  # bundles before the index signed SHA256SUMS only
MANIFEST = "MANIFEST.json"
INDEX_HEADER = "airlock-bundle-index 1"
FILE_MODES = (0o644, 0o755)
REBUILD = "rebuild the bundle with `airlock bundle build`"
MAX_META = 64 << 20  # INDEX, SHA256SUMS, MANIFEST.json are read into memory: a sane bound
CHUNK = 1 << 20
USAGE = "usage: bundletar.py ARCHIVE TARGET [--sha256 HEX]"
_HEX = frozenset("0123456789abcdef")


class UnpackError(Exception):
    """The archive was refused; the message is one line naming the member and the fix."""


@dataclass(frozen=True)
class Entry:
    """One line of INDEX."""

    sha256: str
    size: int
    mode: int
    name: str


def shown(name: str) -> str:
    """A member name as it can be printed on one line."""
    return name if name.isprintable() and name.strip() == name and name else repr(name)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a path inside the bundle, or None."""
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute path"
    if "\\" in name or not name.isprintable():
        return "backslash or control character in the name"
    parts = name.split("/")
    if ".." in parts:
        return "'..' leaves the bundle"
    if any(part in ("", ".") for part in parts):
        return "not a plain relative path (empty or '.' component)"
    return None


def _kind(info: tarfile.TarInfo) -> str | None:
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return None
    if info.issym() or info.islnk():
        link = "symbolic" if info.issym() else "hard"
        return f"a {link} link (to {shown(info.linkname)})"
    for is_kind, kind in (
        (info.isdir, "a directory"),
        (info.ischr, "a device"),
        (info.isblk, "a device"),
        (info.isfifo, "a fifo"),
        (info.issparse, "a sparse file"),
    ):
        if is_kind():
            return kind
    return f"of tar type {info.type!r}"


def mode_problem(mode: int) -> str | None:
    if mode in FILE_MODES:
        return None
    what = []
    if mode & 0o4000:
        what.append("setuid")
    if mode & 0o2000:
        what.append("setgid")
    if mode & 0o1000:
        what.append("sticky")
    if mode & 0o022:
        what.append("group/world-writable")
    detail = f" ({', '.join(what)})" if what else ""
    return f"mode {mode:04o}{detail}; files must be 0644 or 0755"


def member_problem(info: tarfile.TarInfo) -> str | None:
    """Why this member may not be in a bundle, as one line naming it and the fix; or None."""
    name = shown(info.name)
    problem = name_problem(info.name)
    if problem:
        return f"{name}: member name is not allowed ({problem}); {REBUILD}"
    kind = _kind(info)
    if kind:
        return f"{name}: {kind}; a bundle holds regular files only, {REBUILD}"
    problem = mode_problem(info.mode)
    if problem:
        return f"{name}: {problem}; {REBUILD}"
    root = ("", "root")  # the owner names GNU tar writes for uid/gid 0
    if info.uid != 0 or info.gid != 0 or info.uname not in root or info.gname not in root:
        return (
            f"{name}: owned by uid {info.uid} gid {info.gid} "
            f"({shown(info.uname or '-')}:{shown(info.gname or '-')}); members must be owned "
            f"by root (0/0); {REBUILD}"
        )
    return None


def index_text(entries: list[Entry]) -> bytes:
    lines = [f"{e.sha256} {e.size} {e.mode:04o} {e.name}\n" for e in entries]
    return (INDEX_HEADER + "\n" + "".join(lines)).encode()


def _is_sha(text: str) -> bool:
    return len(text) == 64 and set(text) <= _HEX


def parse_index(data: bytes) -> tuple[list[Entry], list[str]]:
    """Parse INDEX; returns (entries in order, problems)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [f"{INDEX}: not UTF-8 text; {REBUILD}"]
    lines = text.split("\n")
    if lines[0] != INDEX_HEADER:
        return [], [f"{INDEX}: the first line is not {INDEX_HEADER!r}; {REBUILD}"]
    if lines[-1] != "":
        return [], [f"{INDEX}: does not end with a newline (cut short?); {REBUILD}"]
    entries: list[Entry] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines[1:-1], 2):
        parts = line.split(" ", 3)
        ok = (
            len(parts) == 4
            and _is_sha(parts[0])
            and parts[1].isdigit()
            and len(parts[2]) == 4
            and set(parts[2]) <= set("01234567")
        )
        if not ok:
            problems.append(f"{INDEX}: line {number} is malformed ({line[:80]!r}); {REBUILD}")
            continue
        sha, size, mode, name = parts
        problem = name_problem(name) or mode_problem(int(mode, 8))
        if problem:
            problems.append(f"{INDEX}: line {number} lists {shown(name)}: {problem}; {REBUILD}")
            continue
        if name in first_line:
            problems.append(
                f"{INDEX}: {name} is listed twice (lines {first_line[name]} and {number}); "
                f"{REBUILD}"
            )
            continue
        first_line[name] = number
        entries.append(Entry(sha, int(size), int(mode, 8), name))
    return entries, problems


def sums_text(files: dict[str, str]) -> bytes:
    return "".join(f"{sha}  {name}\n" for name, sha in sorted(files.items())).encode()


def parse_sums(data: bytes) -> tuple[dict[str, str], list[str]]:
    """Parse SHA256SUMS; returns (path -> sha256, problems)."""
    files: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        sha, sep, name = line.partition("  ")
        if not sep or not _is_sha(sha):
            problems.append(f"{SUMS}: line {number} is malformed ({line[:80]!r}); {REBUILD}")
            continue
        problem = name_problem(name)
        if problem:
            problems.append(f"{SUMS}: line {number} lists {shown(name)}: {problem}; {REBUILD}")
            continue
        if name in first_line:
            problems.append(
                f"{SUMS}: {name} is listed twice (lines {first_line[name]} and {number}); {REBUILD}"
            )
            continue
        first_line[name] = number
        files[name] = sha
    return files, problems


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def extract_bundle(archive: Path, target: Path, sha256: str | None = None) -> int:
    """Unpack the bundle `archive` into the directory `target`; returns the number of files.

    With `sha256`, the archive must hash to it first (the very archive verified elsewhere).
    Every member is checked by member_problem and against INDEX (or, for a bundle made
    before INDEX, SHA256SUMS) as it is written: name, order, size, mode and sha256.
    Member metadata is never trusted: files are created new (O_EXCL, O_NOFOLLOW) below a
    fresh directory next to `target`, with the mode the rules allow, owned by root when
    running as root. Only a complete, clean unpack replaces `target`; on any refusal
    nothing is left behind. Raises UnpackError (one line) on any problem.
    """
    archive, target = Path(archive), Path(os.path.abspath(target))
    if sha256 is not None:
        actual = sha256_of(archive)
        if actual != sha256.lower():
            raise UnpackError(
                f"{archive}: sha256 {actual}, expected {sha256}: not the archive that was "
                "verified; copy it again"
            )
    if os.path.islink(target) or (target.exists() and not target.is_dir()):
        raise UnpackError(f"{target}: exists and is not a directory; remove it")
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpack-", dir=target.parent))
    try:
        os.chmod(work, 0o755)
        count = _unpack(archive, work)
        _replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return count


def _replace(work: Path, target: Path) -> None:
    if not target.exists():
        os.rename(work, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "d")
    os.rename(work, target)
    shutil.rmtree(old, ignore_errors=True)


def _unpack(archive: Path, work: Path) -> int:
    unpacking = _Unpacking(work)
    current = "(archive header)"
    try:
        with tarfile.open(archive, mode="r:") as tar:
            while (info := tar.next()) is not None:
                current = shown(info.name)
                unpacking.add(tar, info)
    except (tarfile.TarError, EOFError) as exc:
        raise UnpackError(
            f"{current}: the archive is truncated or corrupt here ({exc}); copy it again"
        ) from None
    except OSError as exc:
        raise UnpackError(f"{current}: cannot be written ({exc.strerror}); {REBUILD}") from None
    if not unpacking.written:
        raise UnpackError(f"{archive}: an empty archive; {REBUILD}")
    missing = unpacking.missing()
    if missing:
        raise UnpackError(f"{missing[0]}: missing from the archive; copy it again or {REBUILD}")
    return len(unpacking.written)


@dataclass
class _Unpacking:
    """One unpack in progress: what INDEX (or SHA256SUMS) expects, what is written."""

    work: Path
    expected: list[Entry] | None = None  # from INDEX
    legacy: dict[str, str] | None = None  # from SHA256SUMS, for a bundle before INDEX
    written: set[str] = field(default_factory=set)
    position: int = 0  # index into `expected` of the next member

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        """Check the member and write it below `work`; raises UnpackError if refused."""
        problem = member_problem(info)
        if problem:
            raise UnpackError(problem)
        if info.name in self.written:
            raise UnpackError(f"{shown(info.name)}: a second member of that name; {REBUILD}")
        if not self.written:
            self._add_first(tar, info)
        elif self.expected is not None:
            self._add_indexed(tar, info, self.expected)
        else:
            self._add_legacy(tar, info)
        self.written.add(info.name)

    def missing(self) -> list[str]:
        """The members INDEX or SHA256SUMS lists that the archive did not hold."""
        missing = [e.name for e in (self.expected or [])[self.position :]]
        return missing + sorted(set(self.legacy or {}) - self.written)

    def _add_first(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        """INDEX, or SHA256SUMS in a bundle made before INDEX: parsed, then written."""
        if info.name not in (INDEX, SUMS):
            raise UnpackError(
                f"{shown(info.name)}: the first member must be {INDEX} (or {SUMS} in a bundle "
                f"made before it); {REBUILD}"
            )
        data = _read(tar, info)
        if info.name == INDEX:
            self.expected, problems = parse_index(data)
        else:
            self.legacy, problems = parse_sums(data)
        if problems:
            raise UnpackError(problems[0])
        _write(self.work, info.name, data, info.mode)

    def _add_indexed(
        self, tar: tarfile.TarFile, info: tarfile.TarInfo, expected: list[Entry]
    ) -> None:
        """INDEX.sig right after INDEX, else the member INDEX lists at this place."""
        if info.name == INDEX_SIG and self.written == {INDEX}:
            _write(self.work, info.name, _read(tar, info), info.mode)
            return
        position = self.position
        if position >= len(expected) or expected[position].name != info.name:
            want = expected[position].name if position < len(expected) else "nothing"
            raise UnpackError(
                f"{shown(info.name)}: {INDEX} lists {want} at this place: the member was "
                f"re-ordered, renamed or added; {REBUILD}"
            )
        _check(expected[position], info, _copy(tar, info, self.work))
        self.position += 1

    def _add_legacy(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        """A member of a bundle made before INDEX: written, then checked by SHA256SUMS."""
        sha = _copy(tar, info, self.work)
        if self.legacy is not None and info.name != LEGACY_SIG:
            if info.name not in self.legacy:
                raise UnpackError(f"{shown(info.name)}: not listed in {SUMS}; {REBUILD}")
            if self.legacy[info.name] != sha:
                raise UnpackError(f"{shown(info.name)}: altered (sha256 {sha}); {REBUILD}")


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    if info.size > MAX_META:
        raise UnpackError(f"{shown(info.name)}: {info.size} bytes, too large; {REBUILD}")
    handle = tar.extractfile(info)
    data = handle.read() if handle else b""
    if len(data) != info.size:
        raise EOFError(f"got {len(data)} of {info.size} bytes")
    return data


def _create(work: Path, name: str, mode: int) -> int:
    """A new file `name` below `work` (parents made 0755), open for writing."""
    parent = work
    for part in name.split("/")[:-1]:
        parent = parent / part
        if not parent.is_dir() or parent.is_symlink():
            os.mkdir(parent, 0o755)  # raises if a file of that name is already there
            os.chmod(parent, 0o755)
            _own(parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(parent / name.rsplit("/", 1)[-1], flags, 0o600)
    os.fchmod(fd, mode)
    if os.geteuid() == 0:
        os.fchown(fd, 0, 0)
    return fd


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, 0, 0, follow_symlinks=False)


def _write(work: Path, name: str, data: bytes, mode: int) -> None:
    fd = _create(work, name, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _copy(tar: tarfile.TarFile, info: tarfile.TarInfo, work: Path) -> str:
    """Write the member's data to a new file; returns its sha256."""
    digest = hashlib.sha256()
    source = tar.extractfile(info)
    size = 0
    fd = _create(work, info.name, info.mode)
    with os.fdopen(fd, "wb") as out:
        while source is not None and (chunk := source.read(CHUNK)):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if size != info.size:
        raise EOFError(f"got {size} of {info.size} bytes")
    return digest.hexdigest()


def _check(entry: Entry, info: tarfile.TarInfo, sha: str) -> None:
    name = shown(info.name)
    if info.size != entry.size or info.mode != entry.mode:
        raise UnpackError(
            f"{name}: size {info.size} mode {info.mode:04o}, but {INDEX} says size "
            f"{entry.size} mode {entry.mode:04o}; {REBUILD}"
        )
    if sha != entry.sha256:
        raise UnpackError(f"{name}: altered (sha256 {sha}, {INDEX} says {entry.sha256}); {REBUILD}")


def main(argv: list[str]) -> int:
    """`python3 bundletar.py ARCHIVE TARGET [--sha256 HEX]`: one JSON line on stdout."""
    args = list(argv)
    sha256 = None
    if "--sha256" in args:
        at = args.index("--sha256")
        sha256 = args[at + 1] if at + 1 < len(args) else ""
        del args[at : at + 2]
    if len(args) != 2:
        print(json.dumps({"failed": True, "msg": USAGE}))
        return 2
    try:
        count = extract_bundle(Path(args[0]), Path(args[1]), sha256)
    except UnpackError as exc:
        print(json.dumps({"failed": True, "msg": f"bundle {args[0]}: {exc}"}))
        return 1
    print(json.dumps({"changed": True, "files": count, "target": args[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
