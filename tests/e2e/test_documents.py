"""The real kubeadm of the bundle accepts the documents our modules render (no cluster needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils import kubeadm as ku

from tests.kubeadm_samples import CERTIFICATE_KEY, INIT, JOIN

pytestmark = pytest.mark.e2e

PARAMS = dict(
    INIT,
    cert_sans=["10.0.0.250", "m1"],
    conntrack_max_per_core=0,
    cgroup_version=1,
    certificate_key=CERTIFICATE_KEY,
)
CONTROL_PLANE_JOIN = dict(JOIN, control_plane=True, certificate_key=CERTIFICATE_KEY)


@pytest.mark.parametrize(
    ("name", "documents"),
    [
        ("init", ku.init_documents(PARAMS)),
        ("join-control-plane", [ku.join_configuration(CONTROL_PLANE_JOIN)]),
        ("join-worker", [ku.join_configuration(JOIN)]),
    ],
)
def test_kubeadm_validates_our_configuration(
    bundle_tools: dict[str, Path], tmp_path: Path, name: str, documents: list[dict]
) -> None:
    config = tmp_path / f"{name}.yaml"
    config.write_text(ku.render(documents))
    proc = subprocess.run(
        [str(bundle_tools["kubeadm"]), "config", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
