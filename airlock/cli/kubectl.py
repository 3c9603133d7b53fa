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


#: airlock's own options of `airlock kubectl`, and whether each takes a value.
OWN_OPTIONS = {"-i": True, "--inventory": True, "--path": False, "-h": False, "--help": False}


def kubectl_argv(argv: list[str]) -> list[str]:
    """`argv` with a `--` before the first word that is kubectl's, so that kubectl's own
    flags may come first (`airlock kubectl -i INV -n NS get pods`): argparse would take
    `-n` for an option of airlock's."""
    command = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    if command is None or argv[command] != "kubectl":
        return argv
    at = command + 1
    while at < len(argv):
        word = argv[at]
        if word == "--":
            return argv
        name = word.split("=", 1)[0]
        if name not in OWN_OPTIONS:
            break
        at += 2 if OWN_OPTIONS[name] and "=" not in word else 1
    return [*argv[:at], "--", *argv[at:]] if at < len(argv) else argv


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
