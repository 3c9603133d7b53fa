"""`airlock node add`/`remove`/`reset`'s controller side: which hosts a run touches.

Adding nodes runs playbooks/site.yml with `--limit`: the new hosts, the first control
plane (the join token, the CA hash, the pod network's manifest, the time server's allow
list), the load balancers when a control plane or a load balancer is added (their backend
lists and VRRP peers), and the whole etcd group when a new host is an etcd member (the
membership is computed from all of it). No other host is contacted, so the run's length
does not grow with the cluster. When no etcd member is added, the etcd role's phases are
skipped (only the apiserver's etcd client files are installed on a new control plane);
the bundle server's play is skipped (the bundle host serves the bundle already), and when
only workers are added, so are the cluster CA's, the load balancers' and the apiservers'
etcd client files' plays.

Removing nodes runs playbooks/node-remove.yml on the hosts removed (none with --dead), the
first control plane (drain, Node deletion), the first etcd member that stays (membership)
and, when a control plane or load balancer goes, the load balancers that stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from airlock.inventory.model import Inventory, Problem

#: The etcd role's phase tags (roles/etcd/tasks/main.yml): skipped when no member is added.
ETCD_PHASE_TAGS = (
    "etcd_preflight",
    "etcd_install",
    "etcd_pki",
    "etcd_configure",
    "etcd_run",
    "etcd_members",
    "etcd_backup_timer",
)
#: Plays a worker-only add skips: nothing in them changes for a new worker (the bundle host
#: already serves the bundle; the cluster CA, the load balancers and the apiservers' etcd
#: client files are the control planes' and load balancers').
CONTROL_PLANE_TAGS = ("kube_pki", "loadbalancer", "etcd_apiserver_client")
NODE_GROUPS = ("kube_control_plane", "kube_node")


@dataclass(frozen=True)
class AddPlan:
    new: list[str]
    limit: list[str]
    skip_tags: list[str]
    first_control_plane: str


def _first_control_plane(inv: Inventory) -> str:
    configured = inv.settings.get("kubernetes_init_host")
    if isinstance(configured, str) and configured and "{{" not in configured:
        return configured
    members = inv.members("kube_control_plane")
    return members[0] if members else ""


def add_plan(inv: Inventory, hosts: list[str]) -> tuple[AddPlan | None, list[Problem]]:
    """The hosts and tags of a run that adds `hosts`, or the problems that refuse it."""
    problems = []
    first = _first_control_plane(inv)
    new = list(dict.fromkeys(hosts))
    for host in new:
        if host not in inv.hosts:
            problems.append(
                Problem(
                    f"host {host}",
                    f"is not in inventory {inv.source}",
                    "add it (with its ip) to kube_node for a worker or kube_control_plane "
                    "for a control plane, then run again",
                )
            )
        elif not any(host in inv.members(g) for g in NODE_GROUPS):
            problems.append(
                Problem(
                    f"host {host}",
                    "is in neither kube_node nor kube_control_plane",
                    "add it to kube_node (a worker) or kube_control_plane, then run again",
                )
            )
        elif host == first:
            problems.append(
                Problem(
                    f"host {host}",
                    "is the first control plane, which made the cluster",
                    "it cannot be added; deploy the cluster with `airlock deploy`",
                )
            )
    if problems:
        return None, problems
    limit = [*new, first]
    skip = []
    if any(h in inv.members("kube_control_plane") or h in inv.members("lb") for h in new):
        limit += inv.members("lb")
    else:
        skip += CONTROL_PLANE_TAGS
    if any(h in inv.members("etcd") for h in new):
        limit += inv.members("etcd")
    else:
        skip += ETCD_PHASE_TAGS
    if not any(h in inv.members("bundle_host") for h in new):
        skip.append("bundle_server")
    plan = AddPlan(
        new=new,
        limit=list(dict.fromkeys(limit)),
        skip_tags=sorted(skip),
        first_control_plane=first,
    )
    return plan, []


@dataclass(frozen=True)
class RemovePlan:
    hosts: list[str]
    limit: list[str]
    dead: bool


def _remove_host_problems(inv: Inventory, host: str, first: str) -> list[Problem]:
    where = f"host {host}"
    if host not in inv.hosts:
        return [Problem(where, f"is not in inventory {inv.source}", "name an inventory host")]
    if not any(host in inv.members(g) for g in (*NODE_GROUPS, "etcd", "lb")):
        return [
            Problem(
                where,
                "is no node, etcd member or load balancer",
                "name a host of kube_node, kube_control_plane, etcd or lb",
            )
        ]
    if host == first:
        return [
            Problem(
                where,
                "is the first control plane (kubernetes_init_host)",
                "set kubernetes_init_host to another control plane in the inventory, then run "
                "again",
            )
        ]
    if host in inv.members("bundle_host"):
        return [
            Problem(
                where,
                "is the bundle host, which serves every node's artifacts",
                "move bundle_host to another host and deploy the bundle stage first",
            )
        ]
    return _ceph_host_problems(inv, host)


def _ceph_host_problems(inv: Inventory, host: str) -> list[Problem]:
    """A Ceph host's reset destroys its monitor store and OSD data: airlock does not drain
    Ceph yet (docs/ceph.md), so the operator does, and takes the host out of group ceph."""
    if host not in inv.members("ceph"):
        return []
    return [
        Problem(
            f"host {host}",
            "is a Ceph host (group ceph): removing it would wipe its monitor and OSDs",
            "drain it first (ceph osd out ID, wait for HEALTH_OK, ceph osd purge ID "
            "--yes-i-really-mean-it, ceph mon remove HOST), take it out of group ceph, "
            "then run again (docs/ceph.md)",
        )
    ]


def _remove_group_problems(inv: Inventory, hosts: list[str]) -> list[Problem]:
    problems = []
    where = f"inventory {inv.source}"
    for group, what in (("kube_control_plane", "control plane"), ("etcd", "etcd member")):
        members = inv.members(group)
        if members and not [h for h in members if h not in hosts]:
            problems.append(
                Problem(where, f"removing {', '.join(hosts)} leaves no {what}", "keep one")
            )
    lbs = inv.members("lb")
    if inv.settings.get("airlock_api_vip") and lbs and not [h for h in lbs if h not in hosts]:
        problems.append(Problem(where, "removing them leaves no load balancer", "keep one"))
    registries = inv.members("registry")
    if (
        inv.settings.get("airlock_image_source") == "registry"
        and registries
        and not [h for h in registries if h not in hosts]
    ):
        problems.append(
            Problem(
                where,
                "removing them leaves no registry host, and airlock_image_source is registry: "
                "nodes could not pull the bundle's images",
                "keep one, or set airlock_image_source: import and deploy before removing it",
            )
        )
    leaving = [h for h in hosts if h in inv.members("etcd")]
    if len(leaving) > 1:
        problems.append(
            Problem(
                where,
                f"{', '.join(leaving)} are etcd members, which leave one per run",
                "remove one etcd member, then the next (quorum is checked each time)",
            )
        )
    return problems


def remove_plan(
    inv: Inventory, hosts: list[str], dead: bool
) -> tuple[RemovePlan | None, list[Problem]]:
    """The hosts of a run that removes `hosts`, or the problems that refuse it."""
    first = _first_control_plane(inv)
    gone = list(dict.fromkeys(hosts))
    problems = [p for h in gone for p in _remove_host_problems(inv, h, first)]
    if not problems:
        problems = _remove_group_problems(inv, gone)
    if problems:
        return None, problems
    limit = [] if dead else list(gone)
    limit.append(first)
    survivors = [h for h in inv.members("etcd") if h not in gone]
    if survivors:
        limit.append(survivors[0])
    if any(h in inv.members("kube_control_plane") or h in inv.members("lb") for h in gone):
        limit += [h for h in inv.members("lb") if h not in gone]
    return RemovePlan(hosts=gone, limit=list(dict.fromkeys(limit)), dead=dead), []


def reset_problems(inv: Inventory, hosts: list[str]) -> list[Problem]:
    """Why `airlock reset --limit` refuses `hosts` (only workers leave a running cluster so)."""
    problems = []
    others = ("kube_control_plane", "etcd", "lb", "bundle_host")
    for host in dict.fromkeys(hosts):
        if host not in inv.hosts:
            problems.append(
                Problem(
                    f"host {host}", f"is not in inventory {inv.source}", "name an inventory host"
                )
            )
        elif host in inv.members("ceph"):
            problems += _ceph_host_problems(inv, host)
        elif host not in inv.members("kube_node") or any(host in inv.members(g) for g in others):
            problems.append(
                Problem(
                    f"host {host}",
                    "is not only a worker (kube_node)",
                    "remove a control plane, etcd member or load balancer with `airlock node "
                    "remove`; `airlock reset` without --limit resets the whole cluster",
                )
            )
    return problems
