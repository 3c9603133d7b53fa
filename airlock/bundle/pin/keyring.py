"""The keys that may sign a distribution's Release files, for a private apt root.

`signed_by(keyring, mirrors, cache)` returns what a source line's `signed-by=` gets: the
keyring file and the pinned fingerprints. A keyring that lacks a pinned fingerprint is
refused before apt runs; apt itself then accepts only signatures by those keys.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from airlock.bundle.pin.aptroot import AptRoot, SourceLine
from airlock.bundle.pin.distros import Keyring, KeyringPackage
from airlock.errors import AirlockError


class KeyringError(AirlockError):
    """No usable keyring, or one without the pinned keys."""


def signed_by(keyring: Keyring, mirrors: Mapping[str, str], cache: Path) -> tuple[str, ...]:
    """The keyring path and pinned fingerprints for `signed-by=`."""
    path = keyring_file(keyring, mirrors, cache)
    if keyring.fingerprints:
        require_fingerprints(path, keyring.fingerprints)
    return (str(path), *keyring.fingerprints)


def keyring_file(keyring: Keyring, mirrors: Mapping[str, str], cache: Path) -> Path:
    """The build machine's keyring if present, else the one fetched from `keyring.package`."""
    local = Path(keyring.local)
    if local.is_file():
        return local
    if keyring.package is None:
        raise KeyringError(
            f"{local} does not exist; install the distribution's archive keyring package "
            "(debian-archive-keyring) on this machine"
        )
    cached = cache / "keyrings" / keyring.package.package / Path(keyring.package.member).name
    if not cached.is_file():
        _fetch(keyring.package, mirrors, cache, cached)
    return cached


def _fetch(pkg: KeyringPackage, mirrors: Mapping[str, str], cache: Path, out: Path) -> None:
    if not Path(pkg.trusted_by).is_file():
        raise KeyringError(
            f"{pkg.trusted_by} does not exist, so the {pkg.package} package cannot be "
            f"checked; install debian-archive-keyring, or put the keyring at {out}"
        )
    root = AptRoot(cache / f"keyring-{pkg.suite}", "amd64", f"keyring {pkg.package}")
    root.configure(
        [SourceLine(mirrors[pkg.mirror], pkg.suite, (pkg.component,), (pkg.trusted_by,))]
    )
    root.update()
    with tempfile.TemporaryDirectory(prefix="airlock-keyring-") as tmp:
        deb = root.download(pkg.package, Path(tmp) / "deb")
        tree = Path(tmp) / "tree"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True)
        member = tree / pkg.member
        if not member.is_file():
            raise KeyringError(f"{deb.name} has no {pkg.member}; the package changed its layout")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(member, out)
    shutil.rmtree(root.root)  # its lists served this one package; the keyring is kept


def fingerprints(path: Path) -> set[str]:
    """Fingerprints of the primary keys in a keyring file (binary or armored)."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise KeyringError(f"gpg is needed to read {path}; install it (apt-get install gpg)")
    with tempfile.TemporaryDirectory(prefix="airlock-gpg-") as home:
        proc = subprocess.run(
            [gpg, "--homedir", home, "--batch", "--with-colons", "--show-keys", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode:
        raise KeyringError(f"{path} is not a readable OpenPGP keyring: {proc.stderr.strip()}")
    found: set[str] = set()
    primary = False
    for line in proc.stdout.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            primary = fields[0] == "pub"
        elif fields[0] == "fpr" and primary:
            found.add(fields[9].upper())
            primary = False
    return found


def require_fingerprints(path: Path, wanted: tuple[str, ...]) -> None:
    """Refuse `path` unless it holds every pinned key."""
    found = fingerprints(path)
    missing = [f for f in wanted if f.upper() not in found]
    if missing:
        raise KeyringError(
            f"{path} does not hold the pinned signing key(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(found)) or 'no keys'}); refusing it. Use the "
            "distribution's own keyring, or, if the archive changed keys, verify the new "
            "fingerprint against the distribution's announcement and pin it in "
            "airlock/bundle/distros.py"
        )
