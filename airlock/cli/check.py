"""`airlock check`: the inventory without contacting any host, then every host over SSH."""

from __future__ import annotations

import argparse
import sys

from airlock.cli.common import inventory_arg, print_problems


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check",
        help="validate an inventory and its hosts; changes nothing",
        description="Validate the inventory (groups, addresses, VIP, networks, settings, "
        "versions) without contacting any host; then check every host over SSH (privilege "
        "escalation, python3, OS, swap, ports, disk, clock). Prints one line per problem: "
        "where, what is wrong, how to fix it. Exit code 1 when there is any problem.",
    )
    inventory_arg(check)
    check.add_argument(
        "--static", action="store_true", help="only the inventory checks; contact no host"
    )
    check.add_argument("--limit", default="", help="check only these hosts (Ansible pattern)")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from airlock.check import host_notes, host_problems, static_problems

    inv, problems = static_problems(args.inventory)
    if problems:
        print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed and no host was contacted", file=sys.stderr)
        return 1
    print(f"inventory {args.inventory}: ok ({len(inv.hosts)} hosts)")
    if args.static:
        return 0
    problems, result = host_problems(inv, limit=args.limit)
    for note in host_notes(result):
        print(f"note: {note}")
    if problems:
        print_problems(problems, "hosts")
        print(f"nothing was changed; log: {result.run_dir}", file=sys.stderr)
        return 1
    print(f"hosts: ok ({len(result.stats) or len(inv.hosts)} checked in {result.elapsed:.1f}s)")
    return 0
