"""`airlock check` refuses a bad inventory at once, with one actionable line, touching no host.

The inventories point at TEST-NET-1 addresses (192.0.2.0/24) where nothing answers: had
the check tried SSH, it would have waited for the connect timeout and written a run
directory. Neither happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_airlock
from tests.inventory_factory import base, write_inventory
from tests.unit.test_inventory_rules import (
    _four_etcd,
    _no_ip,
    _pod_overlaps_service,
    _same_ip,
    _typo_group,
    _vip_is_host,
)

CASES = {
    "4 etcd members": (_four_etcd, "group etcd: has 4 members"),
    "two hosts with one ip": (_same_ip, "host m2: has ip 192.0.2.11, the same as m1"),
    "vip equals a host ip": (_vip_is_host, "airlock_api_vip: 192.0.2.12 is the ip of host m2"),
    "pod cidr overlaps service cidr": (
        _pod_overlaps_service,
        "airlock_pod_cidr: 10.96.0.0/16 overlaps airlock_service_cidr",
    ),
    "group kube_contol_plane": (_typo_group, "did you mean `kube_control_plane`?"),
    "host without ip": (_no_ip, "host w1: has no `ip`"),
}


def _runs() -> set[str]:
    runs = ROOT / ".airlock" / "runs"
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_check_fails_fast_without_contacting_hosts(tmp_path: Path, case: str) -> None:
    mutate, expected = CASES[case]
    hosts, gvars = base()
    mutate(hosts, gvars)
    inventory = write_inventory(tmp_path / "inv", hosts, gvars)
    runs_before = _runs()
    proc = run_airlock("check", "-i", str(inventory), timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line.strip() for line in proc.stderr.splitlines() if expected in line]
    assert len(lines) == 1, proc.stderr
    what, _, fix = lines[0].partition("; ")
    assert what and fix, f"problem line must say what and how to fix: {lines[0]}"
    assert "no host was contacted" in proc.stderr
    assert _runs() == runs_before, "a run directory was written: a host was contacted"
    # How fast it answers is measured by benchmarks/lab_and_check.py, not asserted here:
    # a stopwatch in a test fails on a busy machine, not on a slow check.


def test_deploy_refuses_a_bad_inventory_before_touching_hosts(tmp_path: Path) -> None:
    hosts, gvars = base()
    _four_etcd(hosts, gvars)
    inventory = write_inventory(tmp_path / "inv", hosts, gvars)
    runs_before = _runs()
    proc = run_airlock("deploy", "-i", str(inventory), timeout=60)
    assert proc.returncode == 1
    assert "group etcd: has 4 members" in proc.stderr
    assert _runs() == runs_before
