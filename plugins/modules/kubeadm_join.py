#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: join a host to a Kubernetes cluster with kubeadm, once."""

from __future__ import annotations

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import (
    KubeadmConfigError,
    cgroup_version,
    join_configuration,
    preflight_ignores,
    render,
)
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_run import (
    Kubeadm,
    write_private,
)

DOCUMENTATION = r"""
---
module: kubeadm_join
short_description: Join a worker or another control-plane host with kubeadm
version_added: "0.1.0"
description:
  - Renders a C(JoinConfiguration) (API C(kubeadm.k8s.io/v1beta4)) with bootstrap-token
    discovery pinned to the cluster CA by O(ca_cert_hash), writes it 0600, runs
    C(kubeadm join --config) and removes the file again (it holds the token).
  - With O(control_plane), the host joins as another control-plane host; kubeadm fetches
    the control-plane certificates uploaded by M(airlock.cluster.kubeadm_init) and
    decrypts them with O(certificate_key).
  - Skips a host that has joined already (C(/etc/kubernetes/kubelet.conf) exists) and
    whose Node object is registered. A host that joined but whose Node is gone, or that
    joined as a worker where a control-plane host is asked for, fails with the fix.
  - On cgroup v1 hosts kubeadm's SystemVerification preflight check is skipped (it fails
    there from Kubernetes 1.35; cgroup v1 is deprecated upstream).
attributes:
  check_mode:
    support: full
    details: Reports whether the host would join.
  diff_mode:
    support: none
options:
  api_server_endpoint:
    description: C(HOST:PORT) of the API, normally the VIP and haproxy's port.
    type: str
    required: true
  token:
    description: Bootstrap token (M(airlock.cluster.kubeadm_token)).
    type: str
    required: true
    no_log: true
  ca_cert_hash:
    description: Discovery hash of the cluster CA (C(sha256:...)).
    type: str
    required: true
  control_plane:
    description: Join as a control-plane host.
    type: bool
    default: false
  certificate_key:
    description: Key of the uploaded control-plane certificates; needed with O(control_plane).
    type: str
    no_log: true
  node_name:
    description: Kubernetes node name of this host.
    type: str
    required: true
  advertise_address:
    description: The kubelet's node IP and, with O(control_plane), the apiserver's address.
    type: str
    required: true
  apiserver_port:
    description: Port this host's apiserver binds (with O(control_plane)).
    type: int
    default: 6443
  cri_socket:
    description: containerd's CRI socket.
    type: str
    default: unix:///run/containerd/containerd.sock
  offline:
    description: Never pull images (C(imagePullPolicy=Never)); they come from the bundle.
    type: bool
    default: true
  ignore_preflight_errors:
    description: kubeadm preflight checks to ignore, by name. Prefer fixing the host.
    type: list
    elements: str
    default: []
  config_file:
    description: Where the configuration is written while joining (removed afterwards).
    type: path
    default: /etc/kubernetes/airlock/kubeadm-join.yaml
  kubeadm:
    description: The kubeadm program.
    type: str
    default: kubeadm
  kubectl:
    description: The kubectl program, used to see whether a joined host's Node exists.
    type: str
    default: kubectl
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Join a worker
  airlock.cluster.kubeadm_join:
    api_server_endpoint: 10.0.0.250:8443
    token: "{{ join_token.token }}"
    ca_cert_hash: "{{ init.ca_cert_hash }}"
    node_name: "{{ inventory_hostname }}"
    advertise_address: "{{ ip }}"

- name: Join another control-plane host
  airlock.cluster.kubeadm_join:
    api_server_endpoint: 10.0.0.250:8443
    token: "{{ join_token.token }}"
    ca_cert_hash: "{{ init.ca_cert_hash }}"
    control_plane: true
    certificate_key: "{{ init.certificate_key }}"
    node_name: "{{ inventory_hostname }}"
    advertise_address: "{{ ip }}"
"""

RETURN = r"""
joined:
  description: Whether the host had joined before this task.
  returned: always
  type: bool
registered:
  description: Whether the API knows this Node (null when the API could not be asked).
  returned: when the host had joined
  type: bool
"""

KUBE_DIR = "/etc/kubernetes"
KUBELET_CONF = f"{KUBE_DIR}/kubelet.conf"
APISERVER_MANIFEST = f"{KUBE_DIR}/manifests/kube-apiserver.yaml"


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "api_server_endpoint": {"type": "str", "required": True},
            "token": {"type": "str", "required": True, "no_log": True},
            "ca_cert_hash": {"type": "str", "required": True},
            "control_plane": {"type": "bool", "default": False},
            "certificate_key": {"type": "str", "no_log": True},
            "node_name": {"type": "str", "required": True},
            "advertise_address": {"type": "str", "required": True},
            "apiserver_port": {"type": "int", "default": 6443},
            "cri_socket": {"type": "str", "default": "unix:///run/containerd/containerd.sock"},
            "offline": {"type": "bool", "default": True},
            "ignore_preflight_errors": {"type": "list", "elements": "str", "default": []},
            "config_file": {"type": "path", "default": f"{KUBE_DIR}/airlock/kubeadm-join.yaml"},
            "kubeadm": {"type": "str", "default": "kubeadm"},
            "kubectl": {"type": "str", "default": "kubectl"},
        },
        required_if=[("control_plane", True, ["certificate_key"])],
        supports_check_mode=True,
    )


def registered(module: AnsibleModule) -> bool | None:
    """Ask the API, as this node's kubelet, whether its Node exists; None if unreachable."""
    name = module.params["node_name"]
    kubectl = Kubeadm(module, module.params["kubectl"])
    rc, out, err = kubectl.run(
        ["--kubeconfig", KUBELET_CONF, "get", "node", name, "-o", "name", "--request-timeout=20s"],
    )
    if rc == 0 and out.strip() == f"node/{name}":
        return True
    if "NotFound" in err or "not found" in err:
        return False
    module.warn(f"could not ask the API whether node {name} exists: {err.strip()[-300:]}")
    return None


def check_joined(module: AnsibleModule) -> dict[str, Any]:
    name = module.params["node_name"]
    if module.params["control_plane"] and not os.path.exists(APISERVER_MANIFEST):
        module.fail_json(
            msg=(
                f"{name} has joined as a worker, not as a control-plane host: drain and "
                f"delete node {name}, run `kubeadm reset -f` on it, then deploy again"
            )
        )
    known = registered(module)
    if known is False:
        module.fail_json(
            msg=(
                f"{name} has joined before (it has {KUBELET_CONF}) but the cluster has no "
                f"node {name} any more: run `kubeadm reset -f` on it, then deploy again"
            )
        )
    return {"changed": False, "joined": True, "registered": known}


def join(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    if module.check_mode:
        return {"changed": True, "joined": False}
    try:
        config = render([join_configuration({**params, "cgroup_version": cgroup_version()})])
    except KubeadmConfigError as exc:
        module.fail_json(msg=f"kubeadm join configuration: {exc}")
        raise
    kubeadm = Kubeadm(module, params["kubeadm"])
    write_private(module, params["config_file"], config)
    args = ["join", "--config", params["config_file"]]
    ignores = preflight_ignores({**params, "cgroup_version": cgroup_version()})
    if ignores:
        args.append(f"--ignore-preflight-errors={','.join(ignores)}")
    try:
        kubeadm.run(
            args,
            what=f"kubeadm join of {params['node_name']}",
            hint=(
                f"check that {params['api_server_endpoint']} answers from this host and that "
                "the token has not expired; `kubeadm reset -f` cleans a half-joined host"
            ),
        )
    finally:
        os.unlink(params["config_file"])
    return {"changed": True, "joined": False}


def run_module(module: AnsibleModule) -> dict[str, Any]:
    if os.path.exists(KUBELET_CONF):
        return check_joined(module)
    return join(module)


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
