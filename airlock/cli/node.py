"""`airlock node add|remove` and `airlock reset`: nodes in and out of a running cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock.cli.common import inventory_arg, print_problems, verbose_arg

if TYPE_CHECKING:
    from airlock.inventory.model import Problem


def register(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser(
        "node",
        help="add or remove nodes (workers, control planes, etcd members)",
        description="Day-2 changes of the cluster's nodes.",
    )
    actions = node.add_subparsers(dest="node_action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="join hosts newly added to the inventory, touching no other node",
        description="Run the deploy (playbooks/site.yml) on the new hosts only, plus what "
        "must change elsewhere: the first control plane (join token, CA hash, the pod "
        "network), the load balancers when a control plane is added, and the etcd group "
        "when a new host is an etcd member (it joins as a learner, promoted when caught "
        "up). Other nodes are never contacted, so the time does not grow with the "
        "cluster. Safe to re-run.",
    )
    inventory_arg(add)
    add.add_argument("hosts", nargs="+", metavar="HOST", help="inventory hosts to add")
    verbose_arg(add)
    add.set_defaults(handler=_add)

    remove = actions.add_parser(
        "remove",
        help="drain, delete and reset nodes; leave etcd; update the load balancers",
        description="Remove hosts from the running cluster (playbooks/node-remove.yml), "
        "checking everything first: the first control plane, the last control plane, "
        "etcd member or load balancer and the bundle host are refused, etcd members leave "
        "one per run and only while the others keep a healthy quorum, and a live host must "
        "answer. Then: drain (PodDisruptionBudgets respected; kubernetes_drain_timeout), "
        "delete the Node, stop a removed load balancer (the VIP moves), remove the etcd "
        "member, re-render the other load balancers without it, and reset the host. With "
        "--dead the host is not contacted (no drain, no reset). Take the hosts out of the "
        "inventory afterwards. Safe to re-run.",
    )
    inventory_arg(remove)
    remove.add_argument("hosts", nargs="+", metavar="HOST", help="inventory hosts to remove")
    remove.add_argument(
        "--dead",
        action="store_true",
        help="the hosts cannot be reached: no drain and no reset, only the cluster side",
    )
    remove.add_argument("--yes", action="store_true", help="confirm: the hosts are wiped")
    verbose_arg(remove)
    remove.set_defaults(handler=_remove)

    reset = sub.add_parser(
        "reset",
        help="remove what airlock installed: workers (--limit) or the whole cluster",
        description="With --limit WORKERS: delete their Node objects through the first "
        "control plane (their pods are stopped, not drained), then reset each host; `airlock "
        "node add` joins it again. A control plane, etcd member or load balancer leaves a "
        "running cluster with `airlock node remove`. Without --limit: the whole cluster, "
        "after a final backup into the inventory's .backups (--no-backup skips it, for a "
        "cluster whose etcd no longer answers). On each host: kubeadm reset and the kubelet, "
        "haproxy/keepalived, etcd and its data, the pod network's iptables chains and "
        "interfaces, containerd with its images, airlock's host settings, the bundle's files "
        "and the bundle server. --yes confirms. Safe to re-run.",
    )
    inventory_arg(reset)
    reset.add_argument(
        "--limit", default="", help="the workers to reset, comma-separated (default: every host)"
    )
    reset.add_argument(
        "--no-backup",
        action="store_true",
        help="whole-cluster reset without the final backup",
    )
    reset.add_argument("--yes", action="store_true", help="confirm: the hosts are wiped")
    verbose_arg(reset)
    reset.set_defaults(handler=_reset)


def _refused(problems: list[Problem], inventory: Path) -> int:
    print_problems(problems, f"inventory {inventory}")
    print("nothing was changed; fix the command or the inventory and run again", file=sys.stderr)
    return 1


def _unconfirmed(what: str) -> int:
    print(f"airlock: error: {what}; add --yes to confirm", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, playbook: str, limit: list[str], **options: Any) -> int:
    """Run playbooks/PLAYBOOK on the inventory with --limit LIMIT; the command's exit code."""
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    variables = options.pop("variables", None)
    req = RunRequest(
        project_root() / "playbooks" / playbook,
        args.inventory,
        limit=",".join(limit),
        extra_vars=[json.dumps(variables)] if variables else [],
        verbosity=args.verbose,
        **options,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)


def _add(args: argparse.Namespace) -> int:
    from airlock import nodes
    from airlock.check import static_problems

    inv, problems = static_problems(args.inventory)
    plan = None
    if not problems:
        plan, problems = nodes.add_plan(inv, args.hosts)
    if problems or plan is None:
        return _refused(problems, args.inventory)
    others = [h for h in plan.limit if h not in plan.new]
    print(
        f"adding {', '.join(plan.new)}; also touched: {', '.join(others)} "
        f"(of {len(inv.hosts)} hosts in the inventory)"
    )
    return _run(args, "site.yml", plan.limit, skip_tags=",".join(plan.skip_tags))


def _remove(args: argparse.Namespace) -> int:
    from airlock import nodes
    from airlock.check import static_problems

    if not args.yes:
        what = "deletes their Nodes" if args.dead else "drains, deletes and wipes"
        return _unconfirmed(f"node remove {what} {', '.join(args.hosts)}")
    inv, problems = static_problems(args.inventory)
    plan = None
    if not problems:
        plan, problems = nodes.remove_plan(inv, args.hosts, args.dead)
    if problems or plan is None:
        return _refused(problems, args.inventory)
    print(
        f"removing {', '.join(plan.hosts)}{' (dead: not contacted)' if plan.dead else ''}; "
        f"hosts touched: {', '.join(plan.limit)}"
    )
    variables = {"airlock_remove_hosts": plan.hosts, "airlock_remove_dead": plan.dead}
    rc = _run(args, "node-remove.yml", plan.limit, variables=variables)
    if rc == 0:
        print(
            f"take {', '.join(plan.hosts)} out of {args.inventory} now, or the next deploy "
            "adds them again"
        )
    return rc


def _reset(args: argparse.Namespace) -> int:
    from airlock import nodes
    from airlock.check import static_problems

    hosts = [h.strip() for h in args.limit.split(",") if h.strip()]
    if not args.yes:
        what = ", ".join(hosts) if hosts else f"every host of {args.inventory}"
        return _unconfirmed(
            f"reset wipes Kubernetes, etcd, containerd and airlock's files from {what}"
        )
    inv, problems = static_problems(args.inventory)
    if not problems and hosts:
        problems = nodes.reset_problems(inv, hosts)
    if problems:
        return _refused(problems, args.inventory)
    variables = {"airlock_reset_cluster": not hosts, "airlock_reset_backup": not args.no_backup}
    return _run(args, "reset.yml", hosts, variables=variables, whole_inventory=not hosts)
