# Copyright: airlock developers
# Apache-2.0
"""The one way airlock's modules run a program (etcdctl, kubeadm, kubectl, ctr, ip).

A program is found once (a bare name on PATH and any extra directories; a path as given),
run with an argument list and never through a shell, with ``LC_ALL=C`` plus whatever
environment the program needs, and its exit code is checked in one place: with ``what``,
a non-zero exit fails the module with "<what> failed (exit N): <the end of its stderr>".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: How much of a failed program's output a failure message carries (its end).
ERROR_TAIL = 3000


def find_program(
    module: Any, program: str, opt_dirs: Iterable[str] = (), required: bool = True
) -> str | None:
    """``program`` itself when it is a path, else its location on PATH or in ``opt_dirs``.

    With ``required`` a missing program fails the module; otherwise it is None.
    """
    if "/" in program:
        return program
    return module.get_bin_path(program, required=required, opt_dirs=list(opt_dirs))


class Command:
    """A program run for a module: argv only, LC_ALL=C, one exit-code check."""

    def __init__(
        self,
        module: Any,
        program: str,
        *,
        opt_dirs: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        base_args: Iterable[str] = (),
    ) -> None:
        self.module = module
        self.path: str = find_program(module, program, opt_dirs)  # type: ignore[assignment]
        self.env = {"LC_ALL": "C", **(env or {})}
        self.base_args = list(base_args)

    def argv(self, args: Iterable[str]) -> list[str]:
        """The full command line: the program, its global arguments, then ``args``."""
        return [self.path, *self.base_args, *args]

    def run(self, args: Iterable[str], what: str = "", hint: str = "") -> tuple[int, str, str]:
        """Run the program; returns (rc, stdout, stderr).

        With ``what`` a non-zero exit fails the module instead, naming ``what``, the exit
        code and the end of stderr (stdout when stderr is empty), then ``hint``.
        """
        rc, out, err = self.module.run_command(
            self.argv(args), environ_update=self.env, check_rc=False
        )
        if rc != 0 and what:
            detail = (err or out).strip()[-ERROR_TAIL:]
            msg = f"{what} failed (exit {rc}): {detail}"
            self.module.fail_json(msg=msg + (f"; {hint}" if hint else ""), rc=rc)
        return rc, out, err
