"""`airlock kubectl -i INV [ARGS...]`: kubectl of the cluster's version, logged in as admin."""

from __future__ import annotations

import argparse
import os
import subprocess

from airlock.cli.common import inventory_arg


def register(sub: argparse._SubParsersAction) -> None:
    kubectl = sub.add_parser(
        "kubectl",
        help="run the bundle's kubectl against the cluster with the admin kubeconfig",
        description="Run kubectl of the cluster's version (taken once from the inventory's "
        "bundle, airlock_bundle, and checked against its manifest) with KUBECONFIG set to "
        "the admin kubeconfig the deploy wrote (.credentials/kubernetes/admin.conf). "
        "Everything after the inventory goes to kubectl: airlock kubectl -i INV get nodes. "
        "`--path` prints where that kubectl and kubeconfig are instead.",
    )
    inventory_arg(kubectl)
    kubectl.add_argument(
        "--path",
        action="store_true",
        help="print `export KUBECONFIG=...` and the kubectl's path, run nothing",
    )
    kubectl.add_argument("args", nargs=argparse.REMAINDER, help="kubectl's arguments")
    kubectl.set_defaults(handler=_kubectl)


def _kubectl(args: argparse.Namespace) -> int:
    from airlock.kubectl import for_inventory
    from airlock.paths import state_dir

    program, kubeconfig = for_inventory(args.inventory, state_dir() / "bin")
    if args.path:
        print(f"export KUBECONFIG={kubeconfig}")
        print(f"alias kubectl={program}")
        return 0
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([str(program), *rest], env=env, check=False).returncode
