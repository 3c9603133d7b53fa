"""`airlock lab up` refuses a file system its kubelets would find too full (DiskPressure)."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.lab import hosts

Usage = namedtuple("Usage", "total used free")


def test_a_nearly_full_disk_is_refused_naming_the_space_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # 20 % free, but the lab's own images and data would take it under 15 %: the case seen.
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 50 * 2**30))
    with pytest.raises(AirlockError) as err:
        hosts.require_disk_headroom(tmp_path, hosts=5)
    message = str(err.value)
    assert f"{tmp_path} has 50 GiB free of 252 GiB; a lab of 5 host(s) needs 53 GiB" in message
    assert "15% free after the ~15 GiB they write" in message
    assert "go clean -cache" in message


def test_enough_room_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(100 * 2**30, 0, 40 * 2**30))
    hosts.require_disk_headroom(tmp_path)
    # A one-host molecule scenario fits where a whole lab would not.
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 50 * 2**30))
    hosts.require_disk_headroom(tmp_path, hosts=1)
