"""Render the monitoring role's prometheus.yml through Ansible (render.yml, the roles' own
defaults and vars) for inventories with and without Ceph managers: the `ceph` job scrapes
exactly the managers (ceph_mgr, true unless set false) not being removed, each at its own
ip and ceph_mgr_prometheus_port, over plain HTTP, and ceph.rules.yml is installed with it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.playbook import run_playbook

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).with_name("render.yml")
MONITORING = {"w1": "10.77.40.21"}
CEPH = {"c1": "10.77.40.31", "c2": "10.77.40.32", "c3": "10.77.40.33", "c4": "10.77.40.34"}


def render(
    tmp_path: Path,
    ceph: dict[str, dict[str, Any]] | None,
    ceph_group_vars: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[dict[str, Any], list[str]]:
    """Run render.yml; return w1's prometheus.yml and the rule files the role installs."""
    hosts = {
        h: {"ip": ip, "ansible_python_interpreter": sys.executable} for h, ip in MONITORING.items()
    }
    children: dict[str, Any] = {"monitoring": {"hosts": dict.fromkeys(MONITORING)}}
    if ceph is not None:
        hosts |= {h: {"ip": CEPH[h], **hvars} for h, hvars in ceph.items()}
        children["ceph"] = {"hosts": dict.fromkeys(ceph), "vars": ceph_group_vars or {}}
    inventory = {"all": {"hosts": hosts, "children": children}}
    variables = {
        "render_dir": str(tmp_path / "out"),
        "airlock_credentials_dir": str(tmp_path / "credentials"),
        **extra,
    }
    run_playbook(PLAYBOOK, tmp_path, inventory, variables)
    out = tmp_path / "out" / "w1"
    config = yaml.safe_load((out / "prometheus.yml").read_text())
    return config, json.loads((out / "rule_files.json").read_text())


def jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names)), f"a job name repeats: {names}"
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.fixture(scope="module")
def with_ceph(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    # c1 a manager by default, its port from the group; c2 no manager (a string, as an
    # inventory may write it); c3 a manager with a port of its own; c4 a manager being removed.
    return render(
        tmp_path_factory.mktemp("with-ceph"),
        ceph={
            "c1": {},
            "c2": {"ceph_mgr": "false"},
            "c3": {"ceph_mgr": True, "ceph_mgr_prometheus_port": 9384},
            "c4": {},
        },
        ceph_group_vars={"ceph_mgr_prometheus_port": 9290},
        airlock_remove_hosts=["c4"],
    )


@pytest.fixture(scope="module")
def without_ceph(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    return render(tmp_path_factory.mktemp("without-ceph"), ceph=None)


def test_ceph_job_scrapes_each_manager_at_its_ip_and_port(with_ceph) -> None:
    config, rule_files = with_ceph
    job = jobs(config)["ceph"]
    assert job["static_configs"] == [
        {"targets": ["10.77.40.31:9290"], "labels": {"instance": "c1"}},
        {"targets": ["10.77.40.33:9384"], "labels": {"instance": "c3"}},
    ]
    # Plain HTTP (Pacific's module has no TLS), the default path /metrics.
    assert set(job) == {"job_name", "static_configs"}
    assert "ceph.rules.yml" in rule_files


def test_node_exporter_runs_on_every_ceph_host_not_being_removed(with_ceph) -> None:
    targets = {
        c["labels"]["instance"]: c["targets"] for c in jobs(with_ceph[0])["node"]["static_configs"]
    }
    assert targets == {
        "w1": ["10.77.40.21:9100"],
        "c1": ["10.77.40.31:9100"],
        "c2": ["10.77.40.32:9100"],
        "c3": ["10.77.40.33:9100"],
    }


def test_the_default_port_is_the_ceph_roles(tmp_path: Path) -> None:
    ceph_defaults = yaml.safe_load((REPO / "roles/ceph/defaults/main.yml").read_text())
    config, _ = render(tmp_path, ceph={"c1": {}})
    assert jobs(config)["ceph"]["static_configs"] == [
        {
            "targets": [f"10.77.40.31:{ceph_defaults['ceph_mgr_prometheus_port']}"],
            "labels": {"instance": "c1"},
        }
    ]


def test_no_ceph_job_without_ceph_hosts(with_ceph, without_ceph) -> None:
    config, rule_files = without_ceph
    assert "ceph" not in jobs(config)
    assert "ceph.rules.yml" not in rule_files
    # Besides the ceph job, Ceph hosts only add their node_exporter to the node job.
    others = {k: v for k, v in jobs(with_ceph[0]).items() if k not in ("ceph", "node")}
    assert others == {k: v for k, v in jobs(config).items() if k != "node"}
    assert [f for f in with_ceph[1] if f != "ceph.rules.yml"] == rule_files


def test_no_ceph_job_when_no_ceph_host_runs_a_manager(tmp_path: Path) -> None:
    config, rule_files = render(
        tmp_path, ceph={"c1": {"ceph_mgr": False}, "c2": {"ceph_mgr": "no"}, "c3": {}},
        airlock_remove_hosts=["c3"],
    )  # fmt: skip
    assert "ceph" not in jobs(config)
    assert "ceph.rules.yml" not in rule_files
