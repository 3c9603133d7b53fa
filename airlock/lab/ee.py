"""airlock's execution environment (EE): its build context and, on the lab, its image.

`context()` stages what execution-environment.yml names beside a copy of it: `wheels/`
(the bundle's wheels: airlock's dependencies and the `ee` extra, the same files
`airlock bundle build` packs) and `collections/airlock-cluster.tar.gz` (the collection),
then runs `ansible-builder create`. `build()` builds the image from that context with
podman, from the lab host image (Debian 12, built offline by airlock/lab/image.py) and
with `--network=none`: no registry, no package index.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from airlock import __version__, collection
from airlock.bundle.build.wheels import wheel_members
from airlock.errors import CommandError
from airlock.lab.image import ensure_image
from airlock.paths import state_dir, venv_program
from airlock.podman import podman_env, require_podman

EE_FILE = "execution-environment.yml"
TAG = f"localhost/airlock-ee:{__version__}"


def context(root: Path, output: Path) -> Path:
    """The build context (Containerfile and _build/) in `output`; `output` returned."""
    stage = output.with_name(output.name + ".stage")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "wheels").mkdir(parents=True)
    (stage / "collections").mkdir()
    shutil.copy2(root / EE_FILE, stage / EE_FILE)
    for member in wheel_members(state_dir() / "cache" / "bundle" / "wheels"):
        if member.arcname.startswith("wheels/"):
            shutil.copy2(member.source, stage / member.arcname)
    tarball = collection.build(root, stage / "dist")
    shutil.copy2(tarball, stage / "collections" / "airlock-cluster.tar.gz")
    shutil.rmtree(output, ignore_errors=True)
    cmd = [
        venv_program("ansible-builder"),
        "create",
        "--file",
        str(stage / EE_FILE),
        "--context",
        str(output),
        "--output-filename",
        "Containerfile",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=stage)
    if proc.returncode:
        raise CommandError(cmd, proc.returncode, proc.stderr or proc.stdout)
    shutil.rmtree(stage)
    return output


def build(root: Path, output: Path, log: Callable[[str], None], tag: str = TAG) -> str:
    """The EE image `tag`, built offline from the context made in `output`."""
    base = ensure_image(log)
    context(root, output)
    started = time.monotonic()
    log(f"building {tag} from {base} and the bundle's wheels (--network=none)")
    cmd = [
        require_podman(),
        "build",
        "--network=none",
        "--pull=never",
        "--build-arg",
        f"EE_BASE_IMAGE={base}",
        "--file",
        str(output / "Containerfile"),
        "--tag",
        tag,
        str(output),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=podman_env(), check=False)
    if proc.returncode:
        (output / "build.log").write_text(proc.stdout + proc.stderr)
        raise CommandError(
            cmd, proc.returncode, proc.stderr, f"the whole log is in {output / 'build.log'}"
        )
    log(f"{tag} built in {time.monotonic() - started:.0f}s")
    return tag
