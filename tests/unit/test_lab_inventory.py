"""The lab's inventory: an odd etcd membership whatever the number of masters, and the
monitoring, registry and ceph hosts `lab up --monitoring`, `--registry` and `--ceph` name."""

from __future__ import annotations

import pytest

from airlock.lab.inventory import inventory_data
from airlock.lab.spec import LabSpec


@pytest.mark.parametrize(("masters", "etcd"), [(1, 1), (3, 3), (4, 3), (5, 5)])
def test_etcd_gets_an_odd_number_of_the_masters(masters: int, etcd: int) -> None:
    groups = inventory_data(LabSpec(name="t", masters=masters, workers=1))["all"]["children"]
    assert list(groups["etcd"]["hosts"]) == [f"m{i}" for i in range(1, etcd + 1)]
    assert list(groups["kube_control_plane"]["hosts"]) == [f"m{i}" for i in range(1, masters + 1)]
    assert list(groups["lb"]["hosts"]) == list(groups["kube_control_plane"]["hosts"])


def test_monitoring_hosts_go_to_the_monitoring_group() -> None:
    groups = inventory_data(LabSpec(name="t", workers=2, monitoring=("w1", "w2")))["all"][
        "children"
    ]
    assert list(groups["monitoring"]["hosts"]) == ["w1", "w2"]
    assert groups["monitoring"]["hosts"]["w1"] is None  # membership only, no host vars
    assert inventory_data(LabSpec(name="t"))["all"]["children"]["monitoring"] == {"hosts": {}}


def test_an_unknown_monitoring_host_is_refused_in_one_line(tmp_path) -> None:
    from airlock.errors import AirlockError

    with pytest.raises(AirlockError) as err:
        LabSpec(name="t", workers=1, monitoring=("w1", "w2"), inventory_dir=tmp_path)
    assert str(err.value) == (
        "--monitoring w1,w2: w2 is not a host of this lab (m1, m2, m3, w1); give some of "
        "them, e.g. --monitoring w1,w2"
    )


def test_registry_hosts_go_to_the_registry_group_with_distribution() -> None:
    from pathlib import Path

    from airlock.lab.inventory import group_vars

    spec = LabSpec(name="t", masters=1, workers=1, registry=("m1",))
    groups = inventory_data(spec)["all"]["children"]
    assert groups["registry"] == {"hosts": {"m1": None}}
    assert inventory_data(LabSpec(name="t"))["all"]["children"]["registry"] == {"hosts": {}}
    # Harbor cannot run in the lab: the lab's registry hosts run Debian's docker-registry.
    assert group_vars(spec, Path("k"), Path("kh"))["registry_impl"] == "distribution"


def test_an_unknown_registry_host_is_refused_in_one_line(tmp_path) -> None:
    from airlock.errors import AirlockError

    with pytest.raises(AirlockError) as err:
        LabSpec(name="t", workers=1, registry=("r1",), inventory_dir=tmp_path)
    assert str(err.value) == (
        "--registry r1: r1 is not a host of this lab (m1, m2, m3, w1); give some of them, "
        "e.g. --registry m1"
    )


@pytest.mark.parametrize(
    ("ceph", "monitors", "copies"),
    [(("m1",), ["m1"], 1), (("w1", "w2"), ["w1"], 2), (("m1", "m2", "m3"), ["m1", "m2", "m3"], 3)],
)
def test_ceph_hosts_get_an_osd_each_and_monitors_on_an_odd_number(
    ceph: tuple[str, ...], monitors: list[str], copies: int
) -> None:
    from pathlib import Path

    from airlock.lab.inventory import group_vars

    spec = LabSpec(name="t", workers=2, ceph=ceph)
    hosts = inventory_data(spec)["all"]["children"]["ceph"]["hosts"]
    assert list(hosts) == list(ceph)
    assert [h for h, v in hosts.items() if (v or {}).get("ceph_mon", True)] == monitors
    gvars = group_vars(spec, Path("k"), Path("kh"))
    assert gvars["ceph_allow_lab_osds"] is True
    assert [d["mode"] for d in gvars["ceph_osd_devices"]] == ["lab-file"]
    assert gvars["ceph_pool_default_size"] == copies
    # Size 1 only with Ceph's explicit permission; larger pools need no such override.
    assert gvars["ceph_conf_overrides"]["global"].get("mon_allow_pool_size_one", False) is (
        copies == 1
    )


def test_a_lab_without_ceph_sets_no_ceph_variable() -> None:
    from pathlib import Path

    from airlock.lab.inventory import group_vars

    spec = LabSpec(name="t")
    assert inventory_data(spec)["all"]["children"]["ceph"] == {"hosts": {}}
    assert not [k for k in group_vars(spec, Path("k"), Path("kh")) if k.startswith("ceph_")]


@pytest.mark.parametrize(
    "shape",
    [
        {},
        {"ceph": ("m1",)},
        {"ceph": ("w1", "w2")},
        {"ceph": ("m1", "m2", "m3"), "registry": ("m3",), "monitoring": ("w1", "w2")},
    ],
    ids=["plain", "ceph-1", "ceph-2", "everything"],
)
def test_every_lab_shape_passes_airlock_checks_static_rules(tmp_path, shape) -> None:
    from pathlib import Path

    from airlock.inventory import load_inventory, validate
    from airlock.lab.inventory import write_inventory

    spec = LabSpec(name="t", workers=2, inventory_dir=tmp_path / "inv", **shape)
    write_inventory(spec, Path("/nonexistent/key"), Path("/nonexistent/known_hosts"))
    assert [str(p) for p in validate(load_inventory(tmp_path / "inv"))] == []
