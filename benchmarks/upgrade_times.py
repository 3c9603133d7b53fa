#!/usr/bin/env python3
"""Upgrade time per node and in all, from the events of `airlock upgrade` runs.

    .venv/bin/python benchmarks/upgrade_times.py [RUN_DIR ...]

Reads .airlock/runs/*-upgrade/events.jsonl (default: the newest run) and prints, per node,
the seconds from its upgrade mark to the mark's removal (drain, kubeadm, kubelet restart,
Ready, uncordon), and each run's wall time. `make e2e-upgrade` prints the same figures for
its runs. Prints numbers; never passes or fails on a stopwatch.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST = "Mark the node as being upgraded (a resumed run finishes it)"
LAST = "Clear the node's upgrade mark"


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def node_times(run_dir: Path) -> dict[str, float]:
    """Host -> seconds from its upgrade mark to the mark's removal (finished nodes only)."""
    started: dict[str, datetime] = {}
    done: dict[str, float] = {}
    for event in _events(run_dir):
        data = event.get("event_data") or {}
        host, task = data.get("host"), data.get("task")
        when = datetime.fromisoformat(event["created"])
        if event.get("event") == "runner_on_start" and task == FIRST and host:
            started.setdefault(host, when)
        if event.get("event") == "runner_on_ok" and task == LAST and host in started:
            done[host] = (when - started[host]).total_seconds()
    return done


def wall_time(run_dir: Path) -> float:
    summary = run_dir / "summary.json"
    return float(json.loads(summary.read_text()).get("elapsed_s", 0)) if summary.is_file() else 0


def main(argv: list[str]) -> int:
    runs = [Path(a) for a in argv] or sorted((ROOT / ".airlock" / "runs").glob("*-upgrade"))[-1:]
    if not runs:
        print("no upgrade run in .airlock/runs; run `airlock upgrade` first", file=sys.stderr)
        return 1
    for run in runs:
        times = node_times(run)
        print(f"{run.name}: {wall_time(run):.0f}s in all, {len(times)} node(s) upgraded")
        for host, seconds in times.items():
            print(f"  {host:<12} {seconds:6.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
