"""`airlock status`: how the cluster is, from one read-only run of playbooks/status.yml.

The playbook reads, on every host, what only that host can say (its services, its etcd
member, the VIP on its interfaces, haproxy's view of the apiservers, its apiserver's
readiness, its certificates, the bundle it was deployed from), and on the first
control-plane and Ceph hosts still answering, the nodes, the pods and Ceph's health. This
module turns the run's events into a `Status` (its `problems` say, one line each, what is
unhealthy and where), the screen and `--json`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# Task names of playbooks/status.yml: keep them equal.
SETTINGS = "Status: the cluster's settings"
BUNDLE = "Status: the bundle this host was deployed from"
UNITS = "Status: airlock's services on this host"
ETCD = "Status: this etcd member"
ADDRESSES = "Status: the addresses of this load balancer"
HAPROXY = "Status: haproxy's view of the apiservers"
READYZ = "Status: this apiserver's readiness"
KUBE = "Status: the nodes and the system pods"
CEPH = "Status: Ceph's health"
CERTS = "Status: this host's certificates"
# Pods of these namespaces are the platform's own (what airlock deploys).
SYSTEM_NAMESPACES = ("kube-system", "kube-flannel", "ceph-csi-rbd", "airlock-monitoring")
BACKEND = "kube_apiserver"


@dataclass
class Member:
    host: str
    healthy: bool
    leader: bool = False
    db_size: int = 0
    version: str = ""
    error: str = ""


@dataclass
class Node:
    name: str
    ready: bool
    version: str
    roles: str
    reason: str = ""


@dataclass
class Pod:
    namespace: str
    name: str
    node: str
    phase: str
    ready: bool
    restarts: int


@dataclass
class Cert:
    host: str
    path: str
    not_after: str
    days_left: int


@dataclass
class Status:
    vip: str = ""
    vip_holders: list[str] = field(default_factory=list)
    backends: dict[str, dict[str, str]] = field(default_factory=dict)  # lb -> server -> state
    apiservers: dict[str, str] = field(default_factory=dict)  # host -> "ok" or why not
    api_reader: str = ""
    api_error: str = ""
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    units: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> unit -> state
    bundles: dict[str, str] = field(default_factory=dict)  # host -> "profile kube_version"
    ceph: str = ""
    ceph_detail: str = ""
    earliest_cert: Cert | None = None
    cert_days: int = 30
    expiring: list[Cert] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def from_events(events: Iterable[Mapping[str, Any]], failures: Iterable[Any] = ()) -> Status:
    """The Status of one run of playbooks/status.yml (its events and its failures)."""
    status = Status()
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok":
            continue
        res = data.get("res") or {}
        if res.get("skipped"):
            continue
        _READERS.get(str(data.get("task")), _ignore)(status, str(data.get("host")), res)
    for failure in failures:
        why = failure.message if failure.unreachable else f"{failure.task}: {failure.message}"
        status.unreachable[failure.host] = why
    status.problems = problems(status)
    return status


def _ignore(status: Status, host: str, res: Mapping[str, Any]) -> None:
    return None


def _settings(status: Status, host: str, res: Mapping[str, Any]) -> None:
    msg = res.get("msg") or {}
    status.vip = str(msg.get("vip") or "")
    status.cert_days = int(msg.get("cert_days") or 30)


def _bundle(status: Status, host: str, res: Mapping[str, Any]) -> None:
    if not res.get("content"):
        status.bundles[host] = ""
        return
    doc = json.loads(base64.b64decode(res["content"]))
    bundle = doc.get("bundle") or {}
    status.bundles[host] = f"{bundle.get('profile') or '?'} {bundle.get('kube_version') or '?'}"


def _units(status: Status, host: str, res: Mapping[str, Any]) -> None:
    """`systemctl show` of several units: one block of properties per unit."""
    for block in str(res.get("stdout", "")).split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if not props.get("Id"):
            continue
        if props.get("LoadState") == "not-found":
            state = "not installed"
        else:
            state = props.get("ActiveState", "unknown")
            if state == "active" and props.get("SubState") not in (None, "running"):
                state = f"active ({props['SubState']})"
        status.units.setdefault(host, {})[props["Id"].removesuffix(".service")] = state


def _etcd(status: Status, host: str, res: Mapping[str, Any]) -> None:
    endpoint = (res.get("endpoints") or [{}])[0]
    status.members.append(
        Member(
            host=host,
            healthy=bool(endpoint.get("healthy")),
            leader=bool(endpoint.get("is_leader")),
            db_size=int(endpoint.get("db_size") or 0),
            version=str(endpoint.get("version") or ""),
            error=str(endpoint.get("error") or ""),
        )
    )


def _addresses(status: Status, host: str, res: Mapping[str, Any]) -> None:
    if status.vip and any(
        part.split("/")[0] == status.vip
        for line in str(res.get("stdout", "")).splitlines()
        for part in line.split()
    ):
        status.vip_holders.append(host)


def _haproxy(status: Status, host: str, res: Mapping[str, Any]) -> None:
    if res.get("status") != 200:
        status.backends[host] = {"(stats)": f"unreadable: {res.get('msg', '')}".strip()}
        return
    rows = csv.DictReader(io.StringIO(str(res.get("content", "")).lstrip("# ")))
    servers = {
        row["svname"]: row["status"]
        for row in rows
        if row.get("pxname") == BACKEND and row.get("svname") not in ("FRONTEND", "BACKEND")
    }
    status.backends[host] = servers


def _readyz(status: Status, host: str, res: Mapping[str, Any]) -> None:
    if res.get("status") == 200:
        status.apiservers[host] = "ok"
    else:
        body = str(res.get("content") or res.get("msg") or "").strip().splitlines()
        status.apiservers[host] = f"HTTP {res.get('status')}: {body[-1] if body else ''}".strip()


def _kube(status: Status, host: str, res: Mapping[str, Any]) -> None:
    status.api_reader = host
    if not res:
        status.api_error = f"the answer of kubectl on {host} was too large to be recorded"
        return
    if res.get("rc") != 0:
        lines = str(res.get("stderr") or res.get("msg") or "").strip().splitlines()
        status.api_error = lines[-1] if lines else f"kubectl exit code {res.get('rc')}"
        return
    for item in json.loads(res.get("stdout") or "{}").get("items") or []:
        if item.get("kind") == "Node":
            status.nodes.append(_node(item))
        elif item.get("kind") == "Pod" and item["metadata"].get("namespace") in SYSTEM_NAMESPACES:
            status.pods.append(_pod(item))


def _node(item: Mapping[str, Any]) -> Node:
    meta = item.get("metadata") or {}
    ready = next(
        (c for c in item.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"),
        {},
    )
    roles = sorted(
        key.split("/", 1)[1]
        for key in (meta.get("labels") or {})
        if key.startswith("node-role.kubernetes.io/")
    )
    return Node(
        name=str(meta.get("name")),
        ready=ready.get("status") == "True",
        version=str(item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
        roles=",".join(roles) or "worker",
        reason="" if ready.get("status") == "True" else str(ready.get("reason") or "no status"),
    )


def _pod(item: Mapping[str, Any]) -> Pod:
    meta, spec, st = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    containers = st.get("containerStatuses") or []
    return Pod(
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        node=str(spec.get("nodeName") or ""),
        phase=str(st.get("phase") or "Unknown"),
        ready=bool(containers) and all(c.get("ready") for c in containers),
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
    )


def _ceph(status: Status, host: str, res: Mapping[str, Any]) -> None:
    if res.get("rc") != 0:
        lines = str(res.get("stderr") or res.get("msg") or "").strip().splitlines()
        status.ceph = "unreadable"
        status.ceph_detail = lines[-1] if lines else f"exit code {res.get('rc')}"
        return
    doc = json.loads(res.get("stdout") or "{}")
    status.ceph = str(doc.get("status") or "unknown")
    checks = doc.get("checks") or {}
    status.ceph_detail = "; ".join(
        f"{name}: {(check.get('summary') or {}).get('message', '')}"
        for name, check in sorted(checks.items())
    )


def _certs(status: Status, host: str, res: Mapping[str, Any]) -> None:
    for cert in res.get("certificates") or []:
        found = Cert(host, str(cert["path"]), str(cert["not_after"]), int(cert["days_left"]))
        if status.earliest_cert is None or found.not_after < status.earliest_cert.not_after:
            status.earliest_cert = found
        if cert.get("expiring"):
            status.expiring.append(found)


_READERS = {
    SETTINGS: _settings,
    BUNDLE: _bundle,
    UNITS: _units,
    ETCD: _etcd,
    ADDRESSES: _addresses,
    HAPROXY: _haproxy,
    READYZ: _readyz,
    KUBE: _kube,
    CEPH: _ceph,
    CERTS: _certs,
}


def problems(status: Status) -> list[str]:
    """One line per thing that is not healthy: where, what, and what to do."""
    found = [
        f"{host}: could not be read ({message}); `airlock check -i INVENTORY --limit {host}`"
        for host, message in sorted(status.unreachable.items())
    ]
    for host, units in sorted(status.units.items()):
        found += [
            f"{host}: {unit} is {state}; `systemctl status {unit}` on {host}"
            for unit, state in sorted(units.items())
            if state != "active"
        ]
    found += _etcd_problems(status.members)
    found += _lb_problems(status)
    found += [
        f"{host}: its apiserver is not ready ({why})"
        for host, why in sorted(status.apiservers.items())
        if why != "ok"
    ]
    found += _kube_problems(status)
    if status.ceph and status.ceph != "HEALTH_OK":
        found.append(
            f"Ceph: {status.ceph}{': ' + status.ceph_detail if status.ceph_detail else ''}"
        )
    found += [
        f"{c.host}: {c.path} expires in {c.days_left} days ({c.not_after}); "
        "`airlock certs renew -i INVENTORY`"
        for c in status.expiring
    ]
    found += _bundle_problems(status.bundles)
    return found


def _etcd_problems(members: list[Member]) -> list[str]:
    found = [
        f"etcd member {m.host} is not healthy: {m.error or 'no quorum read'}"
        for m in members
        if not m.healthy
    ]
    if members and not any(m.leader for m in members if m.healthy):
        found.append("etcd has no leader among its healthy members")
    return found


def _lb_problems(status: Status) -> list[str]:
    found = []
    if status.vip and len(status.vip_holders) != 1:
        holders = ", ".join(status.vip_holders) or "no load balancer"
        found.append(f"the VIP {status.vip} is held by {holders} (exactly one must hold it)")
    for lb, servers in sorted(status.backends.items()):
        found += [
            f"{lb}: haproxy sees apiserver {server} {state}"
            for server, state in sorted(servers.items())
            if not state.startswith("UP")
        ]
    return found


def _kube_problems(status: Status) -> list[str]:
    if status.api_error:
        return [f"the API did not answer kubectl on {status.api_reader}: {status.api_error}"]
    if not status.api_reader and status.apiservers:
        return ["no control-plane host answered: the nodes and pods could not be read"]
    found = [f"node {n.name} is NotReady ({n.reason})" for n in status.nodes if not n.ready]
    found += [
        f"pod {p.namespace}/{p.name} on {p.node or 'no node'} is {p.phase}"
        f"{'' if p.ready else ', not ready'} ({p.restarts} restarts)"
        for p in status.pods
        if not (p.phase == "Succeeded" or (p.phase == "Running" and p.ready))
    ]
    return found


def _bundle_problems(bundles: Mapping[str, str]) -> list[str]:
    found = [
        f"{host}: no artifact map (was it deployed?); `airlock deploy -i INVENTORY`"
        for host, bundle in sorted(bundles.items())
        if not bundle
    ]
    deployed = sorted({b for b in bundles.values() if b})
    if len(deployed) > 1:
        where = [
            f"{b}: {', '.join(h for h, x in sorted(bundles.items()) if x == b)}" for b in deployed
        ]
        found.append("hosts run different bundles: " + "; ".join(where))
    return found


def render(status: Status) -> str:
    """The one screen."""
    lines = []
    if status.nodes:
        lines.append(f"Nodes ({sum(n.ready for n in status.nodes)}/{len(status.nodes)} Ready)")
        lines += [
            f"  {n.name:<14} {'Ready' if n.ready else 'NotReady':<9} {n.version:<10} {n.roles}"
            for n in sorted(status.nodes, key=lambda n: n.name)
        ]
    elif status.api_error or status.apiservers:
        lines.append(f"Nodes: unknown ({status.api_error or 'no control-plane host answered'})")
    if status.pods:
        running = sum(p.phase == "Running" and p.ready for p in status.pods)
        lines.append(f"System pods: {running}/{len(status.pods)} running and ready")
    if status.apiservers:
        lines.append(
            "Apiservers: " + ", ".join(f"{h} {s}" for h, s in sorted(status.apiservers.items()))
        )
    if status.members:
        lines.append("etcd")
        lines += [
            f"  {m.host:<14} {'healthy' if m.healthy else 'UNHEALTHY':<9} "
            f"{'leader' if m.leader else '':<6} {_size(m.db_size):>9}  {m.version or m.error}"
            for m in sorted(status.members, key=lambda m: m.host)
        ]
    if status.vip:
        holder = ", ".join(status.vip_holders) or "nobody"
        lines.append(f"VIP {status.vip}: held by {holder}")
    for lb, servers in sorted(status.backends.items()):
        lines.append(
            f"  haproxy on {lb}: " + ", ".join(f"{s} {st}" for s, st in sorted(servers.items()))
        )
    if status.ceph:
        lines.append(f"Ceph: {status.ceph}")
    if status.earliest_cert:
        c = status.earliest_cert
        lines.append(
            f"Earliest certificate expiry: {c.not_after} ({c.days_left} days), {c.host}:{c.path}"
        )
    deployed = sorted({b for b in status.bundles.values() if b})
    if deployed:
        lines.append(f"Bundle deployed: {', '.join(deployed)}")
    services = sum(len(u) for u in status.units.values())
    down = sum(state != "active" for u in status.units.values() for state in u.values())
    lines.append(f"Services: {services - down}/{services} active on {len(status.units)} hosts")
    if status.problems:
        lines.append(f"UNHEALTHY: {len(status.problems)} problem(s)")
        lines += [f"  - {p}" for p in status.problems]
    else:
        lines.append("healthy")
    return "\n".join(lines)


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size else "-"
