"""`airlock certs status|renew`: every certificate with its expiry; renewal host by host."""

from __future__ import annotations

import argparse
import json
import sys

from airlock.cli.common import inventory_arg, inventory_ok, verbose_arg


def register(sub: argparse._SubParsersAction) -> None:
    certs = sub.add_parser(
        "certs",
        help="list the cluster's certificates by expiry, or renew those about to expire",
        description="Certificates airlock and kubeadm made: kubeadm's, etcd's, the "
        "apiserver's etcd client, the bundle server's and the kubelets'.",
    )
    actions = certs.add_subparsers(dest="certs_action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="every certificate on every host as one table sorted by expiry",
        description="Read every certificate on every host (changes nothing) and print "
        "host, file, subject, issuer, expiry and days left, soonest first. Exits 1 when "
        "any expires within --days, 0 when none does, 2 when a host could not be read.",
    )
    renew = actions.add_parser(
        "renew",
        help="renew the certificates that expire within --days (or --all), host by host",
        description="Renew etcd's certificates (members restarted one at a time, health "
        "checked in between), then kubeadm's on one control plane at a time (only the "
        "static pods that read a renewed file restarted, the host out of the load "
        "balancers meanwhile), then each kubelet's serving certificate; then print the "
        "status. CAs are never renewed (docs/operations.md). Safe to re-run.",
    )
    for p in (status, renew):
        inventory_arg(p)
        p.add_argument(
            "--days",
            type=int,
            default=30,
            help="a certificate with fewer days left is expiring (default 30)",
        )
    renew.add_argument(
        "--all", action="store_true", help="renew every leaf certificate, whatever its expiry"
    )
    verbose_arg(renew)
    status.set_defaults(handler=_status)
    renew.set_defaults(handler=_renew)


def _show_status(args: argparse.Namespace) -> int:
    from airlock import certs
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    variables = {"certs_warn_days": args.days, "certs_fail_on_expiring": False}
    req = RunRequest(
        project_root() / "playbooks" / "certs-status.yml",
        args.inventory,
        extra_vars=[json.dumps(variables)],
    )
    result = run_playbook(req, quiet=True)
    rows = certs.rows_from_events(result.events)
    print(certs.render(rows, args.days))
    for failure in result.failures:
        print(f"{failure.host}: {failure.task}: {failure.message}", file=sys.stderr)
    if not result.ok:
        print(
            f"not every host could be read: the table lacks them (log: {result.run_dir})",
            file=sys.stderr,
        )
        return 2
    return 1 if any(r.expiring for r in rows) else 0


def _status(args: argparse.Namespace) -> int:
    if args.days < 0:
        print("airlock: error: --days must be 0 or more", file=sys.stderr)
        return 2
    if not inventory_ok(args.inventory):
        return 1
    return _show_status(args)


def _renew(args: argparse.Namespace) -> int:
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    if args.days < 0:
        print("airlock: error: --days must be 0 or more", file=sys.stderr)
        return 2
    if not inventory_ok(args.inventory):
        return 1
    variables = {"certs_warn_days": args.days, "certs_renew_all": args.all}
    req = RunRequest(
        project_root() / "playbooks" / "certs-renew.yml",
        args.inventory,
        extra_vars=[json.dumps(variables)],
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    if not result.ok:
        print(
            "\nThe renewal stopped. What was renewed stays so; a host whose apiserver did "
            "not come back is named above. Fix the cause, then run the same command again.",
            file=sys.stderr,
        )
        return result.rc or 1
    print()
    return _show_status(args)
