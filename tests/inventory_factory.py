"""Builds inventories on disk for tests: a valid 3+2 HA layout, then one mutation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

# TEST-NET-1 addresses: nothing answers there, so a check that tried SSH would hang.
BASE: dict[str, Any] = {
    "all": {
        "hosts": {
            name: {"ip": f"192.0.2.{n}", "ansible_host": f"192.0.2.{n}"}
            for name, n in (("m1", 11), ("m2", 12), ("m3", 13), ("w1", 21), ("w2", 22))
        },
        "children": {
            "etcd": {"hosts": {"m1": None, "m2": None, "m3": None}},
            "kube_control_plane": {"hosts": {"m1": None, "m2": None, "m3": None}},
            "lb": {"hosts": {"m1": None, "m2": None, "m3": None}},
            "kube_node": {"hosts": {"w1": None, "w2": None}},
            "bundle_host": {"hosts": {"m1": None}},
        },
    }
}
BASE_VARS: dict[str, Any] = {
    "airlock_cluster_name": "test",
    "airlock_api_vip": "192.0.2.250",
    "airlock_host_cidr": "192.0.2.0/24",
    "ansible_user": "root",
}


def write_inventory(
    directory: Path, hosts: dict[str, Any] | None = None, group_vars: dict[str, Any] | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "group_vars").mkdir(exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts if hosts is not None else BASE))
    (directory / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(group_vars if group_vars is not None else BASE_VARS)
    )
    return directory


def base() -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(BASE), copy.deepcopy(BASE_VARS)
