"""Where a run's time went (airlock.timings): per play, and whether its stage gate ended it."""

from __future__ import annotations

from typing import Any

from airlock.timings import GATE_TASK, plays, slowest_tasks


def _event(kind: str, second: int, **data: Any) -> dict[str, Any]:
    return {"event": kind, "created": f"2026-12-04T10:00:{second:02d}+00:00", "event_data": data}


EVENTS = [
    _event("playbook_on_play_start", 0, play="External etcd cluster"),
    _event("playbook_on_task_start", 0, task="Compare each host with what this stage left"),
    _event("runner_on_ok", 1, task="Compare each host with what this stage left"),
    _event("playbook_on_task_start", 1, task=GATE_TASK),
    _event("playbook_on_play_start", 2, play="HA API endpoint"),
    _event("playbook_on_task_start", 2, task="Compare each host with what this stage left"),
    _event("playbook_on_task_start", 3, task=GATE_TASK),
    _event("runner_on_skipped", 3, task=GATE_TASK),
    _event("playbook_on_task_start", 3, task="Check the cluster-wide settings", role="airlock"),
    _event("runner_on_ok", 4, task="Check the cluster-wide settings", role="airlock"),
    _event("playbook_on_task_start", 4, task="Write haproxy.cfg", role="loadbalancer"),
    _event("runner_on_ok", 12, task="Write haproxy.cfg", role="loadbalancer"),
    _event("playbook_on_stats", 13),
]


def test_a_play_its_gate_ended_is_told_from_one_that_ran() -> None:
    etcd, lb = plays(EVENTS)
    assert (etcd.name, etcd.seconds, etcd.tasks, etcd.skipped_by_gate) == (
        "External etcd cluster",
        2.0,
        2,
        True,
    )
    assert (lb.seconds, lb.tasks, lb.skipped_by_gate) == (11.0, 4, False)
    assert lb.roles == {"airlock", "loadbalancer"}


def test_the_slowest_task_comes_first() -> None:
    assert slowest_tasks(EVENTS, 1) == [(9.0, "loadbalancer: Write haproxy.cfg")]


def test_a_play_skipped_by_the_when_of_its_import_is_not_reported_as_gated() -> None:
    # registry.yml imports the pull secret's play with a `when` that is false before the
    # kubernetes stage: every task, the gate's too, is skipped and no role runs.
    events = [
        _event("playbook_on_play_start", 0, play="Give workloads the registries' pull credentials"),
        _event("playbook_on_task_start", 0, task="Compare each host with what this stage left"),
        _event("runner_on_skipped", 0, task="Compare each host with what this stage left"),
        _event("playbook_on_task_start", 1, task=GATE_TASK),
        _event("runner_on_skipped", 1, task=GATE_TASK),
        _event("playbook_on_task_start", 1, task="Check the cluster-wide settings", role="airlock"),
        _event("runner_on_skipped", 1, task="Check the cluster-wide settings", role="airlock"),
        _event("playbook_on_stats", 2),
    ]
    (play,) = plays(events)
    assert not play.skipped_by_gate
