"""`airlock monitoring open`: where Prometheus and Alertmanager answer, and how to log in."""

from __future__ import annotations

import argparse

from airlock.cli.common import inventory_arg


def register(sub: argparse._SubParsersAction) -> None:
    monitoring = sub.add_parser(
        "monitoring",
        help="the monitoring stack: where to open it",
        description="The monitoring stack on the inventory's monitoring hosts.",
    )
    actions = monitoring.add_subparsers(dest="monitoring_action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "open",
        help="print the Prometheus and Alertmanager URLs, the CA and the credentials' location",
        description="Print each monitoring host's Prometheus and Alertmanager URL, the "
        "monitoring CA to trust, the user and the file holding the password (never the "
        "password itself), and a curl command that uses them. Reads the inventory and the "
        "controller's files only.",
    )
    inventory_arg(show)
    show.set_defaults(handler=_open)


def _open(args: argparse.Namespace) -> int:
    from airlock.monitoring import access

    print(access(args.inventory).render())
    return 0
