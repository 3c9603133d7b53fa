"""The bundle's Debian package repositories: one flat apt repository per distribution.

Packages are resolved and pinned elsewhere (airlock.bundle.pin.aptroot resolves from each
distribution's signed archive; airlock.bundle.pin.ospackages writes the pinned files and the
lab profile's entries). Here, the bundle's `debs/<codename>/` directories get their index:
hosts read each as `deb [trusted=yes] URL/debs/<codename> ./`; `Release` carries the
SHA256 of the `Packages` index, which carries the SHA256 of each .deb, so apt checks every
byte.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from airlock.bundle.build.archive import Member


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
