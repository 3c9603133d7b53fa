# Copyright: airlock developers
# Apache-2.0
"""Running etcdctl (and etcdutl) for the airlock.cluster etcd_* modules.

Everything goes through ``etcdctl`` (API v3) with ``-w json``: etcdctl is the one etcd
client that is installed wherever etcd is (Debian's etcd-client) and it speaks gRPC with
TLS client certificates. It runs through module_utils/command.py (argv only, LC_ALL=C)
with ETCDCTL_API=3; its output is parsed by the pure module_utils/etcd.py.

Offline snapshot work (``snapshot status``/``restore``) left etcdctl in 3.6 for
``etcdutl``: it is used whenever it is on PATH, else etcdctl if it still has them.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command, find_program
from ansible_collections.airlock.cluster.plugins.module_utils.etcd import (
    ClusterHealth,
    EndpointState,
    Member,
    error_text,
    json_list,
    parse_members,
    parse_status,
    parse_version,
    status_failures,
)

#: The environment etcdctl and etcdutl run with (besides LC_ALL=C).
ETCDCTL_ENV = {"ETCDCTL_API": "3"}

#: Options every etcd_* module accepts to reach the cluster.
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "endpoints": {"type": "list", "elements": "str", "default": []},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path", "no_log": False},
    "dial_timeout": {"type": "int", "default": 5},
    "command_timeout": {"type": "int", "default": 10},
}


class EtcdctlError(Exception):
    """etcdctl exited non-zero or printed something that is not the JSON we asked for."""

    def __init__(self, argv: list[str], rc: int, message: str) -> None:
        super().__init__(message)
        self.argv = argv
        self.rc = rc
        self.message = message


class Etcdctl:
    """Runs etcdctl for a module: found on PATH, LC_ALL=C, ETCDCTL_API=3, argv only."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.command = Command(module, "etcdctl", env=ETCDCTL_ENV)
        self.binary = self.command.path
        params = module.params
        self.endpoints: list[str] = list(params.get("endpoints") or [])
        self.ca_cert: str | None = params.get("ca_cert")
        self.client_cert: str | None = params.get("client_cert")
        self.client_key: str | None = params.get("client_key")
        self.dial_timeout: int = params.get("dial_timeout") or 5
        self.command_timeout: int = params.get("command_timeout") or 10

    def connection_args(self, endpoints: list[str] | None = None) -> list[str]:
        eps = self.endpoints if endpoints is None else endpoints
        if not eps:
            self.module.fail_json(msg="endpoints is empty: give at least one etcd client URL")
        args = [
            f"--endpoints={','.join(eps)}",
            f"--dial-timeout={self.dial_timeout}s",
            f"--command-timeout={self.command_timeout}s",
        ]
        for flag, value in (
            ("--cacert", self.ca_cert),
            ("--cert", self.client_cert),
            ("--key", self.client_key),
        ):
            if value:
                args.append(f"{flag}={value}")
        return args

    def execute(self, args: list[str], binary: str | None = None) -> tuple[int, str, str]:
        """Run etcdctl (or ``binary``, e.g. etcdutl, with the same environment)."""
        command = self.command if binary is None else Command(self.module, binary, env=ETCDCTL_ENV)
        return command.run(args)

    def version(self) -> tuple[int, int]:
        """etcdctl's (major, minor), from ``etcdctl version``; (0, 0) if unreadable."""
        _rc, out, _err = self.execute(["version"])
        return parse_version(out)

    def offline_tool(self, action: str) -> str:
        """The program for offline snapshot work: etcdutl if present, else etcdctl < 3.6."""
        etcdutl = find_program(self.module, "etcdutl", required=False)
        if etcdutl:
            return etcdutl
        major, minor = self.version()
        if (major, minor) >= (3, 6):
            raise EtcdctlError(
                [self.binary, "snapshot", action],
                1,
                f"etcdctl {major}.{minor} has no `snapshot {action}` (etcd 3.6 moved it to "
                "etcdutl); put etcdutl of the same etcd release on PATH",
            )
        return self.binary

    def run_plain(self, args: list[str], endpoints: list[str] | None = None) -> None:
        """Run an etcdctl command whose output is not needed; raise on failure."""
        full = [*self.connection_args(endpoints), *args]
        rc, _out, err = self.execute(full)
        if rc != 0:
            raise EtcdctlError(full, rc, error_text(err))

    def call(self, args: list[str], endpoints: list[str] | None = None) -> Any:
        """Run ``etcdctl <args> -w json`` and return the parsed JSON; raise on failure."""
        full = [*self.connection_args(endpoints), *args, "-w", "json"]
        rc, out, err = self.execute(full)
        if rc != 0:
            raise EtcdctlError(full, rc, error_text(err))
        try:
            return json.loads(out) if out.strip() else None
        except ValueError as exc:
            raise EtcdctlError(full, rc, f"etcdctl printed no JSON: {out[:200]!r}") from exc

    # --- membership -------------------------------------------------------------------
    def member_list(self) -> list[Member]:
        return parse_members(self.call(["member", "list"]))

    def member_add(self, name: str, peer_urls: list[str], learner: bool) -> tuple[Member, list]:
        args = ["member", "add", name, f"--peer-urls={','.join(peer_urls)}"]
        if learner:
            args.append("--learner")
        data = self.call(args)
        added = parse_members({"members": [data["member"]]})[0]
        return added, parse_members(data)

    def member_promote(self, member: Member) -> None:
        # etcdctl 3.4 panics printing `member promote -w json`; its answer carries nothing
        # we need, so this one call runs without JSON output and only checks the exit code.
        self.run_plain(["member", "promote", member.hex_id])

    def member_remove(self, member: Member) -> None:
        self.call(["member", "remove", member.hex_id])

    # --- health -----------------------------------------------------------------------
    def cluster_health(self, endpoints: list[str] | None = None) -> ClusterHealth:
        """Status of every endpoint, then a health probe (a quorum read) on the voters.

        Learners refuse client reads, so a reachable learner counts as healthy.
        """
        eps = self.endpoints if endpoints is None else endpoints
        args = [*self.connection_args(eps), "endpoint", "status", "-w", "json"]
        _rc, out, err = self.execute(args)
        states = parse_status(json_list(out))
        failures = status_failures(err)
        ordered = [
            states.get(ep) or EndpointState(endpoint=ep, error=failures.get(ep) or error_text(err))
            for ep in eps
        ]
        voters = [s.endpoint for s in ordered if s.reachable and not s.is_learner]
        if voters:
            _rc, out, err = self.execute(
                [*self.connection_args(voters), "endpoint", "health", "-w", "json"]
            )
            probes = {p.get("endpoint"): p for p in json_list(out)}
            for state in ordered:
                probe = probes.get(state.endpoint)
                if probe is not None:
                    state.healthy = bool(probe.get("health"))
                    state.error = None if state.healthy else probe.get("error")
        for state in ordered:
            if state.reachable and state.is_learner:
                state.healthy = True
        return ClusterHealth(endpoints=ordered)

    # --- snapshots --------------------------------------------------------------------
    def snapshot_save(self, endpoint: str, path: str) -> None:
        args = [*self.connection_args([endpoint]), "snapshot", "save", path]
        rc, _out, err = self.execute(args)
        if rc != 0:
            raise EtcdctlError(args, rc, error_text(err))

    def snapshot_status(self, path: str) -> dict[str, Any]:
        tool = self.offline_tool("status")
        args = ["snapshot", "status", path, "-w", "json"]
        rc, out, err = self.execute(args, binary=tool)
        if rc != 0:
            raise EtcdctlError([tool, *args], rc, error_text(err))
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise EtcdctlError([tool, *args], rc, f"no JSON from {tool}: {out[:200]!r}") from exc
        return {
            "hash": data.get("hash"),
            "revision": data.get("revision"),
            "total_keys": data.get("totalKey"),
            "total_size": data.get("totalSize"),
        }

    def snapshot_restore(
        self,
        path: str,
        data_dir: str,
        name: str,
        cluster: str,
        token: str,
        peer_urls: list[str],
        skip_hash_check: bool,
    ) -> None:
        args = [
            "snapshot",
            "restore",
            path,
            f"--data-dir={data_dir}",
            f"--name={name}",
            f"--initial-cluster={cluster}",
            f"--initial-cluster-token={token}",
            f"--initial-advertise-peer-urls={','.join(peer_urls)}",
        ]
        if skip_hash_check:
            args.append("--skip-hash-check")
        tool = self.offline_tool("restore")
        rc, _out, err = self.execute(args, binary=tool)
        if rc != 0:
            raise EtcdctlError([tool, *args], rc, error_text(err))


def fail_etcdctl(module: AnsibleModule, action: str, exc: EtcdctlError, **extra: Any) -> None:
    module.fail_json(
        msg=f"{action} failed: {exc.message}",
        rc=exc.rc,
        cmd=" ".join(exc.argv),
        **extra,
    )
