"""Scripts and tests find a deploy's summary.json from the CLI's own output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.runner import (
    RUN_DIR_LINE,
    _scrub_environment,
    facts_dir,
    failure_message,
    summary_from_output,
)


def test_summary_is_read_from_the_run_directory_the_output_names(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for run, changed in ((old, 3), (new, 0)):
        run.mkdir()
        (run / "summary.json").write_text(json.dumps({"stats": {"m1": {"changed": changed}}}))
    output = (
        f"site.yml succeeded; {RUN_DIR_LINE}{old}\n...\nsite.yml succeeded; {RUN_DIR_LINE}{new}\n"
    )
    assert summary_from_output(output)["stats"]["m1"]["changed"] == 0


def test_output_without_a_run_directory_is_an_error() -> None:
    with pytest.raises(AirlockError, match="names no run directory"):
        summary_from_output("inventory problems; no host was contacted\n")


def test_each_inventory_has_its_own_fact_cache(tmp_path: Path) -> None:
    lab_a = tmp_path / "a" / "inventory"
    lab_b = tmp_path / "b" / "inventory"
    assert facts_dir(lab_a) != facts_dir(lab_b)
    assert facts_dir(lab_a) == facts_dir(tmp_path / "a" / ".." / "a" / "inventory")


def test_a_failed_loop_is_explained_by_its_first_failed_item() -> None:
    res = {
        "msg": "One or more items failed",
        "failed": True,
        "results": [
            {"item": "m1", "failed": False, "msg": ""},
            {"item": "m2", "failed": True, "msg": "refusing to remove: quorum needs 2"},
        ],
    }
    assert failure_message(res) == "refusing to remove: quorum needs 2"


def test_the_callers_environment_is_not_kept_in_the_run_directory(tmp_path: Path) -> None:
    command = tmp_path / "artifacts" / "abc" / "command"
    command.parent.mkdir(parents=True)
    command.write_text(json.dumps({"command": ["ansible-playbook"], "env": {"TOKEN": "s3cr3t"}}))
    _scrub_environment(tmp_path)
    assert "s3cr3t" not in command.read_text()
    assert json.loads(command.read_text())["env"] == ["TOKEN"]
