"""`airlock node remove` refuses what would break the cluster and touches only what it must."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from airlock.inventory.load import load_inventory
from airlock.nodes import remove_plan
from tests.conftest import run_airlock
from tests.inventory_factory import BASE, write_inventory


def _inventory(tmp_path: Path, extra: dict[str, str] | None = None):
    hosts = copy.deepcopy(BASE)
    for n, (name, groups) in enumerate((extra or {}).items()):
        ip = f"192.0.2.{40 + n}"
        hosts["all"]["hosts"][name] = {"ip": ip, "ansible_host": ip}
        for group in groups.split(","):
            hosts["all"]["children"][group]["hosts"][name] = None
    return load_inventory(write_inventory(tmp_path, hosts))


def test_a_worker_touches_itself_the_first_control_plane_and_one_etcd_member(
    tmp_path: Path,
) -> None:
    plan, problems = remove_plan(_inventory(tmp_path), ["w2"], dead=False)
    assert problems == [] and plan is not None
    assert plan.limit == ["w2", "m1"]


def test_a_dead_host_is_not_in_the_run(tmp_path: Path) -> None:
    plan, _ = remove_plan(_inventory(tmp_path), ["w2"], dead=True)
    assert plan is not None and plan.dead and plan.limit == ["m1"]


def test_a_control_plane_also_touches_the_load_balancers_that_stay(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, {"m4": "kube_control_plane,etcd,lb"})
    plan, problems = remove_plan(inv, ["m4"], dead=False)
    assert problems == [] and plan is not None
    assert plan.limit == ["m4", "m1", "m2", "m3"]
    dead, _ = remove_plan(inv, ["m3"], dead=True)
    assert dead is not None and dead.limit == ["m1", "m2", "m4"]


@pytest.mark.parametrize(
    ("hosts", "words"),
    [
        (["w9"], "host w9: is not in inventory"),
        (["m1"], "host m1: is the first control plane (kubernetes_init_host)"),
        (["m2", "m3"], "m2, m3 are etcd members, which leave one per run"),
    ],
)
def test_removals_that_would_break_the_cluster_are_refused(
    tmp_path: Path, hosts: list[str], words: str
) -> None:
    plan, problems = remove_plan(_inventory(tmp_path), hosts, dead=False)
    assert plan is None and any(words in str(p) for p in problems), problems


def test_the_bundle_host_and_the_last_load_balancer_stay(tmp_path: Path) -> None:
    hosts = copy.deepcopy(BASE)
    hosts["all"]["children"]["bundle_host"]["hosts"] = {"w1": None}
    hosts["all"]["children"]["lb"]["hosts"] = {"w2": None}
    inv = load_inventory(write_inventory(tmp_path, hosts))
    _, problems = remove_plan(inv, ["w1"], dead=False)
    assert "is the bundle host" in str(problems[0])
    _, problems = remove_plan(inv, ["w2"], dead=False)
    assert "leaves no load balancer" in str(problems[0])


def test_a_ceph_host_is_neither_removed_nor_reset_before_it_is_drained(tmp_path: Path) -> None:
    from airlock.nodes import reset_problems

    hosts = copy.deepcopy(BASE)
    hosts["all"]["children"]["ceph"] = {"hosts": {"w2": None}}
    inv = load_inventory(write_inventory(tmp_path, hosts))
    plan, problems = remove_plan(inv, ["w2"], dead=False)
    assert plan is None
    assert [str(p).split(":")[0] for p in problems] == ["host w2"]
    assert "is a Ceph host (group ceph)" in str(problems[0])
    assert "ceph osd purge" in str(problems[0])
    assert "is a Ceph host" in str(reset_problems(inv, ["w2"])[0])
    # Out of group ceph (drained), it leaves like any worker.
    del hosts["all"]["children"]["ceph"]
    inv = load_inventory(write_inventory(tmp_path / "drained", hosts))
    assert remove_plan(inv, ["w2"], dead=False)[1] == []
    assert reset_problems(inv, ["w2"]) == []


def test_the_last_registry_host_stays_while_nodes_pull_from_its_mirror(tmp_path: Path) -> None:
    from tests.inventory_factory import base

    hosts, group_vars = base()
    hosts["all"]["children"]["registry"] = {"hosts": {"w2": None}}
    mirrored = load_inventory(
        write_inventory(
            tmp_path / "mirror", hosts, {**group_vars, "airlock_image_source": "registry"}
        )
    )
    plan, problems = remove_plan(mirrored, ["w2"], dead=False)
    assert plan is None
    assert "leaves no registry host, and airlock_image_source is registry" in str(problems[0])
    # Importing images, the registry host leaves like any worker.
    imported = load_inventory(write_inventory(tmp_path / "import", hosts, group_vars))
    assert remove_plan(imported, ["w2"], dead=False)[1] == []


def test_the_cli_asks_for_confirmation_then_names_the_problem(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv")
    unconfirmed = run_airlock("node", "remove", "-i", str(inventory), "w2")
    assert unconfirmed.returncode == 2 and "add --yes to confirm" in unconfirmed.stderr
    refused = run_airlock("node", "remove", "-i", str(inventory), "m1", "--yes")
    assert refused.returncode == 1
    assert "host m1: is the first control plane" in refused.stderr
    assert "nothing was changed" in refused.stderr and "Traceback" not in refused.stderr
