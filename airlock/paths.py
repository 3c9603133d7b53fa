"""Where airlock finds its project tree and keeps local state."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from airlock.errors import AirlockError


def project_root() -> Path:
    """The airlock tree (the directory holding ansible.cfg, roles/ and playbooks/).

    AIRLOCK_HOME wins; otherwise the current directory or one of its parents; otherwise
    the tree this package was installed from (an editable install).
    """
    env = os.environ.get("AIRLOCK_HOME")
    candidates = [Path(env)] if env else []
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents, Path(__file__).resolve().parent.parent]
    for path in candidates:
        if (path / "playbooks" / "site.yml").is_file() and (path / "roles").is_dir():
            return path
    raise AirlockError(
        "cannot find the airlock project tree (playbooks/site.yml); "
        "run airlock from its checkout or set AIRLOCK_HOME to it"
    )


def state_dir() -> Path:
    """Local, git-ignored state: lab keys, image cache, fact cache, run directories."""
    path = project_root() / ".airlock"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def venv_program(name: str) -> str:
    """A program of airlock's own environment (beside its python, else on PATH):
    ansible-galaxy, ansible-builder; a one-line error naming the fix when it is missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise AirlockError(f"{name} is not installed; run scripts/bootstrap (requirements.lock)")
    return found
