"""The promtool the lab bundle ships, built on first use into the lab cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import lab_program


@pytest.fixture(scope="session")
def promtool() -> Path:
    return lab_program("promtool")
