"""The execution environment's build context (`airlock ee context`: ansible-builder create)
is complete for an offline build: the collection is in it, and the wheels in it resolve
every package the Containerfile installs with no package index. The image build itself
and a run inside it are `make e2e-ee` (tests/ee)."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from airlock import __version__
from airlock.lab import ee
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ee.context(ROOT, tmp_path_factory.mktemp("ee") / "context")


def test_the_containerfile_builds_from_the_lab_image_without_an_index(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="localhost/airlock-lab:bookworm"' in containerfile
    assert "ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/airlock-wheels" in containerfile
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--no-deps"' in containerfile
    assert "RUN rm -rf /opt/airlock-wheels" in containerfile


def test_the_collection_is_in_the_context(context: Path) -> None:
    with tarfile.open(context / "_build" / "collections" / "airlock-cluster.tar.gz") as tar:
        names = tar.getnames()
    assert "plugins/modules/host_preflight.py" in names and "playbooks/check.yml" in names
    requirements = (context / "_build" / "requirements.yml").read_text()
    assert "/build/collections/airlock-cluster.tar.gz" in requirements


def test_the_wheels_resolve_everything_the_build_installs(context: Path) -> None:
    build = context / "_build"
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]+)"', (context / "Containerfile").read_text())
    assert refs is not None
    wanted = [
        *refs.group(1).split(),
        *(build / "requirements.txt").read_text().split(),
        "bindep", "pyyaml", "packaging", "dumb-init==1.2.5", "pip==26.3",
    ]  # fmt: skip
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--no-index", "--find-links", str(build / "wheels"), *wanted],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert (build / "wheels" / f"airlock-{__version__}-py3-none-any.whl").is_file()
