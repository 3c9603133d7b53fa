"""Estimates of the lab's Go builds and the time left while they run."""

from __future__ import annotations

import io

import pytest

from airlock.lab.bundle import estimate
from airlock.lab.bundle.estimate import BuildClock, Item


@pytest.mark.parametrize(
    ("recorded", "table", "want"),
    [
        ({"kubelet@v1.37.2/amd64": 200.0}, {"kubelet": 300.0}, (200.0, "this machine")),
        ({"kubelet@v1.36.5/amd64": 250.0, "kubelet@v1.35.1/amd64": 210.0}, {},
         (250.0, "this machine")),
        ({"kubelet@v1.37.2/arm64": 900.0}, {"kubelet": 300.0}, (300.0, "typical")),
        ({}, {}, (estimate.UNKNOWN, "guess")),
    ],
)  # fmt: skip
def test_an_estimate_prefers_this_machines_record(recorded, table, want) -> None:
    assert estimate.estimate("kubelet", "v1.37.2", "amd64", recorded, table) == want


def test_the_shipped_table_names_every_lab_program() -> None:
    from airlock.lab.bundle import profile

    names = {t.name for t in profile.go_targets(profile.release(None))}
    table = estimate.typical()
    assert names <= set(table), sorted(names - set(table))
    assert all(seconds > 0 for seconds in table.values())


def test_time_left_follows_how_the_finished_builds_went(monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(estimate.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    items = [Item("a v1", 100.0, "typical"), Item("b v1", 100.0, "typical"),
             Item("c v1", 200.0, "typical")]  # fmt: skip
    with BuildClock(items, out, live=False) as clock:
        assert clock.left() == 400.0
        clock.start(0)
        now[0] += 200.0  # twice as slow as estimated
        clock.done(0)
        assert clock.left() == 600.0  # the rest, doubled
        clock.start(1)
        now[0] += 50.0
        assert clock.left() == 550.0
        clock.done(1, failed="go: module not found")
    lines = out.getvalue().splitlines()
    assert lines[0] == ("lab: 3 program(s) to build from Go modules: about 7 min (typical "
                        "figures; one at a time, nice 19)")  # fmt: skip
    assert lines[1] == "lab: [1/3] building a v1 (about 2 min; about 7 min left in all)"
    assert lines[2] == "lab: built a v1 in 200 s (estimated 100 s)"
    assert lines[3] == "lab: [2/3] building b v1 (about 2 min; about 10 min left in all)"
    assert lines[4] == "lab: NOT BUILT (go: module not found) b v1 in 50 s (estimated 100 s)"


def test_a_terminal_gets_a_live_bar_that_goes_away() -> None:
    out = io.StringIO()
    with BuildClock([Item("a v1", 1.0, "guess")], out, live=True) as clock:
        clock.start(0)
        clock.done(0)
    assert "lab: built a v1" in out.getvalue()
