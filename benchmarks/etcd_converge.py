#!/usr/bin/env python3
"""Time the etcd stage: a 3-member converge on fresh lab hosts, then a no-op re-run.

    .venv/bin/python benchmarks/etcd_converge.py [--name bench-etcd] [--keep]

Starts its own lab (`airlock lab up --name NAME --masters 3 --workers 0`), runs
playbooks/etcd.yml twice, prints both wall-clock times and the changed count of the
second run, and removes the lab (unless --keep). Prints numbers; never passes or fails
on a stopwatch.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}")
    return elapsed, proc.stdout


def changed_total(stdout: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="bench-etcd", help="lab name (default bench-etcd)")
    parser.add_argument("--subnet", default="10.77.15.0/24", help="lab subnet")
    parser.add_argument("--keep", action="store_true", help="keep the lab afterwards")
    args = parser.parse_args()

    env = {
        **os.environ,
        "CONTAINERS_CONF": str(ROOT / ".airlock" / "containers.conf"),
    }
    inventory = ROOT / ".airlock" / "labs" / args.name / "inventory"
    lab = [str(BIN / "airlock"), "lab"]
    playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/etcd.yml"]
    try:
        up, _ = run(
            [
                *lab,
                "up",
                "--name",
                args.name,
                "--masters",
                "3",
                "--workers",
                "0",
                "--subnet",
                args.subnet,
            ],
            env,
        )
        print(f"lab up (3 hosts):          {up:7.1f} s")
        converge, _ = run(playbook, env)
        print(f"etcd converge (3 members): {converge:7.1f} s")
        rerun, out = run(playbook, env)
        print(f"etcd no-op re-run:         {rerun:7.1f} s  (changed={changed_total(out)})")
        print(f"load average now:          {os.getloadavg()[0]:7.2f} on {os.cpu_count()} CPUs")
    finally:
        if not args.keep:
            subprocess.run(
                [*lab, "down", "--name", args.name],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=False,
            )


if __name__ == "__main__":
    main()
