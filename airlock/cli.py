"""The `airlock` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from airlock import __version__
from airlock.errors import AirlockError

Handler = Callable[[argparse.Namespace], int]


def _add_lab(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser(
        "lab",
        help="real hosts on this machine (podman systemd containers)",
        description="The built-in lab: Debian 12 hosts as systemd containers with SSH, "
        "on a podman network of their own.",
    )
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default="lab", help="lab name (default: lab)")

    up = lab_sub.add_parser(
        "up",
        help="start the lab hosts and write their inventory",
        description="Build the host image (once), start the hosts and "
        "write the inventory (inventories/lab for the default lab). "
        "Running it again changes nothing.",
    )
    common(up)
    up.add_argument("--masters", type=int, default=3, help="control-plane hosts m1..mN (default 3)")
    up.add_argument("--workers", type=int, default=2, help="worker hosts w1..wN (default 2)")
    up.add_argument("--subnet", default="", help="the lab network, a /24 (default 10.77.10.0/24)")
    up.add_argument(
        "--internal",
        action="store_true",
        help="a network with no route out (proves an install is offline)",
    )
    up.add_argument(
        "--inventory",
        type=Path,
        default=None,
        help="where to write the inventory (default inventories/lab, or "
        ".airlock/labs/NAME/inventory for other names)",
    )
    up.set_defaults(handler=_lab_up)

    down = lab_sub.add_parser("down", help="remove every container, volume and network of the lab")
    common(down)
    down.set_defaults(handler=_lab_down)

    status = lab_sub.add_parser("status", help="list the lab hosts and their state")
    common(status)
    status.set_defaults(handler=_lab_status)

    ssh = lab_sub.add_parser("ssh", help="open a shell (or run a command) on a lab host")
    common(ssh)
    ssh.add_argument("host", help="host name, e.g. m1")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    ssh.set_defaults(handler=_lab_ssh)


def _lab_up(args: argparse.Namespace) -> int:
    from airlock.lab import Lab, LabSpec

    spec = LabSpec(
        name=args.name,
        masters=args.masters,
        workers=args.workers,
        subnet=args.subnet,
        internal=args.internal,
        inventory_dir=args.inventory,
    )
    changed = Lab(spec).up()
    for line in changed:
        print(f"changed: {line}")
    print(
        f"lab {spec.name}: {len(spec.hosts)} hosts up on {spec.subnet}"
        f"{' (internal)' if spec.internal else ''}; inventory {spec.inventory_dir}; "
        f"{'changed' if changed else 'no change'}"
    )
    return 0


def _lab_spec_by_name(name: str) -> object:
    from airlock.lab import LabSpec

    return LabSpec(name=name, masters=1, workers=0)


def _lab_down(args: argparse.Namespace) -> int:
    from airlock.lab import Lab

    removed = Lab(_lab_spec_by_name(args.name)).down()  # type: ignore[arg-type]
    for line in removed:
        print(f"removed: {line}")
    print(f"lab {args.name}: {'removed' if removed else 'nothing to remove'}")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    from airlock.lab import Lab

    rows = Lab(_lab_spec_by_name(args.name)).status()  # type: ignore[arg-type]
    if not rows:
        print(f"lab {args.name}: no hosts (start it with `airlock lab up`)")
        return 1
    print(f"{'HOST':<6} {'ROLE':<7} {'IP':<15} STATE")
    for host, role, ip, state in rows:
        print(f"{host:<6} {role:<7} {ip:<15} {state}")
    return 0


def _lab_ssh(args: argparse.Namespace) -> int:
    from airlock.lab import Lab, exec_ssh

    argv = Lab(_lab_spec_by_name(args.name)).ssh_argv(args.host, args.command)  # type: ignore[arg-type]
    exec_ssh(argv)
    return 0  # not reached


def _add_bundle(sub: argparse._SubParsersAction) -> None:
    from airlock.bundle.cli import register

    register(sub)


def _version(_: argparse.Namespace) -> int:
    from importlib.metadata import version

    print(
        f"airlock {__version__} (ansible-core {version('ansible-core')}, "
        f"ansible {version('ansible')}, ansible-runner {version('ansible-runner')}, "
        f"python {sys.version.split()[0]})"
    )
    return 0


def _inventory_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        type=Path,
        required=True,
        help="inventory file or directory (e.g. inventories/lab)",
    )


def _add_check(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check",
        help="validate an inventory and its hosts; changes nothing",
        description="Validate the inventory (groups, addresses, VIP, networks, settings, "
        "versions) without contacting any host; then check every host over SSH (privilege "
        "escalation, python3, OS, swap, ports, disk, clock). Prints one line per problem: "
        "where, what is wrong, how to fix it. Exit code 1 when there is any problem.",
    )
    _inventory_arg(check)
    check.add_argument(
        "--static", action="store_true", help="only the inventory checks; contact no host"
    )
    check.add_argument("--limit", default="", help="check only these hosts (Ansible pattern)")
    check.set_defaults(handler=_check)


def _print_problems(problems: list, header: str) -> None:
    print(f"{header}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    from airlock.check import host_problems, static_problems

    inv, problems = static_problems(args.inventory)
    if problems:
        _print_problems(problems, f"inventory {args.inventory}")
        print("nothing was changed and no host was contacted", file=sys.stderr)
        return 1
    print(f"inventory {args.inventory}: ok ({len(inv.hosts)} hosts)")
    if args.static:
        return 0
    problems, result = host_problems(inv, limit=args.limit)
    if problems:
        _print_problems(problems, "hosts")
        print(f"nothing was changed; log: {result.run_dir}", file=sys.stderr)
        return 1
    print(f"hosts: ok ({len(result.stats) or len(inv.hosts)} checked in {result.elapsed:.1f}s)")
    return 0


def _add_deploy(sub: argparse._SubParsersAction) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="install or converge the cluster (playbooks/site.yml or one stage)",
        description="Validate the inventory, then run playbooks/site.yml (or one stage) "
        "through ansible-runner with live progress. Keeps the full log and JSON events in "
        ".airlock/runs/; on failure names host, task and message and prints the "
        "ansible-playbook command that reproduces it.",
    )
    _inventory_arg(deploy)
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
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="extra variables (Ansible -e), repeatable",
    )
    deploy.add_argument(
        "-v", "--verbose", action="count", default=0, help="more Ansible output in the log"
    )
    deploy.set_defaults(handler=_deploy)


def _playbook_for(args: argparse.Namespace) -> Path:
    from airlock.errors import AirlockError
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
        _print_problems(problems, f"inventory {args.inventory}")
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
        extra_vars=args.extra_vars,
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Install production Kubernetes into air-gapped datacenters "
        "from one offline bundle.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_check(sub)
    _add_deploy(sub)
    _add_lab(sub)
    _add_bundle(sub)
    version = sub.add_parser("version", help="print airlock's version and its Ansible's")
    version.set_defaults(handler=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except AirlockError as exc:
        print(f"airlock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("airlock: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
