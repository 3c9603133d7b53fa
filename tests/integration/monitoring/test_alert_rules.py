"""The monitoring stack's alerting rules, checked and unit-tested by the promtool we ship.

- airlock's own rules (roles/monitoring/files/rules) pass `promtool check rules`, and
  every alert in them has a `promtool test rules` case (rules/*.test.yml) that shows it
  firing with its labels and rendered annotations, and a later one that shows it resolved;
- the upstream mixins render (airlock/bundle/build/mixins.py, from the Go module proxy)
  into rule files promtool accepts, without the alerts airlock's own rules replace.

promtool is the one the lab bundle builds (Prometheus' module, airlock.lab.bundle), built
here on first use into the lab cache (a few minutes cold; cached afterwards).
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from airlock.bundle.build import mixins
from airlock.paths import state_dir

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "monitoring" / "files" / "rules"
TESTS = Path(__file__).resolve().parent / "rules"


def _alerts(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _run(cmd: list[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_rule_files_are_valid(promtool: Path) -> None:
    files = sorted(RULES.glob("*.rules.yml"))
    assert files
    proc = _run([promtool, "check", "rules", *files], ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", sorted(TESTS.glob("*.test.yml")), ids=lambda p: p.stem)
def test_promtool_unit_tests(promtool: Path, test_file: Path) -> None:
    proc = _run([promtool, "test", "rules", test_file.name], TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_fires_and_resolves_in_a_test() -> None:
    """Each alert of ours has a test case with an eval that expects it firing and a later
    eval that expects it gone."""
    shown: set[str] = set()
    for test_file in TESTS.glob("*.test.yml"):
        doc = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        for case in doc["tests"]:
            fired: dict[str, float] = {}
            for check in sorted(case.get("alert_rule_test", []), key=_eval_time):
                name, when = check["alertname"], _eval_time(check)
                if check.get("exp_alerts"):
                    fired.setdefault(name, when)
                elif name in fired and when > fired[name]:
                    shown.add(name)
    missing = [
        f"{alert} ({path.name})"
        for path in sorted(RULES.glob("*.rules.yml"))
        for alert in _alerts(path)
        if alert not in shown
    ]
    assert not missing, "no test case shows these firing, then resolved: " + ", ".join(missing)


def test_upstream_mixins_render_and_check(promtool: Path, tmp_path: Path) -> None:
    bundle_file = mixins.render_bundle_file(state_dir() / "cache" / "bundle" / "mixins")
    with tarfile.open(bundle_file) as tar:
        tar.extractall(tmp_path, filter="data")
    files = sorted(tmp_path.glob("*.rules.yml"))
    assert {f.name for f in files} == {f"{m.name}.rules.yml" for m in mixins.MIXINS}
    proc = _run([promtool, "check", "rules", *files], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    upstream = {a for f in files for a in _alerts(f)}
    ours = {a for f in RULES.glob("*.rules.yml") for a in _alerts(f)}
    left_out = {a for m in mixins.MIXINS for a in m.exclude}
    assert not upstream & left_out, "an alert airlock's rules replace is still rendered"
    assert not upstream & ours, "an alert name is both upstream's and ours"
    # The sets that matter most are there.
    assert {"NodeFilesystemSpaceFillingUp", "PrometheusBadConfig", "etcdGRPCRequestsSlow"} <= (
        upstream
    )


def _eval_time(check: dict[str, str]) -> float:
    duration = check["eval_time"]
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(duration[:-1]) * units[duration[-1]]
