"""Debian packages for the bundle: resolve with dependencies, and index as a flat repository.

Resolution uses the build machine's own apt (`apt-cache depends --recurse`, then
`apt-get download --print-uris` for each package's archive URL, size and SHA256), so the
result is pinned exactly like every other artifact: one manifest entry per .deb with its
version, URL (under a mirror variable) and sha256. It resolves for the distribution the
build machine runs; build the bundle for another distribution on a machine (or in a
container) of that distribution.

On the hosts, the bundle's `debs/<codename>/` is a flat apt repository
(`deb [trusted=yes] URL/debs/bookworm ./`); `Release` carries the SHA256 of the
`Packages` index, which carries the SHA256 of each .deb, so apt checks every byte.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from airlock.bundle.archive import Member
from airlock.errors import AirlockError, CommandError

_URI_LINE = re.compile(
    r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class DebPackage:
    """One resolved .deb."""

    name: str
    version: str
    url: str
    filename: str
    size: int
    sha256: str


def resolve(packages: Sequence[str]) -> list[DebPackage]:
    """The packages and every package they depend on (no recommends), as apt sees them."""
    closure = _closure(packages)
    out = _run(["apt-get", "download", "--print-uris", *closure])
    debs = []
    for line in out.splitlines():
        match = _URI_LINE.match(line.strip())
        if not match:
            continue
        filename = urllib.parse.unquote(match["file"])
        name, version = filename.split("_")[:2]
        debs.append(
            DebPackage(
                name,
                urllib.parse.unquote(version),
                match["url"],
                filename,
                int(match["size"]),
                match["sha"],
            )
        )
    missing = set(closure) - {d.name for d in debs}
    if missing:
        raise AirlockError(
            f"apt found no downloadable package for: {', '.join(sorted(missing))}; "
            "run apt-get update, or check the package names in the manifest"
        )
    return sorted(debs, key=lambda d: d.name)


def _closure(packages: Sequence[str]) -> list[str]:
    out = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            *packages,
        ]
    )
    names = {
        line.strip()
        for line in out.splitlines()
        if line and not line[0].isspace() and not line.startswith("<")
    }
    return sorted(names)


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"}
    )
    if proc.returncode:
        raise CommandError(
            cmd,
            proc.returncode,
            proc.stderr,
            "apt must reach the distribution's archive (run apt-get update)",
        )
    return proc.stdout


def index_members(
    debs: Iterable[Member], workdir: Path, codename_of: Mapping[str, str]
) -> list[Member]:
    """Packages, Packages.gz and Release for every `debs/<codename>/` directory."""
    by_dir: dict[str, list[Member]] = {}
    for member in debs:
        by_dir.setdefault(member.arcname.rsplit("/", 1)[0], []).append(member)
    members: list[Member] = []
    for directory, group in sorted(by_dir.items()):
        members += _index(
            directory,
            group,
            workdir / directory,
            codename_of.get(directory, directory.rsplit("/", 1)[-1]),
        )
    return members


def _index(directory: str, debs: list[Member], out: Path, codename: str) -> list[Member]:
    out.mkdir(parents=True, exist_ok=True)
    stanzas = [_stanza(m) for m in sorted(debs, key=lambda m: m.arcname)]
    packages = ("\n".join(stanzas)).encode()
    files = {"Packages": packages, "Packages.gz": gzip.compress(packages, mtime=0)}
    lines = [
        "Origin: airlock",
        f"Label: airlock bundle {codename}",
        f"Suite: {codename}",
        f"Codename: {codename}",
        "Architectures: amd64 arm64 all",
        "SHA256:",
    ]
    lines += [f" {hashlib.sha256(d).hexdigest()} {len(d)} {n}" for n, d in files.items()]
    files["Release"] = ("\n".join(lines) + "\n").encode()
    members = []
    for name, data in files.items():
        path = out / name
        path.write_bytes(data)
        members.append(
            Member(f"{directory}/{name}", path, hashlib.sha256(data).hexdigest(), len(data))
        )
    return members


def _stanza(member: Member) -> str:
    control = subprocess.run(
        ["dpkg-deb", "--field", str(member.source)], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")
    name = member.arcname.rsplit("/", 1)[1]
    return f"{control}\nFilename: ./{name}\nSize: {member.size}\nSHA256: {member.sha256}\n"
