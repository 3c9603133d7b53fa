"""The collection `airlock.cluster` as an artifact: `airlock-cluster-X.Y.Z.tar.gz`.

In this checkout the collection is `collections/ansible_collections/airlock/cluster/`: its
galaxy.yml, meta/ and CHANGELOG.md, with `plugins` a symlink to the project's plugins/. The
artifact carries what a user of AWX/AAP or of a plain `ansible-playbook` needs to run
airlock from the collection alone: the modules, module_utils and doc fragments, every
role (roles/, so `airlock.cluster.etcd`) and every playbook (playbooks/, so
`ansible-playbook airlock.cluster.site`; inside the collection the playbooks find the roles
by their short names; a playbook whose file name has a `-` is renamed with `_`, as FQCNs
take no `-`: `airlock.cluster.certs_renew`). Its version is airlock's (pyproject.toml);
galaxy.yml must say the same, and a unit test holds them together.

`build()` copies those into a staging directory (symlinks resolved, no caches) and runs
`ansible-galaxy collection build`, which writes MANIFEST.json and FILES.json (a sha256 per
file) into the tarball.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from airlock import __version__
from airlock.errors import AirlockError, CommandError
from airlock.paths import venv_program

NAMESPACE = "airlock"
NAME = "cluster"
# What goes in, from the project root (besides the in-repo collection's own files).
CONTENT = ("plugins", "roles", "playbooks")
_IMPORT = re.compile(r"(import_playbook:\s*)([\w-]+)\.yml")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "molecule")


def source_dir(root: Path) -> Path:
    return root / "collections" / "ansible_collections" / NAMESPACE / NAME


def tarball_name(version: str = __version__) -> str:
    return f"{NAMESPACE}-{NAME}-{version}.tar.gz"


def galaxy(root: Path) -> dict:
    """The in-repo galaxy.yml, checked against airlock's version."""
    path = source_dir(root) / "galaxy.yml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AirlockError(f"{path}: cannot read it ({exc}); restore it from git") from exc
    if data.get("version") != __version__:
        raise AirlockError(
            f"{path}: version {data.get('version')!r} is not airlock's {__version__!r} "
            "(pyproject.toml); make them equal"
        )
    return data


def stage(root: Path, dest: Path) -> Path:
    """The collection's tree in `dest`: galaxy.yml, README, meta, changelog, CONTENT."""
    data = galaxy(root)
    data["readme"] = "README.md"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "galaxy.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    src = source_dir(root)
    shutil.copytree(src / "meta", dest / "meta", ignore=_IGNORE)
    shutil.copy2(src / "CHANGELOG.md", dest / "CHANGELOG.md")
    shutil.copy2(src / "README.md", dest / "README.md")
    for name in CONTENT:
        shutil.copytree(root / name, dest / name, ignore=_IGNORE, symlinks=False)
    _fqcn_playbooks(dest / "playbooks")
    return dest


def _fqcn_playbooks(playbooks: Path) -> None:
    """`x-y.yml` -> `x_y.yml` (a collection's playbook is named by an FQCN, which takes no
    `-`), and every `import_playbook: x-y.yml` with it."""
    for path in sorted(playbooks.glob("*.yml")):
        text = _IMPORT.sub(lambda m: m[1] + m[2].replace("-", "_") + ".yml", path.read_text())
        path.write_text(text)
        if "-" in path.name:
            path.rename(path.with_name(path.name.replace("-", "_")))


def build(root: Path, output: Path) -> Path:
    """`ansible-galaxy collection build` of the staged tree into `output`; the tarball."""
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airlock-collection-") as tmp:
        staged = stage(root, Path(tmp) / NAME)
        cmd = [
            venv_program("ansible-galaxy"),
            "collection",
            "build",
            "--force",
            "--output-path",
            str(output),
            str(staged),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise CommandError(cmd, proc.returncode, proc.stderr or proc.stdout)
    tarball = output / tarball_name()
    if not tarball.is_file():
        raise AirlockError(f"{tarball}: ansible-galaxy did not write it ({proc.stdout.strip()})")
    return tarball
