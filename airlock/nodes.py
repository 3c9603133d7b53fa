"""`airlock node add`'s controller side: which hosts a run touches to add nodes.

Adding nodes runs playbooks/site.yml with `--limit`: the new hosts, the first control
plane (the join token, the CA hash, the pod network's manifest, the time server's allow
list), the load balancers when a control plane or a load balancer is added (their backend
lists and VRRP peers), and the whole etcd group when a new host is an etcd member (the
membership is computed from all of it). No other host is contacted, so the run's length
does not grow with the cluster. When no etcd member is added, the etcd role's phases are
skipped (only the apiserver's etcd client files are installed on a new control plane).
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
    if any(h in inv.members("kube_control_plane") or h in inv.members("lb") for h in new):
        limit += inv.members("lb")
    adds_etcd = any(h in inv.members("etcd") for h in new)
    if adds_etcd:
        limit += inv.members("etcd")
    plan = AddPlan(
        new=new,
        limit=list(dict.fromkeys(limit)),
        skip_tags=[] if adds_etcd else list(ETCD_PHASE_TAGS),
        first_control_plane=first,
    )
    return plan, []


def reset_problems(inv: Inventory, hosts: list[str]) -> list[Problem]:
    """Why `airlock reset` refuses `hosts` (only workers of the inventory can be reset yet)."""
    problems = []
    others = ("kube_control_plane", "etcd", "lb", "bundle_host")
    for host in dict.fromkeys(hosts):
        if host not in inv.hosts:
            problems.append(
                Problem(
                    f"host {host}", f"is not in inventory {inv.source}", "name an inventory host"
                )
            )
        elif host not in inv.members("kube_node") or any(host in inv.members(g) for g in others):
            problems.append(
                Problem(
                    f"host {host}",
                    "is not only a worker (kube_node)",
                    "only workers can be reset yet; a control plane, etcd member, load "
                    "balancer or bundle host is not (docs/operations.md)",
                )
            )
    return problems
