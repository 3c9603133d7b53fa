"""`airlock node add`: hosts newly in the inventory join the cluster; nothing else is touched."""

from __future__ import annotations

import argparse
import sys

from airlock.cli.common import inventory_arg, print_problems, verbose_arg


def register(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser(
        "node",
        help="add nodes newly listed in the inventory (workers or control planes)",
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

    reset = sub.add_parser(
        "reset",
        help="remove what airlock installed from workers (--limit), leaving the hosts as before",
        description="Delete the hosts' Node objects through the first control plane, then "
        "on each host: kubeadm reset and the kubelet, the pod network's iptables chains and "
        "interfaces, containerd with its images, airlock's host settings and the bundle's "
        "files. `airlock node add` joins a reset host again. Only workers yet; --yes "
        "confirms (their pods are stopped, not drained).",
    )
    inventory_arg(reset)
    reset.add_argument(
        "--limit", required=True, help="the workers to reset, comma-separated (never implied)"
    )
    reset.add_argument("--yes", action="store_true", help="confirm: the hosts are wiped")
    verbose_arg(reset)
    reset.set_defaults(handler=_reset)


def _add(args: argparse.Namespace) -> int:
    from airlock import nodes
    from airlock.check import static_problems
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    inv, problems = static_problems(args.inventory)
    plan = None
    if not problems:
        plan, problems = nodes.add_plan(inv, args.hosts)
    if problems or plan is None:
        print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed; fix the inventory and run again", file=sys.stderr)
        return 1
    others = [h for h in plan.limit if h not in plan.new]
    print(
        f"adding {', '.join(plan.new)}; also touched: {', '.join(others)} "
        f"(of {len(inv.hosts)} hosts in the inventory)"
    )
    req = RunRequest(
        project_root() / "playbooks" / "site.yml",
        args.inventory,
        limit=",".join(plan.limit),
        skip_tags=",".join(plan.skip_tags),
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)


def _reset(args: argparse.Namespace) -> int:
    from airlock import nodes
    from airlock.check import static_problems
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    hosts = [h.strip() for h in args.limit.split(",") if h.strip()]
    if not args.yes:
        print(
            f"airlock: error: reset wipes Kubernetes, containerd and airlock's files from "
            f"{', '.join(hosts)}; add --yes to confirm",
            file=sys.stderr,
        )
        return 2
    inv, problems = static_problems(args.inventory)
    if not problems:
        problems = nodes.reset_problems(inv, hosts)
    if problems:
        print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed; fix the command and run again", file=sys.stderr)
        return 1
    req = RunRequest(
        project_root() / "playbooks" / "reset.yml",
        args.inventory,
        limit=",".join(hosts),
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)
