"""`airlock lab up` refuses a file system too small for what its hosts write (DiskPressure)
and the lab's kubelets count their eviction threshold in GiB, not in percent of the disk."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.lab import hosts
from airlock.lab.inventory import LAB_EVICTION_GIB, group_vars
from airlock.lab.spec import LabSpec

Usage = namedtuple("Usage", "total used free")


def test_a_nearly_full_disk_is_refused_naming_the_space_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 12 * 2**30))
    with pytest.raises(AirlockError) as err:
        hosts.require_disk_headroom(tmp_path, hosts=5)
    message = str(err.value)
    needed = 15 + LAB_EVICTION_GIB
    assert f"{tmp_path} has 12 GiB free; a lab of 5 host(s) needs {needed} GiB" in message
    assert f"the ~15 GiB they write and {LAB_EVICTION_GIB} GiB left free" in message
    assert "go clean -cache" in message


def test_a_large_disk_with_a_small_fraction_free_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # CI's machine: 45 GiB free of 252 (18 %) is room for a whole lab; a percentage
    # threshold would have refused it.
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 45 * 2**30))
    hosts.require_disk_headroom(tmp_path, hosts=5)
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 8 * 2**30))
    hosts.require_disk_headroom(tmp_path, hosts=1)


def test_lab_kubelets_evict_at_the_same_absolute_threshold_and_keep_their_images(
    tmp_path: Path,
) -> None:
    spec = LabSpec(name="t")
    kubelet = group_vars(spec, tmp_path / "key", tmp_path / "known_hosts")[
        "kubernetes_kubelet_config_overrides"
    ]
    assert kubelet["evictionHard"]["nodefs.available"] == f"{LAB_EVICTION_GIB}Gi"
    assert kubelet["evictionHard"]["imagefs.available"] == f"{LAB_EVICTION_GIB}Gi"
    # Every signal is set: a partial evictionHard leaves the others at zero.
    assert set(kubelet["evictionHard"]) >= {"memory.available", "nodefs.inodesFree"}
    assert kubelet["imageGCHighThresholdPercent"] == 100
