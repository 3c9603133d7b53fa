#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: initialise the first control-plane host with kubeadm, once."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import (
    KubeadmConfigError,
    ca_cert_hash,
    cgroup_version,
    init_documents,
    new_certificate_key,
    preflight_ignores,
    render,
)
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_run import (
    Kubeadm,
    write_private,
)

DOCUMENTATION = r"""
---
module: kubeadm_init
short_description: Initialise a Kubernetes control plane with kubeadm (external etcd, VIP)
version_added: "0.1.0"
description:
  - Renders kubeadm's C(InitConfiguration), C(ClusterConfiguration),
    C(KubeletConfiguration) and C(KubeProxyConfiguration) (API C(kubeadm.k8s.io/v1beta4))
    from its options and writes them to O(config_file) (mode 0600).
  - Runs C(kubeadm init) only on a host that is not initialised yet. A host counts as
    initialised when C(/etc/kubernetes/admin.conf) and C(/etc/kubernetes/kubelet.conf)
    exist; a host with only some of kubeadm's files is a half-finished init and fails
    with the way out (C(kubeadm reset -f)), so nothing is initialised twice.
  - Returns what joins need. The discovery hash is computed in Python from the cluster
    CA certificate. With O(upload_certs), the control-plane certificates are uploaded
    (encrypted) for C(kubeadm join --control-plane) and the key is returned; on an
    initialised host that runs C(kubeadm init phase upload-certs) (a change).
  - On cgroup v1 hosts the kubelet configuration sets C(failCgroupV1=false), which
    Kubernetes 1.35 and later need to start there, and kubeadm's SystemVerification
    preflight check is skipped (it fails on cgroup v1, deprecated upstream); cgroup v2
    hosts need nothing.
attributes:
  check_mode:
    support: full
    details: Reports whether C(kubeadm init) or the certificate upload would run.
  diff_mode:
    support: none
options:
  kubeadm:
    description: The kubeadm program (a path, or a name looked up on E(PATH) and /usr/local/bin).
    type: str
    default: kubeadm
  config_file:
    description: Where the rendered configuration is written (0600; it is kept for upgrades).
    type: path
    default: /etc/kubernetes/airlock/kubeadm-init.yaml
  node_name:
    description: Kubernetes node name of this host.
    type: str
    required: true
  advertise_address:
    description: Address this apiserver advertises and the kubelet's node IP.
    type: str
    required: true
  apiserver_port:
    description: Port this apiserver binds.
    type: int
    default: 6443
  control_plane_endpoint:
    description: C(HOST:PORT) every client and node uses, normally the VIP and haproxy's port.
    type: str
    required: true
  kubernetes_version:
    description: Kubernetes version; it must be the version of the images in containerd.
    type: str
    required: true
  cluster_name:
    description: Cluster name written into kubeconfig files.
    type: str
    default: kubernetes
  cert_sans:
    description: Extra subject alternative names of the apiserver certificate.
    type: list
    elements: str
    default: []
  image_repository:
    description: Registry prefix of the control-plane images.
    type: str
    default: registry.k8s.io
  etcd_endpoints:
    description: Client URLs of the external etcd cluster.
    type: list
    elements: str
    required: true
  etcd_ca_file:
    description: CA certificate that signed etcd's server certificates.
    type: path
    required: true
  etcd_cert_file:
    description: Client certificate of the apiserver for etcd.
    type: path
    required: true
  etcd_key_file:
    description: Key of O(etcd_cert_file).
    type: path
    required: true
  pod_subnet:
    description: Pod network (flannel's network).
    type: str
    required: true
  service_subnet:
    description: Service network.
    type: str
    required: true
  dns_domain:
    description: Cluster DNS domain.
    type: str
    default: cluster.local
  proxy_mode:
    description: kube-proxy mode.
    type: str
    choices: [iptables, ipvs, nftables]
    default: iptables
  conntrack_max_per_core:
    description:
      - kube-proxy's C(conntrack.maxPerCore). V(0) leaves C(nf_conntrack_max) alone
        (needed where it is read-only, e.g. inside containers). Unset, kube-proxy's default.
    type: int
  serving_cert_dir:
    description:
      - Directory on the control planes with the serving certificates of the
        controller-manager and the scheduler, signed by the cluster CA
        (C(kube-controller-manager/tls.crt) and C(tls.key), the same for
        C(kube-scheduler)). Set, each presents its own (the directory mounted read-only
        into its pod; a renewed file is reloaded) instead of a self-signed one made in
        memory, and the apiserver verifies the kubelets' serving certificates with the
        cluster CA (C(--kubelet-certificate-authority)), so every kubelet must serve one
        of the cluster CA (roles/kubernetes installs both kinds).
      - Unset, kubeadm's defaults (nothing a client can verify).
    type: path
  metrics_bind_address:
    description:
      - Address the controller-manager and the scheduler bind (HTTPS; /metrics needs an
        authenticated, authorised client) and kube-proxy's metrics listener binds (port
        10249, plain HTTP, as kube-proxy has no TLS there). V(0.0.0.0) lets a monitoring
        host scrape them.
    type: str
    default: 127.0.0.1
  cgroup_driver:
    description: The kubelet's cgroup driver; it must match containerd's.
    type: str
    choices: [systemd, cgroupfs]
    default: systemd
  fail_swap_on:
    description: Whether the kubelet refuses to start with swap on.
    type: bool
    default: true
  offline:
    description: Never pull images (C(imagePullPolicy=Never)); they come from the bundle.
    type: bool
    default: true
  upload_certs:
    description: Upload the control-plane certificates for joins and return the key.
    type: bool
    default: false
  ignore_preflight_errors:
    description: kubeadm preflight checks to ignore, by name. Prefer fixing the host.
    type: list
    elements: str
    default: []
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Initialise the first control-plane host
  airlock.cluster.kubeadm_init:
    node_name: m1
    advertise_address: 10.0.0.11
    control_plane_endpoint: 10.0.0.250:8443
    kubernetes_version: v1.34.4
    etcd_endpoints: [https://10.0.0.11:2379, https://10.0.0.12:2379, https://10.0.0.13:2379]
    etcd_ca_file: /etc/airlock/etcd/ca.crt
    etcd_cert_file: /etc/airlock/etcd/apiserver-etcd-client.crt
    etcd_key_file: /etc/airlock/etcd/apiserver-etcd-client.key
    pod_subnet: 10.244.0.0/16
    service_subnet: 10.96.0.0/12
    upload_certs: true
  register: init
  no_log: true  # the result holds the certificate key
"""

RETURN = r"""
initialised:
  description: Whether the host was already initialised before this task.
  returned: always
  type: bool
ca_cert_hash:
  description: Discovery hash of the cluster CA (C(sha256:...)), for joins.
  returned: when the host is (or, outside check mode, became) initialised
  type: str
certificate_key:
  description: Key to decrypt the uploaded control-plane certificates (valid 2 hours).
  returned: when O(upload_certs) uploaded them
  type: str
control_plane_endpoint:
  description: The endpoint joins use.
  returned: always
  type: str
cgroup_version:
  description: The host's cgroup version (1 or 2).
  returned: always
  type: int
"""

KUBE_DIR = "/etc/kubernetes"
CA_CERT = f"{KUBE_DIR}/pki/ca.crt"
DONE_FILES = (f"{KUBE_DIR}/admin.conf", f"{KUBE_DIR}/kubelet.conf")
PARTIAL_FILES = (
    *DONE_FILES,
    f"{KUBE_DIR}/manifests/kube-apiserver.yaml",
    f"{KUBE_DIR}/super-admin.conf",
)


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "kubeadm": {"type": "str", "default": "kubeadm"},
            "config_file": {"type": "path", "default": f"{KUBE_DIR}/airlock/kubeadm-init.yaml"},
            "node_name": {"type": "str", "required": True},
            "advertise_address": {"type": "str", "required": True},
            "apiserver_port": {"type": "int", "default": 6443},
            "control_plane_endpoint": {"type": "str", "required": True},
            "kubernetes_version": {"type": "str", "required": True},
            "cluster_name": {"type": "str", "default": "kubernetes"},
            "cert_sans": {"type": "list", "elements": "str", "default": []},
            "image_repository": {"type": "str", "default": "registry.k8s.io"},
            "etcd_endpoints": {"type": "list", "elements": "str", "required": True},
            "etcd_ca_file": {"type": "path", "required": True},
            "etcd_cert_file": {"type": "path", "required": True},
            "etcd_key_file": {"type": "path", "required": True},
            "pod_subnet": {"type": "str", "required": True},
            "service_subnet": {"type": "str", "required": True},
            "dns_domain": {"type": "str", "default": "cluster.local"},
            "proxy_mode": {
                "type": "str",
                "choices": ["iptables", "ipvs", "nftables"],
                "default": "iptables",
            },
            "conntrack_max_per_core": {"type": "int"},
            "serving_cert_dir": {"type": "path"},
            "metrics_bind_address": {"type": "str", "default": "127.0.0.1"},
            "cgroup_driver": {
                "type": "str",
                "choices": ["systemd", "cgroupfs"],
                "default": "systemd",
            },
            "fail_swap_on": {"type": "bool", "default": True},
            "offline": {"type": "bool", "default": True},
            "upload_certs": {"type": "bool", "default": False},
            "ignore_preflight_errors": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )


def init_state() -> str:
    """`done`, `fresh` or `partial` (some of kubeadm's files, not all that init writes)."""
    present = [path for path in PARTIAL_FILES if os.path.exists(path)]
    if all(os.path.exists(path) for path in DONE_FILES):
        return "done"
    return "partial" if present else "fresh"


def documents(module: AnsibleModule, certificate_key: str | None) -> str:
    params = dict(module.params)
    params["cgroup_version"] = cgroup_version()
    params["certificate_key"] = certificate_key
    try:
        return render(init_documents(params))
    except KubeadmConfigError as exc:
        module.fail_json(msg=f"kubeadm configuration: {exc}")
        raise  # unreachable: fail_json exits


def read_hash(module: AnsibleModule) -> str:
    try:
        with open(CA_CERT, "rb") as handle:
            return ca_cert_hash(handle.read())
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot compute the discovery hash from {CA_CERT}: {exc}")
        raise


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    state = init_state()
    result: dict[str, Any] = {
        "changed": False,
        "initialised": state == "done",
        "control_plane_endpoint": params["control_plane_endpoint"],
        "cgroup_version": cgroup_version(),
    }
    if state == "partial":
        module.fail_json(
            msg=(
                f"{params['node_name']} holds part of a kubeadm control plane (a previous "
                "init stopped halfway): run `kubeadm reset -f` on it, then deploy again"
            ),
            **result,
        )
    key = new_certificate_key() if params["upload_certs"] else None
    result["changed"] = state == "fresh" or key is not None
    if result["changed"] and not module.check_mode:
        apply(module, state, key)
        if key:
            result["certificate_key"] = key
    if os.path.exists(CA_CERT):
        result["ca_cert_hash"] = read_hash(module)
    return result


def apply(module: AnsibleModule, state: str, key: str | None) -> None:
    """Run `kubeadm init` on a fresh host, or only the certificate upload on an initialised one."""
    params = module.params
    kubeadm = Kubeadm(module, params["kubeadm"])
    if state == "fresh":
        write_private(module, params["config_file"], documents(module, key))
        args = ["init", "--config", params["config_file"]]
        args += ["--upload-certs"] if key else []
        args += _ignored(preflight_ignores({**params, "cgroup_version": cgroup_version()}))
        kubeadm.run(args, what="kubeadm init")
        return
    write_private(module, params["config_file"], documents(module, key))
    kubeadm.run(
        ["init", "phase", "upload-certs", "--upload-certs", "--config", params["config_file"]],
        what="kubeadm init phase upload-certs",
    )


def _ignored(checks: list[str]) -> list[str]:
    return [f"--ignore-preflight-errors={','.join(checks)}"] if checks else []


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
