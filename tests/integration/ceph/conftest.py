"""Fixtures: one real Ceph cluster (mon, mgr, OSD on a file) on loopback for the session.

See cluster.py for how it is made. Missing programs fail the tests with the fix; the
daemons are killed after the session, also when bootstrapping failed half-way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cluster import CephCluster, missing_programs


@pytest.fixture(scope="session")
def ceph_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephCluster]:
    missing = missing_programs()
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run scripts/bootstrap (it installs the ceph "
            "packages of scripts/apt-packages); tests never skip silently"
        )
    cluster = CephCluster(root=tmp_path_factory.mktemp("ceph"))
    try:
        cluster.bootstrap()
        yield cluster
    finally:
        cluster.stop()
