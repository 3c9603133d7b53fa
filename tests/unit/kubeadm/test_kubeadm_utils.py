"""module_utils.kubeadm: the discovery hash against openssl, and the config documents.

openssl is the oracle for the hash: `openssl x509 -pubkey | openssl pkey -pubin -outform
der | sha256` is how kubeadm's documentation says to compute it by hand. When the kubeadm
that the lab bundle builds is present, the rendered documents are also validated by it.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import (
    KubeadmConfigError,
    ca_cert_hash,
    init_documents,
    kubelet_configuration,
    pem_to_der,
    subject_public_key_info,
)

KEYS = {
    "rsa-2048": ["-newkey", "rsa:2048"],
    "ec-p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ed25519": ["-newkey", "ed25519"],
}


def _ca(tmp_path: Path, kind: str) -> Path:
    cert = tmp_path / f"{kind}.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            *KEYS[kind],
            "-nodes",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=kubernetes",
        ],
        check=True,
        capture_output=True,
    )
    return cert


def _openssl_hash(cert: Path) -> str:
    pub = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"], check=True, capture_output=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True, capture_output=True
    ).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize("kind", KEYS)
def test_ca_hash_matches_openssl(tmp_path: Path, kind: str) -> None:
    cert = _ca(tmp_path, kind)
    assert ca_cert_hash(cert.read_bytes()) == _openssl_hash(cert)


def test_ca_hash_rejects_garbage(tmp_path: Path) -> None:
    cert = _ca(tmp_path, "ec-p256")
    der = pem_to_der(cert.read_bytes())
    with pytest.raises(KubeadmConfigError, match="truncated"):
        subject_public_key_info(der[: len(der) // 3])
    with pytest.raises(KubeadmConfigError, match="no PEM certificate"):
        ca_cert_hash(b"not a certificate")


PARAMS = {
    "node_name": "m1",
    "advertise_address": "10.77.10.11",
    "apiserver_port": 6443,
    "kubernetes_version": "1.34.4",
    "control_plane_endpoint": "10.77.10.250:8443",
    "cluster_name": "lab",
    "cert_sans": ["10.77.10.250", "m1", "10.77.10.250"],
    "etcd_endpoints": ["https://10.77.10.11:2379", "https://10.77.10.12:2379"],
    "etcd_ca_file": "/etc/airlock/etcd/ca.crt",
    "etcd_cert_file": "/etc/airlock/etcd/apiserver.crt",
    "etcd_key_file": "/etc/airlock/etcd/apiserver.key",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "cgroup_version": 1,
    "proxy_mode": "iptables",
}


def test_init_documents_carry_the_cluster_settings() -> None:
    init, cluster, kubelet, proxy = init_documents(PARAMS)
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.77.10.11", "bindPort": 6443}
    assert init["nodeRegistration"]["imagePullPolicy"] == "Never"
    assert cluster["controlPlaneEndpoint"] == "10.77.10.250:8443"
    assert cluster["kubernetesVersion"] == "v1.34.4"
    assert cluster["etcd"]["external"]["endpoints"] == PARAMS["etcd_endpoints"]
    assert cluster["apiServer"]["certSANs"] == ["10.77.10.250", "m1"]
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert kubelet["cgroupDriver"] == "systemd" and kubelet["failCgroupV1"] is False
    assert proxy["mode"] == "iptables"


def _args(section: dict) -> dict[str, str]:
    return {arg["name"]: arg["value"] for arg in section.get("extraArgs", [])}


def test_components_stay_on_localhost_with_their_own_certificates_by_default() -> None:
    _, cluster, _, proxy = init_documents(PARAMS)
    for component in ("controllerManager", "scheduler"):
        assert _args(cluster[component]) == {"bind-address": "127.0.0.1"}
        assert "extraVolumes" not in cluster[component]
    assert "extraArgs" not in cluster["apiServer"]
    assert proxy["metricsBindAddress"] == "127.0.0.1:10249"


def test_serving_certificates_are_mounted_read_only_and_kubelets_verified() -> None:
    params = {**PARAMS, "serving_cert_dir": "/etc/kubernetes/serving"}
    params["metrics_bind_address"] = "0.0.0.0"
    _, cluster, _, proxy = init_documents(params)
    for component, name in (
        ("controllerManager", "kube-controller-manager"),
        ("scheduler", "kube-scheduler"),
    ):
        directory = f"/etc/kubernetes/serving/{name}"
        assert _args(cluster[component]) == {
            "bind-address": "0.0.0.0",
            "tls-cert-file": f"{directory}/tls.crt",
            "tls-private-key-file": f"{directory}/tls.key",
        }
        # The directory, not the files: a renewed file (a rename) reaches the pod.
        (volume,) = cluster[component]["extraVolumes"]
        assert (volume["hostPath"], volume["mountPath"]) == (directory, directory)
        assert (volume["readOnly"], volume["pathType"]) == (True, "Directory")
    assert _args(cluster["apiServer"]) == {
        "kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt"
    }
    assert proxy["metricsBindAddress"] == "0.0.0.0:10249"


@pytest.mark.parametrize(
    ("params", "present"),
    [
        ({"cgroup_version": 1}, True),
        ({"cgroup_version": 2}, False),
    ],
)
def test_fail_cgroup_v1_only_on_cgroup_v1(params: dict, present: bool) -> None:
    assert ("failCgroupV1" in kubelet_configuration(params)) is present


@pytest.mark.parametrize("missing", ["etcd_endpoints", "control_plane_endpoint", "node_name"])
def test_missing_values_are_named(missing: str) -> None:
    params = {k: v for k, v in PARAMS.items() if k != missing}
    with pytest.raises(KubeadmConfigError, match=missing):
        init_documents(params)
