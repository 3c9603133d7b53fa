"""Where a run's time went, from its events (`.airlock/runs/RUN/events.jsonl`).

For benchmarks and tests: seconds and tasks per play (a stage of `site.yml`), whether the
play ended at its stage gate (every host as its last run left it), and the slowest tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

GATE_TASK = "Skip this stage, every host is as its last run left it"


@dataclass
class Play:
    name: str
    seconds: float
    tasks: int
    skipped_by_gate: bool
    roles: set[str]


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["created"]).timestamp()


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    with (run_dir / "events.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plays(events: list[dict[str, Any]]) -> list[Play]:
    """Each play in order with its wall time (to the next play's start), the tasks it
    started, whether its stage gate ended it, and the roles whose tasks ran on some host."""
    out: list[Play] = []
    started: list[float] = []
    gates: list[bool] = []
    for event in events:
        data = event.get("event_data", {})
        if event["event"] == "playbook_on_play_start":
            out.append(Play(data.get("play", ""), 0.0, 0, False, set()))
            started.append(_when(event))
            gates.append(False)
        elif out and event["event"] == "playbook_on_task_start":
            out[-1].tasks += 1
            gates[-1] = gates[-1] or data.get("task") == GATE_TASK
        elif out and event["event"] == "runner_on_skipped" and data.get("task") == GATE_TASK:
            # Its condition was false (not every host converged, or the whole play was
            # skipped by a `when` of its import): the gate did not end the play.
            gates[-1] = False
        elif out and event["event"] in ("runner_on_ok", "runner_on_failed") and data.get("role"):
            out[-1].roles.add(data["role"])
    ends = [*started[1:], _when(events[-1]) if events else 0.0]
    for play, begin, stop, gate in zip(out, started, ends, gates, strict=True):
        play.seconds = stop - begin
        # The gate ended the play when no role (not even airlock's checks) ran after it.
        play.skipped_by_gate = gate and not play.roles
    return out


def slowest_tasks(events: list[dict[str, Any]], count: int = 10) -> list[tuple[float, str]]:
    """The longest tasks (to the next task's start): seconds, `role: task`."""
    starts = [e for e in events if e["event"] == "playbook_on_task_start"]
    end = _when(events[-1]) if events else 0.0
    timed = []
    for index, event in enumerate(starts):
        data = event["event_data"]
        stop = _when(starts[index + 1]) if index + 1 < len(starts) else end
        label = f"{data.get('role') or '-'}: {data.get('task', '')}"
        timed.append((stop - _when(event), label))
    return sorted(timed, reverse=True)[:count]
