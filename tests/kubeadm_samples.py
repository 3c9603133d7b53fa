"""Parameters of the kubeadm modules for a 3-host control plane behind a VIP, shared by the
unit tests (documents and decisions) and the e2e (the real kubeadm validates them)."""

from __future__ import annotations

INIT = {
    "node_name": "m1",
    "advertise_address": "10.0.0.11",
    "kubernetes_version": "1.37.2",  # the default release (airlock_kube_version)
    "control_plane_endpoint": "10.0.0.250:8443",
    "etcd_endpoints": ["https://10.0.0.11:2379"],
    "etcd_ca_file": "/etc/airlock/etcd/ca.crt",
    "etcd_cert_file": "/etc/airlock/etcd/apiserver-etcd-client.crt",
    "etcd_key_file": "/etc/airlock/etcd/apiserver-etcd-client.key",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
}

JOIN = {
    "node_name": "w1",
    "advertise_address": "10.0.0.21",
    "api_server_endpoint": "10.0.0.250:8443",
    "token": "abcdef.0123456789abcdef",
    "ca_cert_hash": "sha256:" + "0" * 64,
}

CERTIFICATE_KEY = "ab" * 32
