"""The promtool the lab bundle ships, built on first use into the lab cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.lab.bundle import gobuild, profile
from airlock.paths import state_dir


@pytest.fixture(scope="session")
def promtool() -> Path:
    target = next(t for t in profile.monitoring_targets() if t.name == "promtool")
    gobuild.require_go()
    return gobuild.build(target, "amd64", state_dir() / "cache" / "lab")
