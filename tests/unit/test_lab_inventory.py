"""The lab's inventory: an odd etcd membership whatever the number of masters."""

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
