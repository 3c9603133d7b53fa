"""`airlock status`: how the cluster is, on one screen, read-only."""

from __future__ import annotations

import argparse
import json
import sys

from airlock.cli.common import inventory_arg, inventory_ok


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status",
        help="how the cluster is: nodes, system pods, etcd, the VIP, certificates, services",
        description="Read, on every host and changing nothing: the nodes (Ready, version, "
        "role) and the system pods, every apiserver's readiness, the etcd members (health, "
        "leader, database size), which host holds the VIP and haproxy's view of every "
        "apiserver, the earliest certificate expiry, the bundle deployed, airlock's services "
        "(registry, monitoring, Ceph included) and Ceph's health. Exits 0 when healthy, 1 "
        "with one line per problem otherwise.",
    )
    inventory_arg(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument(
        "--days",
        type=int,
        default=30,
        help="a certificate with fewer days left is a problem (default 30)",
    )
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from airlock import status
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    if args.days < 0:
        print("airlock: error: --days must be 0 or more", file=sys.stderr)
        return 2
    if not inventory_ok(args.inventory):
        return 1
    req = RunRequest(
        project_root() / "playbooks" / "status.yml",
        args.inventory,
        extra_vars=[json.dumps({"certs_warn_days": args.days})],
    )
    result = run_playbook(req, quiet=True)
    found = status.from_events(result.events, result.failures)
    print(found.to_json() if args.json else status.render(found))
    return 1 if found.problems else 0
