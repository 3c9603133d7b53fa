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
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(252 * 2**30, 0, 24 * 2**30))
    with pytest.raises(AirlockError) as err:
        hosts.require_disk_headroom(tmp_path)
    message = str(err.value)
    assert f"{tmp_path} has 24 GiB free of 252 GiB (10%)" in message
    assert "at least 15% free" in message and "go clean -cache" in message


def test_enough_room_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hosts.shutil, "disk_usage", lambda _: Usage(100, 0, 40))
    hosts.require_disk_headroom(tmp_path)
