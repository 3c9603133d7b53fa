#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: plan a Kubernetes upgrade, or upgrade this host with kubeadm, once."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import (
    cgroup_version,
    preflight_ignores,
)
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_run import Kubeadm
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_upgrade import (
    CONTROL_PLANE_COMPONENTS,
    UpgradeError,
    build_plan,
    manifest_image_tag,
    parse_version,
    vstr,
)

DOCUMENTATION = r"""
---
module: kubeadm_upgrade
short_description: Plan a Kubernetes upgrade, or upgrade one host with kubeadm (idempotent)
version_added: "0.2.0"
description:
  - O(action=plan) changes nothing. On a control-plane host it reads the cluster (nodes,
    pods, PodDisruptionBudgets, kube-proxy, CoreDNS, the C(kubeadm-config) ConfigMap) with
    kubectl and returns the upgrade plan, node by node in the order given (control planes
    first, then workers), each component's current and target version, the pods a drain
    evicts, what kubeadm runs there, the ClusterConfiguration diff, and every blocker (a
    skipped or backwards minor, a NotReady node, an inventory host that is no node, a
    PodDisruptionBudget that allows no disruption of a pod a drain evicts, and the
    O(problems) the caller found elsewhere). Nodes already at the target are C(done).
  - O(action=apply) runs C(kubeadm upgrade apply VERSION) on the first control-plane host
    unless the cluster's ClusterConfiguration and this host's static control-plane pods
    already have the target version. O(action=node) runs C(kubeadm upgrade node) unless
    this host is done (its kubelet program at the target and, on a control plane, its
    static pods too). Both fail (nothing else done) when the kubeadm program is not the
    target's, and skip SystemVerification on cgroup v1 hosts like the init and join modules.
  - Draining, installing the kubelet, restarting it and uncordoning are the playbook's
    (playbooks/upgrade.yml), around this module.
attributes:
  check_mode:
    support: full
    details: O(action=plan) never changes anything; apply and node report whether kubeadm would run.
  diff_mode:
    support: none
options:
  action:
    description: What to do.
    type: str
    choices: [plan, apply, node]
    required: true
  version:
    description: The target Kubernetes release (C(v1.37.2) or C(1.37.2)).
    type: str
    required: true
  kubeadm:
    description: The target release's kubeadm program (apply, node).
    type: str
    default: kubeadm
  kubectl:
    description: kubectl (plan).
    type: str
    default: kubectl
  kubelet:
    description: The installed kubelet program; its version tells whether a host is done.
    type: path
    default: /usr/local/bin/kubelet
  kubeconfig:
    description: The kubeconfig kubectl uses (plan).
    type: path
    default: /etc/kubernetes/admin.conf
  control_planes:
    description: Control-plane hosts in upgrade order, the first is upgraded with apply (plan).
    type: list
    elements: str
    default: []
  workers:
    description: Worker hosts in upgrade order (plan).
    type: list
    elements: str
    default: []
  target_components:
    description:
      - Target versions of C(coredns), C(etcd), C(containerd) from the target bundle (plan).
    type: dict
    default: {}
  current_components:
    description: Current versions of C(etcd), C(containerd) as read on the hosts (plan).
    type: dict
    default: {}
  problems:
    description: Blockers found elsewhere, listed with the plan's own (plan).
    type: list
    elements: str
    default: []
  ignore_preflight_errors:
    description: kubeadm preflight checks to skip (apply, node).
    type: list
    elements: str
    default: []
  manifests_dir:
    description: kubeadm's static pod manifests.
    type: path
    default: /etc/kubernetes/manifests
notes:
  - Needs the target's images in containerd beforehand (the upgrade playbook imports them
    from the target bundle); kubeadm then pulls nothing.
  - Tested on the lab (tests/e2e_upgrade) with Kubernetes built from its Go modules; the
    plan logic is unit-tested (tests/unit/kubeadm/test_upgrade_plan.py).
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Plan the upgrade
  airlock.cluster.kubeadm_upgrade:
    action: plan
    version: "1.37.2"
    control_planes: "{{ groups['kube_control_plane'] }}"
    workers: "{{ groups['kube_node'] | difference(groups['kube_control_plane']) }}"
  register: plan

- name: Upgrade the first control-plane host
  airlock.cluster.kubeadm_upgrade:
    action: apply
    version: "1.37.2"
    kubeadm: /usr/local/bin/kubeadm
"""

RETURN = r"""
plan:
  description:
    - O(action=plan) only. Keys C(target), C(current), C(blockers), C(cluster) (component
      rows), C(config_diff), C(nodes) (name, role, ready, cordoned, action, components as
      name to [current, target], drain as namespace/pod), C(pending) (nodes not done).
  returned: when action is plan
  type: dict
ran:
  description: The kubeadm command line that ran (apply, node), or '' when nothing did.
  returned: when action is apply or node
  type: str
"""


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["plan", "apply", "node"], "required": True},
            "version": {"type": "str", "required": True},
            "kubeadm": {"type": "str", "default": "kubeadm"},
            "kubectl": {"type": "str", "default": "kubectl"},
            "kubelet": {"type": "path", "default": "/usr/local/bin/kubelet"},
            "kubeconfig": {"type": "path", "default": "/etc/kubernetes/admin.conf"},
            "control_planes": {"type": "list", "elements": "str", "default": []},
            "workers": {"type": "list", "elements": "str", "default": []},
            "target_components": {"type": "dict", "default": {}},
            "current_components": {"type": "dict", "default": {}},
            "problems": {"type": "list", "elements": "str", "default": []},
            "ignore_preflight_errors": {"type": "list", "elements": "str", "default": []},
            "manifests_dir": {"type": "path", "default": "/etc/kubernetes/manifests"},
        },
        supports_check_mode=True,
    )


def _kubectl_json(module: AnsibleModule, *args: str) -> dict[str, Any]:
    params = module.params
    kubectl = Kubeadm(module, params["kubectl"])
    _, out, _ = kubectl.run(
        ["--kubeconfig", params["kubeconfig"], *args, "-o", "json"],
        what=f"kubectl get {' '.join(args)}",
        hint="the plan reads the cluster through the admin kubeconfig on this host",
    )
    return json.loads(out)


def plan(module: AnsibleModule, target: str) -> dict[str, Any]:
    params = module.params
    cluster_configuration = _cluster_configuration(module)
    cluster_version = _version_in(cluster_configuration)
    if not cluster_version:
        module.fail_json(
            msg="the kubeadm-config ConfigMap has no kubernetesVersion: this cluster was not "
            "made by kubeadm, or its ConfigMap was edited; restore it before upgrading"
        )
    nodes = _kubectl_json(module, "get", "nodes")["items"]
    pods = _kubectl_json(module, "get", "pods", "--all-namespaces")["items"]
    pdbs = _kubectl_json(module, "get", "poddisruptionbudgets", "--all-namespaces")["items"]
    workloads = _kubectl_json(
        module, "--namespace", "kube-system", "get", "daemonset/kube-proxy", "deployment/coredns"
    )["items"]
    result = build_plan(
        target=target,
        cluster_version=cluster_version,
        control_planes=params["control_planes"],
        workers=params["workers"],
        nodes=nodes,
        pods=pods,
        pdbs=pdbs,
        workloads=workloads,
        cluster_configuration=cluster_configuration,
        target_components=params["target_components"],
        current_components=params["current_components"],
        problems=params["problems"],
    )
    return {"changed": False, "plan": result}


def _program_version(module: AnsibleModule, program: str, flag: str) -> str:
    rc, out, _ = Kubeadm(module, program).run([flag])
    return out.strip().split()[-1] if rc == 0 and out.strip() else ""


def _static_pods_at(module: AnsibleModule, want: str) -> bool:
    for component in CONTROL_PLANE_COMPONENTS:
        path = os.path.join(module.params["manifests_dir"], f"{component}.yaml")
        try:
            with open(path, encoding="utf-8") as handle:
                if manifest_image_tag(handle.read()) != want:
                    return False
        except FileNotFoundError:
            return False
    return True


def _cluster_configuration(module: AnsibleModule) -> str:
    config = _kubectl_json(module, "--namespace", "kube-system", "get", "configmap/kubeadm-config")
    return str(config.get("data", {}).get("ClusterConfiguration", ""))


def _version_in(cluster_configuration: str) -> str:
    """kubernetesVersion of a ClusterConfiguration document ('' when it has none)."""
    for line in cluster_configuration.splitlines():
        if line.startswith("kubernetesVersion:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return ""


def upgrade(module: AnsibleModule, target: str) -> dict[str, Any]:
    params = module.params
    action = params["action"]
    control_plane = os.path.exists(os.path.join(params["manifests_dir"], "kube-apiserver.yaml"))
    if action == "apply":
        done = (
            _static_pods_at(module, target)
            and _version_in(_cluster_configuration(module)) == target
        )
    else:
        kubelet = _program_version(module, params["kubelet"], "--version")
        done = kubelet == target and (not control_plane or _static_pods_at(module, target))
    if done:
        return {"changed": False, "ran": ""}
    kubeadm = Kubeadm(module, params["kubeadm"])
    _, out, _ = kubeadm.run(["version", "-o", "short"], what="kubeadm version")
    kubeadm_version = out.strip()
    if kubeadm_version != target:
        module.fail_json(
            msg=f"{kubeadm.path} is kubeadm {kubeadm_version or '?'}, not the target {target}: "
            "install the target bundle's kubeadm first (the upgrade playbook does)"
        )
    ignores = preflight_ignores({**params, "cgroup_version": cgroup_version()})
    args = ["upgrade", "apply", target, "--yes"] if action == "apply" else ["upgrade", "node"]
    if ignores:
        args.append(f"--ignore-preflight-errors={','.join(ignores)}")
    ran = " ".join(["kubeadm", *args])
    if not module.check_mode:
        kubeadm.run(
            args,
            what=ran,
            hint="the node stays cordoned; fix the cause and run `airlock upgrade` again, "
            "which resumes with this node",
        )
    return {"changed": True, "ran": ran}


def run_module(module: AnsibleModule) -> dict[str, Any]:
    try:
        target = vstr(parse_version(module.params["version"]))
    except UpgradeError as exc:
        module.fail_json(msg=f"version: {exc}")
        raise
    if module.params["action"] == "plan":
        return plan(module, target)
    return upgrade(module, target)


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
