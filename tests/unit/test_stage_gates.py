"""Every gated play of airlock's playbooks is complete: the gate reads role airlock's
airlock_stage_skip, so the play must run that role, and a gate without its record would
never skip (a first run found the etcd client play without role airlock)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _plays() -> list[tuple[str, dict]]:
    plays = []
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()) or []:
            if isinstance(play, dict) and "hosts" in play:
                plays.append((f"{path.name}: {play.get('name')}", play))
    return plays


def _imports(tasks: list[dict] | None) -> list[str]:
    return [t.get("ansible.builtin.import_tasks", "") for t in tasks or []]


GATED = [
    (name, play)
    for name, play in _plays()
    if "tasks/stage_gate.yml" in _imports(play.get("pre_tasks"))
]


def test_there_are_gated_plays() -> None:
    assert len(GATED) >= 15


@pytest.mark.parametrize(("name", "play"), GATED, ids=[n for n, _ in GATED])
def test_a_gated_play_runs_role_airlock_and_records_what_it_left(name: str, play: dict) -> None:
    roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
    assert "airlock" in roles, f"{name}: the gate needs role airlock (airlock_stage_skip)"
    assert _imports(play.get("post_tasks")) == ["tasks/stage_record.yml"], name
    stage = play["vars"]["_airlock_stage"]
    assert set(stage) <= {
        "name",
        "roles",
        "paths",
        "exclude",
        "services",
        "probes",
        "controller_paths",
        "renew",
        "cluster",
    }, name


def test_stage_names_are_unique() -> None:
    names = [play["vars"]["_airlock_stage"]["name"] for _, play in GATED]
    assert len(names) == len(set(names)), names
