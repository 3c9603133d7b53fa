"""`airlock deploy`: the static checks, then playbooks/site.yml (or one stage), live progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from airlock.cli.common import inventory_arg, print_problems, verbose_arg
from airlock.errors import AirlockError


def register(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="install or converge the cluster (playbooks/site.yml or one stage)",
        description="Validate the inventory, then run playbooks/site.yml (or one stage) "
        "through ansible-runner with live progress. Keeps the full log and JSON events in "
        ".airlock/runs/; on failure names host, task and message and prints the "
        "ansible-playbook command that reproduces it.",
    )
    inventory_arg(deploy)
    target = deploy.add_mutually_exclusive_group()
    target.add_argument(
        "--stage",
        default="",
        help="run playbooks/STAGE.yml instead of site.yml (e.g. etcd, loadbalancer, etcd-backup)",
    )
    target.add_argument("--playbook", type=Path, default=None, help="run this playbook file")
    deploy.add_argument("--limit", default="", help="only these hosts (Ansible --limit)")
    deploy.add_argument("--tags", default="", help="only tasks with these tags (Ansible --tags)")
    deploy.add_argument("--skip-tags", default="", help="skip tasks with these tags")
    deploy.add_argument(
        "--check", action="store_true", help="report what would change; change nothing"
    )
    deploy.add_argument("--diff", action="store_true", help="show what changes in files")
    deploy.add_argument(
        "--full",
        action="store_true",
        help="run every task of every stage, also those whose hosts are as their last run "
        "left them (airlock_stage_skip=false)",
    )
    deploy.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="extra variables (Ansible -e), repeatable",
    )
    verbose_arg(deploy)
    deploy.set_defaults(handler=_deploy)


def _playbook_for(args: argparse.Namespace) -> Path:
    from airlock.paths import project_root

    if args.playbook is not None:
        if not args.playbook.is_file():
            raise AirlockError(f"--playbook {args.playbook}: no such file")
        return args.playbook
    playbooks = project_root() / "playbooks"
    name = args.stage or "site"
    path = playbooks / f"{name}.yml"
    if not path.is_file():
        stages = sorted(p.stem for p in playbooks.glob("*.yml"))
        raise AirlockError(
            f"--stage {name}: there is no playbooks/{name}.yml; stages: {', '.join(stages)}"
        )
    return path


def _deploy(args: argparse.Namespace) -> int:
    from airlock.check import static_problems
    from airlock.runner import RunRequest, run_playbook

    playbook = _playbook_for(args)
    _, problems = static_problems(args.inventory)
    if problems:
        print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed; fix the inventory and run again", file=sys.stderr)
        return 1
    req = RunRequest(
        playbook,
        args.inventory,
        limit=args.limit,
        tags=args.tags,
        skip_tags=args.skip_tags,
        check=args.check,
        diff=args.diff,
        extra_vars=[*args.extra_vars, *(['{"airlock_stage_skip": false}'] if args.full else [])],
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)
