#!/usr/bin/env python3
"""Time the whole deploy from the lab bundle: full converge, no-op re-run, tasks per host.

    .venv/bin/python benchmarks/cluster_deploy.py [--name bench-k8s] [--keep]
        [--registry m3 [--image-source registry]] [--monitoring w1,w2] [--ceph m1,m2,m3]
    .venv/bin/python benchmarks/cluster_deploy.py --whole-stack   # make lab's shape

Builds (or reuses) the lab bundle, starts its own --internal lab (3 control-plane hosts
that also run etcd and the load balancer, 2 workers; with --registry, the TLS registry on
those hosts, and with --image-source registry the nodes pull the bundle's images from its
mirror instead of importing the archives: run it both ways to compare; --monitoring and
--ceph add those stacks; --whole-stack is make lab's: registry m3, Ceph m1-m3, monitoring
w1,w2), runs `airlock
deploy` twice and prints: the bundle step, the full deploy, the no-op re-deploy, and per
host the tasks run and changed in each, and per play (stage) its seconds and tasks in both
runs, marking the stages the no-op skipped at their gate (from the runs' summary.json).
Goals on a 2-core machine: full deploy under 5 minutes, no-op under 60 seconds. Prints
numbers; never passes or fails on a stopwatch. Removes the lab unless --keep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from airlock.runner import summary_from_output

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def airlock(*args: str) -> tuple[float, str]:
    env = dict(os.environ, AIRLOCK_HOME=str(ROOT), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "airlock"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
        raise SystemExit(f"failed ({proc.returncode}): airlock {' '.join(args)}")
    return elapsed, proc.stdout


def stats(stdout: str) -> dict[str, dict[str, int]]:
    return summary_from_output(stdout)["stats"]


def tasks(host: dict[str, int]) -> int:
    # Ansible counts a changed task in `ok` too.
    return host["ok"] + host["failures"] + host["skipped"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="bench-k8s")
    parser.add_argument("--subnet", default="10.77.17.0/24")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument("--registry", default="", help="lab hosts of the registry, e.g. m3")
    parser.add_argument("--image-source", default="import", choices=["import", "registry"])
    parser.add_argument("--monitoring", default="", help="lab hosts of monitoring, e.g. w1,w2")
    parser.add_argument("--ceph", default="", help="lab hosts of Ceph, e.g. m1,m2,m3")
    parser.add_argument(
        "--whole-stack",
        action="store_true",
        help="make lab's shape: --registry m3 --ceph m1,m2,m3 --monitoring w1,w2",
    )
    args = parser.parse_args()
    if args.whole_stack:
        args.registry = args.registry or "m3"
        args.ceph = args.ceph or "m1,m2,m3"
        args.monitoring = args.monitoring or "w1,w2"
    inventory = str(ROOT / ".airlock" / "labs" / args.name / "inventory")
    bundle_s, _ = airlock("bundle", "build", "--profile", "lab")
    airlock("lab", "down", "--name", args.name)
    lab_s, _ = airlock(
        "lab",
        "up",
        "--name",
        args.name,
        "--internal",
        "--masters",
        "3",
        "--workers",
        "2",
        "--subnet",
        args.subnet,
        *(["--registry", args.registry] if args.registry else []),
        *(["--ceph", args.ceph] if args.ceph else []),
        *(["--monitoring", args.monitoring] if args.monitoring else []),
        "--image-source",
        args.image_source,
    )
    try:
        full_s, full_out = airlock("deploy", "-i", inventory)
        noop_s, noop_out = airlock("deploy", "-i", inventory)
    finally:
        if not args.keep:
            airlock("lab", "down", "--name", args.name)
    full, noop = stats(full_out), stats(noop_out)
    print(f"lab bundle (build or reuse)   {bundle_s:7.1f} s")
    shape = f"--registry {args.registry} " if args.registry else ""
    shape += f"--ceph {args.ceph} " if args.ceph else ""
    shape += f"--monitoring {args.monitoring} " if args.monitoring else ""
    shape += f"--image-source {args.image_source}"
    print(f"lab up (--internal, 3+2)      {lab_s:7.1f} s   ({shape})")
    print(f"full deploy from the bundle   {full_s:7.1f} s   (goal < 300 s)")
    print(f"no-op re-deploy               {noop_s:7.1f} s   (goal < 60 s)")
    print(f"{'host':6} {'tasks':>6} {'changed':>8} {'no-op tasks':>12} {'no-op changed':>14}")
    for host in sorted(full):
        print(
            f"{host:6} {tasks(full[host]):6d} {full[host]['changed']:8d} "
            f"{tasks(noop[host]):12d} {noop[host]['changed']:14d}"
        )
    print_plays(summary_from_output(full_out), summary_from_output(noop_out))


def print_plays(full: dict, noop: dict) -> None:
    """Seconds and tasks per play (stage) of both runs; `gate` = skipped, as left."""
    print(f"\n{'full s':>7} {'tasks':>5} {'no-op s':>8} {'tasks':>5}  play")
    for first, again in zip(full["plays"], noop["plays"], strict=False):
        mark = "  gate" if again["skipped_by_gate"] else ""
        print(
            f"{first['seconds']:7.1f} {first['tasks']:5d} {again['seconds']:8.1f} "
            f"{again['tasks']:5d}  {first['name']}{mark}"
        )


if __name__ == "__main__":
    main()
