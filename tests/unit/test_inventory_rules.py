"""Static inventory rules: each bad input gives one actionable line naming the problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from airlock.errors import AirlockError
from airlock.inventory import load_inventory, validate
from airlock.inventory.rules import kubelet_fields
from tests.inventory_factory import base, write_inventory

Mutation = Callable[[dict[str, Any], dict[str, Any]], None]


def _four_etcd(hosts: dict, _: dict) -> None:
    hosts["all"]["children"]["etcd"]["hosts"]["w1"] = None


def _two_etcd(hosts: dict, _: dict) -> None:
    del hosts["all"]["children"]["etcd"]["hosts"]["m3"]


def _same_ip(hosts: dict, _: dict) -> None:
    hosts["all"]["hosts"]["m2"]["ip"] = "192.0.2.11"


def _vip_is_host(_: dict, gvars: dict) -> None:
    gvars["airlock_api_vip"] = "192.0.2.12"


def _vip_outside(_: dict, gvars: dict) -> None:
    gvars["airlock_api_vip"] = "198.51.100.7"


def _no_vip(_: dict, gvars: dict) -> None:
    gvars["airlock_api_vip"] = ""


def _pod_overlaps_service(_: dict, gvars: dict) -> None:
    gvars["airlock_pod_cidr"] = "10.96.0.0/16"


def _service_contains_host(_: dict, gvars: dict) -> None:
    gvars["airlock_service_cidr"] = "192.0.0.0/8"


def _bad_cidr(_: dict, gvars: dict) -> None:
    gvars["airlock_pod_cidr"] = "10.244.0.0/33"


def _typo_group(hosts: dict, _: dict) -> None:
    children = hosts["all"]["children"]
    children["kube_contol_plane"] = children.pop("kube_control_plane")


def _no_ip(hosts: dict, _: dict) -> None:
    del hosts["all"]["hosts"]["w1"]["ip"]


def _bad_ip(hosts: dict, _: dict) -> None:
    hosts["all"]["hosts"]["w1"]["ip"] = "10.0.0.300"


def _typo_setting(_: dict, gvars: dict) -> None:
    gvars["airlock_api_vipp"] = "192.0.2.251"


def _bad_hostname(hosts: dict, _: dict) -> None:
    hosts["all"]["hosts"]["Worker_1"] = {"ip": "192.0.2.31"}
    hosts["all"]["children"]["kube_node"]["hosts"]["Worker_1"] = None


def _no_control_plane(hosts: dict, _: dict) -> None:
    hosts["all"]["children"]["kube_control_plane"]["hosts"] = {}


def _same_ports(_: dict, gvars: dict) -> None:
    gvars["airlock_api_port"] = 6443


CASES: list[tuple[str, Mutation, str]] = [
    ("four etcd members", _four_etcd, "group etcd: has 4 members; use 1, 3, 5 or 7 members"),
    ("two etcd members", _two_etcd, "group etcd: has 2 members; use 1, 3, 5 or 7"),
    (
        "two hosts, one ip",
        _same_ip,
        "host m2: has ip 192.0.2.11, the same as m1; give each host its own ip",
    ),
    (
        "vip is a host ip",
        _vip_is_host,
        "setting airlock_api_vip: 192.0.2.12 is the ip of host m2; choose",
    ),
    ("vip outside subnet", _vip_outside, "198.51.100.7 is outside the hosts' network 192.0.2.0/24"),
    (
        "no vip with 3 masters",
        _no_vip,
        "airlock_api_vip: is empty but kube_control_plane has 3 hosts",
    ),
    (
        "pod overlaps service",
        _pod_overlaps_service,
        "setting airlock_pod_cidr: 10.96.0.0/16 overlaps airlock_service_cidr 10.96.0.0/12",
    ),
    (
        "service network holds hosts",
        _service_contains_host,
        "airlock_service_cidr: 192.0.0.0/8 overlaps",
    ),
    ("invalid cidr", _bad_cidr, "setting airlock_pod_cidr: '10.244.0.0/33' is not a valid network"),
    (
        "group typo",
        _typo_group,
        "group kube_contol_plane: is not a group airlock knows; did you mean `kube_control_plane`?",
    ),
    (
        "host without ip",
        _no_ip,
        "host w1: has no `ip`; set `ip: <its cluster-network IPv4 address>`",
    ),
    ("invalid ip", _bad_ip, "host w1: ip '10.0.0.300' is not an IPv4 address"),
    (
        "setting typo",
        _typo_setting,
        "is not a setting airlock knows; did you mean `airlock_api_vip`?",
    ),
    ("invalid node name", _bad_hostname, "host Worker_1: is not a valid node name"),
    ("no control plane", _no_control_plane, "group kube_control_plane: has no host"),
    ("api port equals apiserver port", _same_ports, "setting airlock_api_port: 6443 equals"),
]


def test_valid_inventory_has_no_problem(tmp_path: Path) -> None:
    hosts, gvars = base()
    assert validate(load_inventory(write_inventory(tmp_path, hosts, gvars))) == []


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES]
)
def test_bad_inventory_is_reported(tmp_path: Path, mutate: Mutation, expected: str) -> None:
    hosts, gvars = base()
    mutate(hosts, gvars)
    problems = [str(p) for p in validate(load_inventory(write_inventory(tmp_path, hosts, gvars)))]
    assert any(expected in line for line in problems), problems
    assert all("\n" not in line for line in problems)


def test_own_groups_and_vars_can_be_declared(tmp_path: Path) -> None:
    hosts, gvars = base()
    hosts["all"]["children"]["rack1"] = {"hosts": {"w1": None}}
    gvars["site_contact"] = "ops@example.com"
    gvars["airlock_extra_groups"] = ["rack1"]
    gvars["airlock_extra_vars"] = ["site_contact"]
    assert validate(load_inventory(write_inventory(tmp_path, hosts, gvars))) == []


def test_missing_inventory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AirlockError, match="does not exist"):
        load_inventory(tmp_path / "nope")


@pytest.mark.parametrize("written", ["'true'", "'yes'", "true"])
def test_ceph_flags_written_as_strings_are_read_as_ansible_reads_them(
    tmp_path: Path, written: str
) -> None:
    """`ceph_allow_lab_osds: "true"` allows lab OSDs and `ceph_mon: "no"` takes a host out
    of the monitors, as the role's `| bool` reads them: no false alarm from airlock check."""
    hosts, gvars = base()
    hosts["all"]["children"]["ceph"] = {
        "hosts": {"m1": None, "m2": None, "m3": None, "w1": {"ceph_mon": "no"}}
    }
    gvars["ceph_osd_devices"] = [{"mode": "lab-file", "path": "/srv/osd0.img", "size": "4G"}]
    inventory = write_inventory(tmp_path, hosts, gvars)
    gv = inventory / "group_vars" / "all.yml"
    gv.write_text(gv.read_text() + f"ceph_allow_lab_osds: {written}\n")
    assert [str(p) for p in validate(load_inventory(inventory))] == []


def test_kubelet_fields_cover_every_pinned_release() -> None:
    """`kubelet-config` knows the fields of every Kubernetes minor the manifest pins (else
    rerun scripts/gen-kubelet-fields after changing kube_versions)."""
    root = Path(__file__).resolve().parents[2]
    manifest = yaml.safe_load((root / "offline-bundle" / "manifest.yml").read_text())
    minors = {".".join(str(v).lstrip("v").split(".")[:2]) for v in manifest["kube_versions"]}
    fields = kubelet_fields()
    assert minors <= set(fields), "run scripts/gen-kubelet-fields"
    for minor in minors:
        assert {"evictionHard", "imageGCHighThresholdPercent", "tlsCertFile"} <= set(fields[minor])
        assert fields[minor]["evictionHard"] == "dict"
        assert fields[minor]["maxPods"] == "number"
        assert fields[minor]["syncFrequency"] == "string"
