# Copyright: airlock developers
# Apache-2.0
"""Running the ``ceph`` and ``rbd`` CLIs for the airlock.cluster ceph_* modules.

Both come with Debian's ceph-common, wherever a Ceph client is. They run through
module_utils/command.py (argv only, LC_ALL=C), with the connection options every ceph_*
module takes (``--cluster``, ``--conf``, ``--name``, ``--keyring`` and a connect timeout)
and ``--format json``; their output is parsed by the pure module_utils/ceph.py.

A failure becomes one line naming the command and the cause, with what to do when the
cause is a usual one: a timeout names the conf and its monitors, a missing keyring the
places Ceph looked, a refusal the admin keyring.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.ceph import (
    Failure,
    mon_host_from_conf,
    parse_failure,
)
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command, find_program

#: Options every ceph_* module accepts to reach the cluster (doc fragment airlock.cluster.ceph).
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "cluster": {"type": "str", "default": "ceph"},
    "conf": {"type": "path"},
    "user": {"type": "str", "default": "client.admin"},
    "keyring": {"type": "path", "no_log": False},
    "connect_timeout": {"type": "int", "default": 10},
}

_TIMEOUT_ERRNO = 110
_DENIED_ERRNO = 13
_NOT_FOUND_ERRNO = 2


class CephError(Exception):
    """A ceph or rbd run failed; ``message`` is the one line a user reads."""

    def __init__(self, command: str, message: str, failure: Failure | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.message = message
        self.failure = failure

    @property
    def errno(self) -> int | None:
        return self.failure.errno if self.failure else None


@dataclass
class Connection:
    """Where and as whom the CLIs connect (the CONNECTION_ARGUMENT_SPEC options)."""

    cluster: str
    conf: str
    user: str
    keyring: str | None
    connect_timeout: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Connection:
        cluster = params.get("cluster") or "ceph"
        return cls(
            cluster=cluster,
            conf=params.get("conf") or f"/etc/ceph/{cluster}.conf",
            user=params.get("user") or "client.admin",
            keyring=params.get("keyring"),
            connect_timeout=params.get("connect_timeout") or 10,
        )

    def problem(self) -> str | None:
        """What makes connecting hopeless before trying (a missing file), or None."""
        if not os.path.isfile(self.conf):
            return (
                f"conf {self.conf} does not exist: set conf to the ceph.conf of cluster "
                f"{self.cluster} (it names the monitors)"
            )
        if self.keyring and not os.path.isfile(self.keyring):
            return (
                f"keyring {self.keyring} does not exist: set keyring to the keyring of {self.user}"
            )
        return None

    def common_args(self) -> list[str]:
        args = ["--cluster", self.cluster, "--conf", self.conf, "--name", self.user]
        return args + ([f"--keyring={self.keyring}"] if self.keyring else [])

    def ceph_args(self) -> list[str]:
        return [*self.common_args(), "--connect-timeout", str(self.connect_timeout)]

    def rbd_args(self) -> list[str]:
        # rbd has no --connect-timeout: client_mount_timeout is the same limit in librados.
        return [*self.common_args(), f"--client_mount_timeout={self.connect_timeout}"]

    def mon_host(self) -> str:
        try:
            with open(self.conf, encoding="utf-8", errors="replace") as handle:
                return mon_host_from_conf(handle.read()) or "no mon host in it"
        except OSError as exc:
            return f"unreadable: {exc.strerror}"

    def admin_hint(self) -> str:
        return (
            f"use the admin keyring (user=client.admin, "
            f"keyring=/etc/ceph/{self.cluster}.client.admin.keyring)"
        )

    def explain(self, command: str, failure: Failure) -> str:
        """One line: the command, the cause and, for the usual causes, what to do."""
        text = failure.text
        if failure.errno == _TIMEOUT_ERRNO or "timed out" in text.lower():
            return (
                f"{command}: no answer from the monitors of cluster {self.cluster} within "
                f"{self.connect_timeout}s (conf {self.conf}, mon host {self.mon_host()}); "
                "check that the monitors run and that this host reaches them"
            )
        # Ceph may log a keyring it did not find and still connect with another one:
        # only a failure that is no refusal is about the keyring.
        if failure.keyring_paths and failure.errno != _DENIED_ERRNO:
            return (
                f"{command}: no keyring for {self.user} (Ceph looked in "
                f"{failure.keyring_paths}); set keyring to the keyring file of {self.user}"
            )
        # Ceph logs the keyring it did not find from its log thread, which a short-lived
        # `ceph` may exit before flushing (seen on a loaded machine): without that line, no
        # keyring given and ENOENT while connecting is the same cause.
        if failure.errno == _NOT_FOUND_ERRNO and not self.keyring and "connecting" in text:
            return (
                f"{command}: no keyring for {self.user} (Ceph looked in the conf's keyring "
                f"setting and its default places, /etc/ceph/{self.cluster}.{self.user}.keyring "
                f"first); set keyring to the keyring file of {self.user}"
            )
        if failure.errno == _DENIED_ERRNO:
            return f"{command}: (13) Permission denied as {self.user} ({text}); {self.admin_hint()}"
        prefix = f"({failure.errno}) " if failure.errno is not None else ""
        return f"{command}: {prefix}{text}"


class Ceph:
    """Runs ``ceph`` and ``rbd`` for a module: argv only, LC_ALL=C, JSON output."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.conn = Connection.from_params(module.params)
        self.ceph = Command(module, self._require("ceph"))
        problem = self.conn.problem()
        if problem:
            module.fail_json(msg=problem)
        self._rbd: Command | None = None

    def _require(self, program: str) -> str:
        path = find_program(self.module, program, required=False)
        if not path:
            self.module.fail_json(msg=f"{program} not found on PATH: install ceph-common")
        return path  # type: ignore[return-value]

    def _run(self, command: Command, program: str, args: list[str], extra: list[str]) -> str:
        """Run ``program <connection args> <args> <extra>``; a failure names ``program args``."""
        conn_args = self.conn.rbd_args() if program == "rbd" else self.conn.ceph_args()
        rc, out, err = command.run([*conn_args, *args, *extra])
        if rc != 0:
            what = " ".join([program, *args])
            failure = parse_failure(err, out)
            raise CephError(what, self.conn.explain(what, failure), failure)
        return out

    def text(self, args: list[str]) -> str:
        """Run ``ceph <args>``; its plain output. Raises CephError."""
        return self._run(self.ceph, "ceph", args, [])

    def call(self, args: list[str]) -> Any:
        """Run ``ceph <args> --format json``; the parsed JSON (None for no output)."""
        out = self._run(self.ceph, "ceph", args, ["--format", "json"])
        try:
            return json.loads(out) if out.strip() else None
        except ValueError:
            what = f"ceph {' '.join(args)}"
            raise CephError(what, f"{what}: printed no JSON: {out[:200]!r}") from None

    def rbd(self, args: list[str]) -> str:
        """Run ``rbd <args>``; its output. Raises CephError."""
        if self._rbd is None:
            self._rbd = Command(self.module, self._require("rbd"))
        return self._run(self._rbd, "rbd", args, [])


def fail_ceph(module: AnsibleModule, exc: CephError, **extra: Any) -> None:
    """Fail the module with the error's one line (and the command that failed)."""
    module.fail_json(msg=exc.message, cmd=exc.command, **extra)
