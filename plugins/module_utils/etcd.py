# Copyright: airlock developers
# Apache-2.0
"""Shared etcd client code for the airlock.cluster etcd_* modules.

Everything goes through ``etcdctl`` (API v3) with ``-w json``: etcdctl is the one etcd
client that is installed wherever etcd is (Debian's etcd-client), it speaks gRPC with
TLS client certificates, and its JSON output is a stable machine-readable form of the
gRPC responses, so nothing here scrapes human-readable tables. Member IDs arrive as
decimal uint64 numbers in that JSON and are turned into the hex form etcdctl's
arguments expect.

Works with etcdctl 3.4 (Debian 12) and 3.6 (the offline bundle): the JSON of
``member list``, ``member add``, ``endpoint status`` and ``endpoint health`` is the same
in both. Offline snapshot work (``snapshot status``/``restore``) left etcdctl in 3.6 for
``etcdutl``: it is used whenever it is on PATH, else etcdctl if it still has them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible.module_utils.basic import AnsibleModule

#: Options every etcd_* module accepts to reach the cluster.
CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "endpoints": {"type": "list", "elements": "str", "default": []},
    "ca_cert": {"type": "path"},
    "client_cert": {"type": "path"},
    "client_key": {"type": "path", "no_log": False},
    "dial_timeout": {"type": "int", "default": 5},
    "command_timeout": {"type": "int", "default": 10},
}

_STATUS_FAILURE = re.compile(r"Failed to get the status of endpoint (\S+) \((.*)\)")
_ETCDCTL_VERSION = re.compile(r"etcdctl version:\s*(\d+)\.(\d+)")


class EtcdctlError(Exception):
    """etcdctl exited non-zero or printed something that is not the JSON we asked for."""

    def __init__(self, argv: list[str], rc: int, message: str) -> None:
        super().__init__(message)
        self.argv = argv
        self.rc = rc
        self.message = message


def error_text(stderr: str) -> str:
    """The useful part of etcdctl's stderr: its ``Error:`` line, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line[len("Error:") :].strip() for line in lines if line.startswith("Error:")]
    if errors:
        return errors[-1]
    panics = [line for line in lines if line.startswith("panic:")]
    if panics:
        return f"etcdctl crashed: {panics[0]}"
    plain = [line for line in lines if not line.startswith("{")]
    if plain:
        return plain[-1]
    return lines[-1] if lines else "no output"


def hex_id(member_id: int) -> str:
    """etcd prints member IDs as decimal uint64 in JSON; its arguments want hex."""
    return format(member_id, "x")


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


@dataclass
class Member:
    """One entry of ``etcdctl member list``."""

    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    is_learner: bool

    @property
    def hex_id(self) -> str:
        return hex_id(self.id)

    @property
    def started(self) -> bool:
        """An added member has no name and no client URLs until its etcd first runs."""
        return bool(self.name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = self.hex_id
        return data


def parse_members(data: dict[str, Any]) -> list[Member]:
    members = [
        Member(
            id=int(raw["ID"]),
            name=raw.get("name", ""),
            peer_urls=list(raw.get("peerURLs") or []),
            client_urls=list(raw.get("clientURLs") or []),
            is_learner=bool(raw.get("isLearner", False)),
        )
        for raw in data.get("members") or []
    ]
    return sorted(members, key=lambda m: (m.name or "~", m.peer_urls))


def find_member(
    members: Iterable[Member], peer_urls: Iterable[str] = (), name: str | None = None
) -> Member | None:
    """The member sharing a peer URL with ``peer_urls`` (preferred), else named ``name``."""
    wanted = {normalize_url(u) for u in peer_urls}
    members = list(members)
    if wanted:
        for member in members:
            if wanted & {normalize_url(u) for u in member.peer_urls}:
                return member
    if name:
        for member in members:
            if member.name == name:
                return member
    return None


def initial_cluster(members: Iterable[Member], names: dict[int, str] | None = None) -> str:
    """``--initial-cluster`` value for a member joining ``members``.

    ``names`` supplies names of members that were added but never started (etcd lists
    them without a name).
    """
    names = names or {}
    parts = []
    for member in members:
        name = member.name or names.get(member.id, "")
        parts.extend(f"{name}={url}" for url in member.peer_urls)
    return ",".join(parts)


@dataclass
class EndpointState:
    """What one endpoint says about itself (``endpoint status`` + ``endpoint health``)."""

    endpoint: str
    reachable: bool = False
    healthy: bool = False
    error: str | None = None
    member_id: str | None = None
    leader_id: str | None = None
    is_leader: bool = False
    is_learner: bool = False
    revision: int | None = None
    raft_index: int | None = None
    raft_term: int | None = None
    db_size: int | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_status(entries: list[dict[str, Any]]) -> dict[str, EndpointState]:
    states: dict[str, EndpointState] = {}
    for entry in entries:
        status = entry.get("Status") or {}
        header = status.get("header") or {}
        member_id = int(header.get("member_id", 0))
        leader = int(status.get("leader", 0))
        states[entry["Endpoint"]] = EndpointState(
            endpoint=entry["Endpoint"],
            reachable=True,
            member_id=hex_id(member_id),
            leader_id=hex_id(leader) if leader else None,
            is_leader=bool(leader) and leader == member_id,
            is_learner=bool(status.get("isLearner", False)),
            revision=int(header.get("revision", 0)),
            raft_index=int(status.get("raftIndex", 0)),
            raft_term=int(status.get("raftTerm", 0)),
            db_size=int(status.get("dbSize", 0)),
            version=status.get("version"),
        )
    return states


def status_failures(stderr: str) -> dict[str, str]:
    """Per-endpoint reasons etcdctl prints for endpoints whose status it could not get."""
    return {m.group(1): m.group(2) for m in _STATUS_FAILURE.finditer(stderr)}


@dataclass
class ClusterHealth:
    """Summary over a set of endpoints."""

    endpoints: list[EndpointState] = field(default_factory=list)

    @property
    def leaders(self) -> set[str]:
        return {s.leader_id for s in self.endpoints if s.reachable and s.leader_id}

    @property
    def unhealthy(self) -> list[EndpointState]:
        return [s for s in self.endpoints if not s.healthy]

    @property
    def healthy(self) -> bool:
        """Every endpoint healthy and all of them agree on one leader."""
        return bool(self.endpoints) and not self.unhealthy and len(self.leaders) == 1

    def problems(self) -> list[str]:
        problems = [f"{s.endpoint}: {s.error or 'not healthy'}" for s in self.unhealthy]
        if len(self.leaders) > 1:
            problems.append(f"endpoints disagree about the leader: {sorted(self.leaders)}")
        elif not self.leaders and self.endpoints:
            problems.append("no endpoint reports a leader")
        return problems

    def to_dict(self) -> dict[str, Any]:
        leader = next((s for s in self.endpoints if s.is_leader), None)
        return {
            "healthy": self.healthy,
            "endpoints": [s.to_dict() for s in self.endpoints],
            "leader": leader.member_id if leader else None,
            "leader_endpoint": leader.endpoint if leader else None,
            "healthy_count": len([s for s in self.endpoints if s.healthy]),
            "problems": self.problems(),
        }


def removal_blocker(members: list[Member], healthy_ids: set[int], target: Member) -> str | None:
    """Why removing ``target`` would hurt the cluster, or None when it is safe.

    Learners never count towards quorum. A voting member may be removed only if the
    members left behind still have a healthy quorum of their own.
    """
    if target.is_learner:
        return None
    voters = [m for m in members if not m.is_learner]
    label = target.name or target.hex_id
    if len(voters) == 1:
        return f"member {label} is the only voting member; removing it would destroy the cluster"
    healthy_voters = {m.id for m in voters if m.id in healthy_ids}
    if healthy_voters == {target.id}:
        return f"member {label} is the only healthy member; removing it would leave no quorum"
    remaining = len(voters) - 1
    remaining_healthy = len(healthy_voters - {target.id})
    needed = remaining // 2 + 1
    if remaining_healthy < needed:
        return (
            f"removing {label} leaves {remaining_healthy} healthy of {remaining} voting "
            f"members, but quorum needs {needed}; bring the unhealthy members back first"
        )
    return None


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wait_until(
    probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, interval: float = 1.0
) -> tuple[bool, Any]:
    """Call ``probe`` until ``done(result)`` or the deadline; returns (done, last result)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return True, result
        if time.monotonic() + interval > deadline:
            return False, result
        time.sleep(interval)


class Etcdctl:
    """Runs etcdctl for a module: found on PATH, LC_ALL=C, ETCDCTL_API=3, argv only."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.binary = module.get_bin_path("etcdctl", required=True)
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
        argv = [binary or self.binary, *args]
        return self.module.run_command(
            argv, environ_update={"LC_ALL": "C", "ETCDCTL_API": "3"}, check_rc=False
        )

    def version(self) -> tuple[int, int]:
        """etcdctl's (major, minor), from ``etcdctl version``; (0, 0) if unreadable."""
        _rc, out, _err = self.execute(["version"])
        match = _ETCDCTL_VERSION.search(out)
        return (int(match.group(1)), int(match.group(2))) if match else (0, 0)

    def offline_tool(self, action: str) -> str:
        """The program for offline snapshot work: etcdutl if present, else etcdctl < 3.6."""
        etcdutl = self.module.get_bin_path("etcdutl")
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
        states = parse_status(_json_list(out))
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
            probes = {p.get("endpoint"): p for p in _json_list(out)}
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


def _json_list(out: str) -> list[dict[str, Any]]:
    """etcdctl prints a JSON array for endpoint commands even when some endpoints failed."""
    out = out.strip()
    if not out:
        return []
    try:
        data = json.loads(out)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def fail_etcdctl(module: AnsibleModule, action: str, exc: EtcdctlError, **extra: Any) -> None:
    module.fail_json(
        msg=f"{action} failed: {exc.message}",
        rc=exc.rc,
        cmd=" ".join(exc.argv),
        **extra,
    )
