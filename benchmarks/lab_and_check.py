"""Prints how long the lab and `airlock check` take on this machine.

    python benchmarks/lab_and_check.py [--keep]
    python benchmarks/lab_and_check.py --static-only   # no lab: the 2,000-host check only

Measures: `lab up` of a 3+2 lab from nothing (image already built), `lab up` again
(no-op), `check --static`, a full `check` over SSH, and `lab down`; then `check --static`
of a generated 2,000-host inventory (goal: under 3 s). Numbers only; it never passes or
fails on time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRLOCK = str(Path(sys.executable).parent / "airlock")
NAME = "bench"


def timed(*args: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [AIRLOCK, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=dict(os.environ, AIRLOCK_HOME=str(ROOT)),
    )
    return time.monotonic() - started


def big_inventory(directory: Path, hosts: int = 2000) -> Path:
    """A valid inventory of 3 control-plane hosts and `hosts - 3` workers in 10.64.0.0/16,
    with group_vars for several groups and host_vars for some hosts."""
    names = [f"cp{i}" for i in range(1, 4)] + [f"w{i}" for i in range(1, hosts - 2)]
    lines = ["---", "all:", "  hosts:"]
    for n, name in enumerate(names):
        addr = f"10.64.{(n + 10) // 250}.{(n + 10) % 250 + 1}"
        lines.append(f"    {name}: {{ip: {addr}, ansible_host: {addr}}}")
    cps = "{" + ", ".join(f"{c}: {{}}" for c in names[:3]) + "}"
    lines += ["  children:"]
    for group in ("etcd", "kube_control_plane", "lb"):
        lines += [f"    {group}:", f"      hosts: {cps}"]
    lines += ["    bundle_host:", "      hosts: {cp1: {}}", "    kube_node:", "      hosts:"]
    lines += [f"        {w}: {{}}" for w in names[3:]]
    (directory / "group_vars" / "all").mkdir(parents=True)
    (directory / "host_vars").mkdir()
    (directory / "hosts.yml").write_text("\n".join(lines) + "\n")
    (directory / "group_vars" / "all" / "cluster.yml").write_text(
        "---\nairlock_cluster_name: big\nairlock_host_cidr: 10.64.0.0/16\n"
        "airlock_api_vip: 10.64.255.250\nairlock_pod_cidr: 10.128.0.0/12\n"
        "ansible_user: deploy\nansible_become: true\n"
    )
    (directory / "group_vars" / "kube_node.yml").write_text(
        "---\ncontainerd_restrict_oom_score_adj: false\n"
    )
    (directory / "group_vars" / "etcd.yml").write_text("---\netcd_client_port: 2379\n")
    for name in names[3:53]:
        (directory / "host_vars" / f"{name}.yml").write_text("---\nansible_port: 22\n")
    return directory


def static_check_large(hosts: int = 2000) -> list[tuple[str, float]]:
    """`airlock check --static` of a generated inventory of `hosts` hosts: the whole
    command (a new process), and in-process the load and the rules separately."""
    sys.path.insert(0, str(ROOT))
    from airlock.inventory import load_inventory, validate

    with tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp:
        inventory = big_inventory(Path(tmp) / "inv", hosts)
        rows = [
            (
                f"check --static, {hosts} hosts (command)",
                timed("check", "--static", "-i", str(inventory)),
            )
        ]
        started = time.monotonic()
        inv = load_inventory(inventory)
        loaded = time.monotonic()
        problems = validate(inv)
        checked = time.monotonic()
        if problems:
            print(f"(the generated inventory has {len(problems)} problems: {problems[0]})")
        rows += [
            (f"  load {hosts} hosts (in-process)", loaded - started),
            (f"  rules on {hosts} hosts (in-process)", checked - loaded),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument(
        "--static-only", action="store_true", help="only the 2,000-host static check (no lab)"
    )
    args = parser.parse_args()
    if args.static_only:
        for label, seconds in static_check_large():
            print(f"{label:<40} {seconds:7.2f} s")
        return
    inventory = str(ROOT / ".airlock" / "labs" / NAME / "inventory")
    up = [
        "lab",
        "up",
        "--name",
        NAME,
        "--masters",
        "3",
        "--workers",
        "2",
        "--subnet",
        "10.77.40.0/24",
    ]
    timed("lab", "down", "--name", NAME)
    rows = [
        ("lab up, 5 hosts, from nothing", timed(*up)),
        ("lab up again (no change)", timed(*up)),
        ("check --static (no host contacted)", timed("check", "--static", "-i", inventory)),
        ("check, 5 hosts over SSH", timed("check", "-i", inventory)),
    ]
    if not args.keep:
        rows.append(("lab down", timed("lab", "down", "--name", NAME)))
    rows += static_check_large()
    for label, seconds in rows:
        print(f"{label:<40} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
