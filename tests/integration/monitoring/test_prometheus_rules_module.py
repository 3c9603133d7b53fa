"""Module prometheus_rules: rule files installed only after promtool accepts them all."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.modules import prometheus_rules

from tests.module_harness import ModuleFailed, run_module

RULE = """groups:
  - name: g
    rules:
      - alert: Slow
        expr: up == 0
        for: 15m
        labels: {severity: warning}
      - alert: Quick
        expr: up == 0
        for: 5s
"""


def _params(tmp_path: Path, promtool: Path, **extra: object) -> dict:
    return {
        "sources": [{"path": str(tmp_path / "src"), "prefix": "airlock"}],
        "dest": str(tmp_path / "rules"),
        "promtool": str(promtool),
        **extra,
    }


@pytest.fixture
def src(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.yml").write_text(RULE)
    return tmp_path / "src"


def test_installs_caps_and_then_changes_nothing(tmp_path, promtool, src):
    result = run_module(prometheus_rules, _params(tmp_path, promtool, for_max="30s"))
    assert result["changed"] and result["files"] == ["airlock-a.yml"] and result["capped"] == 1
    text = (tmp_path / "rules" / "airlock-a.yml").read_text()
    assert "for: 30s" in text and "for: 5s" in text and "15m" not in text
    again = run_module(prometheus_rules, _params(tmp_path, promtool, for_max="30s"))
    assert not again["changed"]
    # Without the cap, the rule as written comes back.
    plain = run_module(prometheus_rules, _params(tmp_path, promtool))
    assert plain["changed_files"] == ["airlock-a.yml"]
    assert "for: 15m" in (tmp_path / "rules" / "airlock-a.yml").read_text()


def test_a_rule_promtool_refuses_changes_nothing(tmp_path, promtool, src):
    run_module(prometheus_rules, _params(tmp_path, promtool))
    before = (tmp_path / "rules" / "airlock-a.yml").read_text()
    (src / "b.yml").write_text(RULE.replace("up == 0", "up ==", 1))
    with pytest.raises(ModuleFailed, match="promtool refused the rules; nothing was installed"):
        run_module(prometheus_rules, _params(tmp_path, promtool))
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == ["airlock-a.yml"]
    assert (tmp_path / "rules" / "airlock-a.yml").read_text() == before


def test_stale_files_go_and_check_mode_writes_nothing(tmp_path, promtool, src):
    run_module(prometheus_rules, _params(tmp_path, promtool))
    (tmp_path / "rules" / "old.yml").write_text(RULE)
    checked = run_module(prometheus_rules, _params(tmp_path, promtool), check_mode=True)
    assert checked["changed"] and checked["changed_files"] == ["old.yml"]
    assert (tmp_path / "rules" / "old.yml").exists()
    run_module(prometheus_rules, _params(tmp_path, promtool))
    assert not (tmp_path / "rules" / "old.yml").exists()


def test_a_bad_for_max_is_one_line(tmp_path, promtool, src):
    with pytest.raises(ModuleFailed, match="for_max: not a Prometheus duration: '10 minutes'"):
        run_module(prometheus_rules, _params(tmp_path, promtool, for_max="10 minutes"))


def test_durations():
    assert prometheus_rules.duration_seconds("1h30m") == 5400
    assert prometheus_rules.duration_seconds("'5m'") == 300
    with pytest.raises(ValueError):
        prometheus_rules.duration_seconds("5 m")


def test_only_the_files_named(tmp_path, promtool, src):
    (src / "b.yml").write_text(RULE)
    params = _params(tmp_path, promtool)
    params["sources"][0]["files"] = ["b.yml"]
    assert run_module(prometheus_rules, params)["files"] == ["airlock-b.yml"]
