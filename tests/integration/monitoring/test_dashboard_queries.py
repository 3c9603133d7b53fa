"""Every query of airlock's Grafana dashboards is PromQL that Prometheus' own parser
accepts: promtool checks them as recording rules. (make e2e-monitoring runs them against
the lab's Prometheus and wants data from each.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "roles" / "monitoring" / "files" / "dashboards").glob("*.json"))
# Grafana's own variables, as Grafana would substitute them.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s"}


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with Grafana's variables substituted)."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                found.append((path.name, panel["title"], expr))
    return found


def test_every_dashboard_query_parses(promtool: Path, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"airlock:dashboard_query:{i}", "expr": expr}
                    for i, (_, _, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
