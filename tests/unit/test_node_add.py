"""`airlock node add` touches the new hosts and only what must change elsewhere."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from airlock.inventory.load import load_inventory
from airlock.nodes import CONTROL_PLANE_TAGS, ETCD_PHASE_TAGS, add_plan
from tests.inventory_factory import BASE, write_inventory


def _inventory(tmp_path: Path, extra: dict[str, dict[str, str]] | None = None):
    hosts = copy.deepcopy(BASE)
    for name, group in (extra or {}).items():
        hosts["all"]["hosts"][name] = {"ip": "192.0.2.30", "ansible_host": "192.0.2.30"}
        for g in group.split(","):
            hosts["all"]["children"][g]["hosts"][name] = None
    return load_inventory(write_inventory(tmp_path, hosts))


def test_a_worker_touches_itself_and_the_first_control_plane(tmp_path: Path) -> None:
    plan, problems = add_plan(_inventory(tmp_path), ["w2"])
    assert problems == [] and plan is not None
    assert plan.limit == ["w2", "m1"]
    assert plan.skip_tags == sorted([*ETCD_PHASE_TAGS, *CONTROL_PLANE_TAGS, "bundle_server"])


def test_a_control_plane_also_touches_the_load_balancers(tmp_path: Path) -> None:
    plan, _ = add_plan(_inventory(tmp_path, {"m4": "kube_control_plane,lb"}), ["m4"])
    assert plan is not None and plan.limit == ["m4", "m1", "m2", "m3"]
    assert plan.skip_tags == sorted([*ETCD_PHASE_TAGS, "bundle_server"])


def test_an_etcd_member_runs_the_etcd_stage_on_the_whole_group(tmp_path: Path) -> None:
    plan, _ = add_plan(_inventory(tmp_path, {"m4": "kube_control_plane,etcd"}), ["m4"])
    assert plan is not None and plan.limit == ["m4", "m1", "m2", "m3"]
    assert plan.skip_tags == ["bundle_server"]


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("w9", "host w9: is not in inventory"),
        ("m1", "host m1: is the first control plane"),
    ],
)
def test_hosts_that_cannot_be_added_are_named(tmp_path: Path, host: str, words: str) -> None:
    plan, problems = add_plan(_inventory(tmp_path), [host])
    assert plan is None and len(problems) == 1 and str(problems[0]).startswith(words)


def test_a_host_in_no_node_group_is_refused(tmp_path: Path) -> None:
    plan, problems = add_plan(_inventory(tmp_path, {"x1": "bundle_host"}), ["x1"])
    assert plan is None
    assert "is in neither kube_node nor kube_control_plane" in str(problems[0])
