"""`airlock upgrade`: one Kubernetes minor up, node by node, with a plan first."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from airlock.cli.common import inventory_arg, print_problems, verbose_arg
from airlock.errors import AirlockError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upgrade",
        help="upgrade Kubernetes one minor release, node by node (--plan: show what it does)",
        description="Check the inventory and the target bundle, plan the upgrade on the "
        "cluster (stopping on any blocker before a host is touched), then run "
        "playbooks/upgrade.yml: the target bundle fetched, images imported, etcd rolled, the "
        "first control plane with `kubeadm upgrade apply`, the others and the workers one at "
        "a time (drained, upgraded, restarted, uncordoned). A re-run resumes.",
    )
    inventory_arg(p)
    p.add_argument("--to", required=True, metavar="VERSION", help="target release, e.g. 1.37.2")
    p.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="the target release's bundle (default: the inventory's airlock_bundle)",
    )
    p.add_argument(
        "--plan", action="store_true", help="print the plan and what blocks it; change nothing"
    )
    p.add_argument(
        "--batch",
        default="1",
        help="workers upgraded at a time: a number or a percentage such as 20%% (default 1)",
    )
    verbose_arg(p)
    p.set_defaults(handler=_upgrade)


def _bundle_path(args: argparse.Namespace, settings: dict) -> Path:
    if args.bundle is not None:
        return args.bundle
    configured = settings.get("airlock_bundle")
    if not configured or "{{" in str(configured):
        raise AirlockError(
            f"inventory {args.inventory} sets no airlock_bundle: pass --bundle with the "
            f"{args.to} bundle"
        )
    path = Path(str(configured))
    return path if path.is_absolute() else (args.inventory.parent / path)


def _check_batch(batch: str) -> str:
    number = batch[:-1] if batch.endswith("%") else batch
    if not number.isdigit() or int(number) < 1 or (batch.endswith("%") and int(number) > 100):
        raise AirlockError(f"--batch {batch}: give a number of workers (1, 5) or a percentage")
    return batch


def _upgrade(args: argparse.Namespace) -> int:
    from airlock import upgrade
    from airlock.check import static_problems
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    target = upgrade.normalise(args.to)
    batch = _check_batch(args.batch)
    inv, problems = static_problems(args.inventory)
    if problems:
        print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed; fix the inventory and run again", file=sys.stderr)
        return 1
    bundle = upgrade.read_bundle(_bundle_path(args, inv.settings))
    refused = upgrade.bundle_problems(bundle, target)
    if refused:
        raise AirlockError("; ".join(refused) + "; nothing was changed")
    playbook = "upgrade-plan.yml" if args.plan else "upgrade.yml"
    variables = upgrade.extra_vars(bundle, target, batch)
    req = RunRequest(
        project_root() / "playbooks" / playbook,
        args.inventory,
        extra_vars=[json.dumps(variables)],
        verbosity=args.verbose,
    )
    result = run_playbook(req, quiet=args.plan)
    plan = upgrade.plan_from_events(result.events)
    if plan is not None and (args.plan or plan.get("blockers")):
        print(upgrade.render_plan(plan))
    if args.plan and not result.ok and plan is None:
        for failure in result.failures:
            print(f"{failure.host}: {failure.task}: {failure.message}", file=sys.stderr)
    if plan is not None and plan.get("blockers"):
        print("\nnothing was changed: fix the blockers above and run again", file=sys.stderr)
    elif not result.ok and not args.plan:
        resume = ["airlock", "upgrade", "-i", str(args.inventory), "--to", args.to]
        resume += ["--bundle", str(bundle.path)] if args.bundle else []
        print(
            "\nThe upgrade stopped; nodes already upgraded stay so, the node it stopped on "
            f"stays cordoned. Fix the cause, then resume with: {shlex.join(resume)}",
            file=sys.stderr,
        )
    if result.ok and not args.plan:
        print(
            f"\nEvery node runs {target}. Set airlock_kube_version: "
            f'"{target.removeprefix("v")}" and airlock_bundle: {bundle.path} in the inventory '
            "so that `airlock deploy` converges to this release."
        )
    return 0 if result.ok else (result.rc or 1)
