"""airlock's Grafana dashboards (roles/monitoring/files/dashboards): valid dashboards whose
every panel queries Prometheus through the `datasource` variable, installed by the role.
make e2e-monitoring runs every panel's query against the lab's Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "roles" / "monitoring" / "files" / "dashboards").glob("*.json"))


def test_the_role_installs_every_dashboard_file() -> None:
    role_vars = yaml.safe_load((ROOT / "roles" / "monitoring" / "vars" / "main.yml").read_text())
    assert sorted(role_vars["_monitoring_dashboards"]) == [p.name for p in DASHBOARDS]
    assert len(DASHBOARDS) == 4


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_panels_query_prometheus(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"] == path.stem and board["title"].startswith("airlock / ")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{path.name}: {panel['title']!r} has an empty query"
            assert target["datasource"]["uid"] == "${datasource}"
