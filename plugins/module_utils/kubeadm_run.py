"""Running kubeadm/kubectl from airlock's modules, and writing private files atomically.

Kept apart from module_utils/kubeadm.py, which is pure and testable without Ansible; the
programs run through module_utils/command.py like every other module's.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ansible_collections.airlock.cluster.plugins.module_utils.command import Command

#: Where a bundle install puts kubeadm and kubectl, besides PATH.
SEARCH_DIRS = ["/usr/local/bin", "/usr/bin"]


class Kubeadm(Command):
    """kubeadm or kubectl (a path, or a name on PATH, /usr/local/bin or /usr/bin).

    ``run(args, what=...)`` fails the module with a clear message on a non-zero exit;
    without ``what`` the caller reads the exit code itself.
    """

    def __init__(self, module: Any, program: str) -> None:
        super().__init__(module, program, opt_dirs=SEARCH_DIRS)


def write_private(module: Any, path: str, content: str) -> bool:
    """Write `content` to `path` with mode 0600 (atomically); True when it changed."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                os.chmod(path, 0o600)
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".airlock-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(tmp, 0o600)
    module.atomic_move(tmp, path)
    return True
