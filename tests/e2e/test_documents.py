"""The real kubeadm of the bundle accepts the documents our modules render."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils import kubeadm as ku

from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

PARAMS = {
    "node_name": "m1",
    "advertise_address": "10.0.0.11",
    "kubernetes_version": "1.34.4",
    "control_plane_endpoint": "10.0.0.250:8443",
    "cert_sans": ["10.0.0.250", "m1"],
    "etcd_endpoints": ["https://10.0.0.11:2379", "https://10.0.0.12:2379"],
    "etcd_ca_file": "/etc/airlock/etcd/ca.crt",
    "etcd_cert_file": "/etc/airlock/etcd/apiserver-etcd-client.crt",
    "etcd_key_file": "/etc/airlock/etcd/apiserver-etcd-client.key",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "conntrack_max_per_core": 0,
    "cgroup_version": 1,
    "certificate_key": "ab" * 32,
}
JOIN = {
    "node_name": "m2",
    "advertise_address": "10.0.0.12",
    "api_server_endpoint": "10.0.0.250:8443",
    "token": "abcdef.0123456789abcdef",
    "ca_cert_hash": "sha256:" + "0" * 64,
    "control_plane": True,
    "certificate_key": "ab" * 32,
}


@pytest.mark.parametrize(
    ("name", "documents"),
    [
        ("init", ku.init_documents(PARAMS)),
        ("join-control-plane", [ku.join_configuration(JOIN)]),
        ("join-worker", [ku.join_configuration(dict(JOIN, control_plane=False))]),
    ],
)
def test_kubeadm_validates_our_configuration(
    cluster: Cluster, tmp_path: Path, name: str, documents: list[dict]
) -> None:
    config = tmp_path / f"{name}.yaml"
    config.write_text(ku.render(documents))
    proc = subprocess.run(
        [str(cluster.kubeadm), "config", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
