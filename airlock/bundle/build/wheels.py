"""airlock's own wheels (and its Python dependencies) for the bundle, with what the
execution environment's build installs besides them (the `ee` extra: airlock/lab/ee.py).

On the air-gapped deploy machine:

    python3 -m venv airlock-venv
    airlock-venv/bin/pip install --no-index --find-links BUNDLE_DIR/wheels airlock

The dependency wheels are cached by the hash of requirements.lock and pyproject.toml;
airlock's own wheel by the hash of its sources; so a rebuild with no change runs no pip.
The project tree (roles, playbooks: what ansible runs) goes in as airlock-project.tar.gz,
and the collection airlock.cluster as `collections/airlock-cluster-VERSION.tar.gz` (for
`ansible-galaxy collection install --offline`, AWX and execution environments); both
follow the commit, as airlock's wheel does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from airlock.bundle.build.archive import Member
from airlock.bundle.build.download import sha256_file
from airlock.errors import CommandError


def wheel_members(cache_dir: Path, dry_run: bool = False) -> list[Member]:
    """Members `wheels/*.whl`, `airlock-project.tar.gz` and the collection tarball, built
    or taken from the cache."""
    from airlock import collection
    from airlock.paths import project_root

    root = project_root()
    deps = cache_dir / f"deps-{_digest([root / 'requirements.lock', root / 'pyproject.toml'])}"
    own = cache_dir / f"airlock-{_digest(_sources(root))}"
    if dry_run:
        return [Member(f"wheels/ (from {root}, requirements.lock)", deps, "-" * 64, 0)]
    if not deps.is_dir():
        _pip(
            [
                "wheel",
                "--quiet",
                "-w",
                str(_fresh(deps)),
                "-c",
                str(root / "requirements.lock"),
                f"{root}[ee]",
            ],
            deps,
        )
    if not own.is_dir():
        _pip(["wheel", "--quiet", "--no-deps", "-w", str(_fresh(own)), str(root)], own)
        _git_archive(root, own / "airlock-project.tar.gz")
    tarball = own / collection.tarball_name()
    if not tarball.is_file():
        collection.build(root, own)
    files = {p.name: p for p in sorted(deps.glob("*.whl")) if not p.name.startswith("airlock-")}
    files.update({p.name: p for p in own.glob("*.whl")})
    members = [_member(f"wheels/{name}", path) for name, path in sorted(files.items())]
    project = own / "airlock-project.tar.gz"
    if project.is_file():
        members.append(_member("airlock-project.tar.gz", project))
    members.append(_member(f"collections/{tarball.name}", tarball))
    return members


def _member(arcname: str, path: Path) -> Member:
    return Member(arcname, path, sha256_file(path), path.stat().st_size)


def _fresh(path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _pip(args: list[str], final: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"}
    )
    if proc.returncode:
        raise CommandError(
            cmd,
            proc.returncode,
            proc.stderr,
            "the build machine needs PyPI (or PIP_INDEX_URL) to collect wheels",
        )
    os.replace(final.with_name(final.name + ".tmp"), final)


def _git_archive(root: Path, dest: Path) -> None:
    if not (root / ".git").exists():
        return
    cmd = [
        "git",
        "-C",
        str(root),
        "archive",
        "--format=tar.gz",
        "--prefix=airlock/",
        "-o",
        str(dest),
        "HEAD",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise CommandError(cmd, proc.returncode, proc.stderr)


def _sources(root: Path) -> list[Path]:
    files = [root / "pyproject.toml"]
    files += sorted(
        p for p in (root / "airlock").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    head = root / ".git" / "HEAD"
    if head.is_file():  # the project archive follows the commit
        files.append(head)
        ref = head.read_text().strip().removeprefix("ref: ")
        if (root / ".git" / ref).is_file():
            files.append(root / ".git" / ref)
    return files


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
