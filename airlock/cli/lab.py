"""`airlock lab up|down|status|ssh`: the built-in lab of podman systemd containers."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
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
        "--monitoring",
        default="",
        metavar="HOSTS",
        help="lab hosts (comma-separated, e.g. w1,w2) that run the monitoring stack "
        "(Prometheus, Alertmanager); default none",
    )
    up.add_argument(
        "--registry",
        default="",
        metavar="HOSTS",
        help="lab hosts (comma-separated, e.g. m1) that run the TLS registry (Debian's "
        "docker-registry; Harbor cannot run in the lab); default none",
    )
    up.add_argument(
        "--ceph",
        default="",
        metavar="HOSTS",
        help="lab hosts (comma-separated, e.g. m1,m2,m3) that run Ceph: a manager and an "
        "OSD on a sparse file each, monitors on an odd number of them; default none",
    )
    up.add_argument(
        "--image-source",
        default="import",
        choices=["import", "registry"],
        help="how nodes get the bundle's images: import the archives on every node (default), "
        "or pull them from the registry hosts' read-only mirror (needs --registry)",
    )
    up.add_argument(
        "--kube-version",
        default=None,
        metavar="VERSION",
        help="the Kubernetes release the inventory installs, from its lab bundle "
        "(default: the lab profile's default release)",
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
    from airlock.lab.bundle.profile import release
    from airlock.lab.hosts import Lab
    from airlock.lab.spec import LabSpec

    release(args.kube_version)  # an unknown release is refused before any host starts
    spec = LabSpec(
        name=args.name,
        masters=args.masters,
        workers=args.workers,
        subnet=args.subnet,
        internal=args.internal,
        inventory_dir=args.inventory,
        kube_version=args.kube_version,
        monitoring=tuple(h for h in args.monitoring.split(",") if h),
        registry=tuple(h for h in args.registry.split(",") if h),
        ceph=tuple(h for h in args.ceph.split(",") if h),
        image_source=args.image_source,
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
    from airlock.lab.spec import LabSpec

    return LabSpec(name=name, masters=1, workers=0)


def _lab_down(args: argparse.Namespace) -> int:
    from airlock.lab.hosts import Lab

    removed = Lab(_lab_spec_by_name(args.name)).down()  # type: ignore[arg-type]
    for line in removed:
        print(f"removed: {line}")
    print(f"lab {args.name}: {'removed' if removed else 'nothing to remove'}")
    return 0


def _lab_status(args: argparse.Namespace) -> int:
    from airlock.lab.hosts import Lab

    rows = Lab(_lab_spec_by_name(args.name)).status()  # type: ignore[arg-type]
    if not rows:
        print(f"lab {args.name}: no hosts (start it with `airlock lab up`)")
        return 1
    print(f"{'HOST':<6} {'ROLE':<7} {'IP':<15} STATE")
    for host, role, ip, state in rows:
        print(f"{host:<6} {role:<7} {ip:<15} {state}")
    return 0


def _lab_ssh(args: argparse.Namespace) -> int:
    from airlock.lab.hosts import Lab
    from airlock.lab.ssh import exec_ssh

    argv = Lab(_lab_spec_by_name(args.name)).ssh_argv(args.host, args.command)  # type: ignore[arg-type]
    exec_ssh(argv)
    return 0  # not reached
