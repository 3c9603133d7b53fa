# Copyright: airlock developers
# Apache-2.0
"""What airlock's etcd_* modules know about etcd, without running anything.

Parsing of etcdctl's ``-w json`` output (members, endpoint status and health) and of its
error text, member matching, the quorum rule for removals and small helpers. Pure and
testable without Ansible or etcd; module_utils/etcd_run.py runs etcdctl and hands its
output here (as module_utils/kubeadm.py and kubeadm_run.py split kubeadm).

etcdctl's JSON is a stable machine-readable form of the gRPC responses, so nothing here
scrapes human-readable tables. Member IDs arrive as decimal uint64 numbers in that JSON
and are turned into the hex form etcdctl's arguments expect. The JSON of ``member list``,
``member add``, ``endpoint status`` and ``endpoint health`` is the same in etcdctl 3.4
(Debian 12) and 3.6 (the offline bundle).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

_STATUS_FAILURE = re.compile(r"Failed to get the status of endpoint (\S+) \((.*)\)")
_ETCDCTL_VERSION = re.compile(r"etcdctl version:\s*(\d+)\.(\d+)")


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


def parse_version(out: str) -> tuple[int, int]:
    """etcdctl's (major, minor) from ``etcdctl version``; (0, 0) if unreadable."""
    match = _ETCDCTL_VERSION.search(out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def json_list(out: str) -> list[dict[str, Any]]:
    """etcdctl prints a JSON array for endpoint commands even when some endpoints failed."""
    out = out.strip()
    if not out:
        return []
    try:
        data = json.loads(out)
    except ValueError:
        return []
    return data if isinstance(data, list) else []
