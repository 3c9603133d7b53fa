"""Running kubeadm/kubectl from airlock's modules, and writing private files atomically.

Kept apart from module_utils/kubeadm.py, which is pure and testable without Ansible.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

SEARCH_DIRS = ["/usr/local/bin", "/usr/bin"]
ERROR_TAIL = 3000


class Kubeadm:
    """A program (kubeadm, kubectl) run without a shell, with LC_ALL=C, failing clearly."""

    def __init__(self, module: Any, program: str) -> None:
        self.module = module
        self.path = module.get_bin_path(program, required=True, opt_dirs=SEARCH_DIRS)

    def run(
        self, args: list[str], what: str, check: bool = True, hint: str = ""
    ) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(
            [self.path, *args], environ_update={"LC_ALL": "C"}, check_rc=False
        )
        if rc != 0 and check:
            detail = (err or out).strip()[-ERROR_TAIL:]
            msg = f"{what} failed (exit {rc}): {detail}"
            self.module.fail_json(msg=msg + (f"; {hint}" if hint else ""), rc=rc)
        return rc, out, err


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
