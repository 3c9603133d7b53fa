# Copyright: airlock developers
# Apache-2.0
"""What an upgrade will do, computed from the cluster's own objects (pure; no Ansible).

Input: `kubectl get nodes,pods,pdb -A -o json` documents, the kubeadm-config ConfigMap's
ClusterConfiguration, the target release and the hosts in upgrade order. Output: one
plan (a dict the module returns and `airlock upgrade --plan` prints): per node, in the
order the upgrade takes them, each component's current and target version, the pods a
drain evicts, and what kubeadm will run there; plus everything that blocks the upgrade.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
#: Set on a node before its drain, removed after it is back: a run stopped in between
#: leaves it, and the next plan lists the node again (to finish it and uncordon it).
UPGRADE_MARK = "airlock.dev/upgrade-to"
Version = tuple[int, int, int]


class UpgradeError(ValueError):
    """A version or document the plan cannot use; the message says which and why."""


def parse_version(text: str) -> Version:
    """`v1.36.3` or `1.36.3` (a suffix such as `-rc.0` is ignored) -> (1, 36, 3)."""
    match = _VERSION.match(str(text).strip())
    if not match:
        raise UpgradeError(f"{text!r} is not a Kubernetes version such as v1.37.2")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def vstr(version: Version) -> str:
    return "v{}.{}.{}".format(*version)


def step_problem(current: Version, target: Version) -> str | None:
    """Why going from `current` to `target` is refused, or None (one minor at most, up)."""
    if target < current:
        return (
            f"{vstr(target)} is older than the cluster's {vstr(current)}: kubeadm does not "
            "downgrade; restore the backup taken before the upgrade instead"
        )
    if target[0] != current[0] or target[1] > current[1] + 1:
        following = f"v{current[0]}.{current[1] + 1}"
        return (
            f"{vstr(current)} -> {vstr(target)} skips a minor release: upgrade to the newest "
            f"{following}.x first (airlock upgrade --to {following}.N with its bundle), then "
            f"to {vstr(target)}"
        )
    return None


def image_tag(image: str) -> str:
    """`registry.k8s.io/kube-apiserver:v1.36.3` -> `v1.36.3` ('' without a tag)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against a pod's labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels.get(key) in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def evicted_pods(pods: Iterable[Mapping[str, Any]], node: str) -> list[Mapping[str, Any]]:
    """Pods a `kubectl drain --ignore-daemonsets` of `node` evicts: running there, not
    owned by a DaemonSet, not a static (mirror) pod, not finished."""
    out = []
    for pod in pods:
        meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
        if spec.get("nodeName") != node or status.get("phase") in ("Succeeded", "Failed"):
            continue
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
            continue
        out.append(pod)
    return out


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pdb_blockers(
    node: str, evicted: Sequence[Mapping[str, Any]], pdbs: Iterable[Mapping[str, Any]]
) -> list[str]:
    """A drain of `node` cannot finish while a PodDisruptionBudget covering one of its
    pods allows no disruption now (it would wait until the drain's timeout)."""
    out = []
    for pdb in pdbs:
        namespace = pdb.get("metadata", {}).get("namespace")
        status = pdb.get("status", {})
        if int(status.get("disruptionsAllowed", 0)) > 0:
            continue
        covered = [
            _name(p)
            for p in evicted
            if p.get("metadata", {}).get("namespace") == namespace
            and selector_matches(
                pdb.get("spec", {}).get("selector"), p.get("metadata", {}).get("labels") or {}
            )
        ]
        if covered:
            out.append(
                f"draining {node} would evict {', '.join(covered)}, but PodDisruptionBudget "
                f"{_name(pdb)} allows no disruption now ({status.get('currentHealthy', 0)} "
                f"healthy, {status.get('desiredHealthy', 0)} required): scale the workload up "
                "or wait until its pods are healthy"
            )
    return out


def system_pod_problems(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """kube-system pods that are not running: a cluster in that state is not upgraded."""
    out = []
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        phase = status.get("phase", "Unknown")
        leaving = bool(meta.get("deletionTimestamp"))
        if (
            meta.get("namespace") == "kube-system"
            and phase not in ("Running", "Succeeded")
            and not leaving
        ):
            node = pod.get("spec", {}).get("nodeName") or "no node"
            out.append(
                f"system pod {_name(pod)} on {node} is {phase}: fix it first "
                f"(kubectl -n kube-system describe pod {meta.get('name', '')})"
            )
    return out


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def control_plane_versions(pods: Iterable[Mapping[str, Any]], node: str) -> dict[str, str]:
    """Component -> image tag of the static control-plane pods running on `node`."""
    out = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        component = (meta.get("labels") or {}).get("component", "")
        if (
            meta.get("namespace") == "kube-system"
            and pod.get("spec", {}).get("nodeName") == node
            and component in CONTROL_PLANE_COMPONENTS
        ):
            containers = pod.get("spec", {}).get("containers") or [{}]
            out[component] = image_tag(containers[0].get("image", ""))
    return out


def workload_version(objects: Iterable[Mapping[str, Any]], kind: str, name: str) -> str:
    """The image tag of the first container of kube-system's `kind`/`name` ('' if absent)."""
    for obj in objects:
        meta = obj.get("metadata", {})
        if obj.get("kind") == kind and meta.get("name") == name:
            containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get(
                "containers"
            ) or [{}]
            return image_tag(containers[0].get("image", ""))
    return ""


def config_diff(current: str, target: str) -> str:
    """A unified diff of the ClusterConfiguration before and after ('' when equal)."""
    lines = difflib.unified_diff(
        current.splitlines(keepends=True),
        target.splitlines(keepends=True),
        "ClusterConfiguration (now)",
        "ClusterConfiguration (after the upgrade)",
    )
    return "".join(lines)


def retarget_cluster_configuration(text: str, target: str) -> str:
    """The ClusterConfiguration YAML with kubernetesVersion set to `target` (the one
    field `kubeadm upgrade apply VERSION` changes in it)."""
    line = re.compile(r"^kubernetesVersion:.*$", re.MULTILINE)
    if not line.search(text):
        return text + f"kubernetesVersion: {target}\n"
    return line.sub(f"kubernetesVersion: {target}", text)


def build_plan(
    *,
    target: str,
    cluster_version: str,
    control_planes: Sequence[str],
    workers: Sequence[str],
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    pdbs: Sequence[Mapping[str, Any]],
    workloads: Sequence[Mapping[str, Any]],
    cluster_configuration: str,
    target_components: Mapping[str, str],
    current_components: Mapping[str, str],
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole plan; see the module docstring. `target_components`/`current_components`:
    versions of coredns, etcd, containerd the cluster-wide rows show (from the target
    bundle and from the hosts). `problems`: blockers found elsewhere
    (an unhealthy etcd member, a bundle without the target's files)."""
    want = parse_version(target)
    blockers = list(problems)
    step = step_problem(parse_version(cluster_version), want)
    if step:
        blockers.append(step)
    blockers += system_pod_problems(pods)
    by_name = {n.get("metadata", {}).get("name"): n for n in nodes}
    plan_nodes = []
    for index, host in enumerate([*control_planes, *workers]):
        is_cp = host in control_planes
        node = by_name.get(host)
        if node is None:
            blockers.append(
                f"host {host} is in the inventory but not a node of the cluster: deploy it "
                "first (airlock deploy) or take it out of the inventory"
            )
            continue
        entry = _node_entry(host, node, is_cp, index == 0, want, pods, pdbs)
        if not entry["ready"]:
            blockers.append(
                f"node {host} is NotReady: fix it first (journalctl -u kubelet on {host}); "
                "an upgrade drains and restarts nodes one at a time and needs the others Ready"
            )
        if entry["action"] != "done":
            blockers += entry.pop("blockers")
        else:
            entry.pop("blockers")
        plan_nodes.append(entry)
    cluster = [
        _component(
            "kube-proxy", workload_version(workloads, "DaemonSet", "kube-proxy"), vstr(want)
        ),
        _component(
            "coredns",
            workload_version(workloads, "Deployment", "coredns"),
            target_components.get("coredns", ""),
        ),
    ]
    current = {"containerd": runtime_versions(nodes), **current_components}
    cluster += [
        _component(name, current.get(name, ""), target_components[name])
        for name in ("etcd", "containerd")
        if name in target_components
    ]
    return {
        "target": vstr(want),
        "current": cluster_version,
        "blockers": blockers,
        "cluster": cluster,
        "config_diff": config_diff(
            cluster_configuration,
            retarget_cluster_configuration(cluster_configuration, vstr(want)),
        ),
        "nodes": plan_nodes,
        "pending": [n["name"] for n in plan_nodes if n["action"] != "done"],
    }


def runtime_versions(nodes: Sequence[Mapping[str, Any]]) -> str:
    """The containerd versions the nodes report (``containerd://2.2.1``), e.g. ``v2.2.1``."""
    found = []
    for node in nodes:
        runtime = str(node.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion", ""))
        name, _, version = runtime.partition("://")
        if name == "containerd" and version and _v(version) not in found:
            found.append(_v(version))
    return ", ".join(sorted(found))


def _v(version: str) -> str:
    """A version with the leading ``v`` every row of the plan uses (``3.6.16`` -> ``v3.6.16``)."""
    return f"v{version}" if version[:1].isdigit() else version


def _component(name: str, current: str, target: str) -> dict[str, str]:
    current = ", ".join(_v(v.strip()) for v in current.split(",") if v.strip())
    return {"component": name, "current": current or "?", "target": _v(target) if target else "?"}


def _node_entry(
    host: str,
    node: Mapping[str, Any],
    is_cp: bool,
    first: bool,
    want: Version,
    pods: Sequence[Mapping[str, Any]],
    pdbs: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    kubelet = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
    components = {"kubelet": [kubelet, vstr(want)]}
    if is_cp:
        for component, tag in sorted(control_plane_versions(pods, host).items()):
            components[component] = [tag, vstr(want)]
    marked = UPGRADE_MARK in (node.get("metadata", {}).get("annotations") or {})
    done = not marked and all(_at(cur, want) for cur, _ in components.values())
    if is_cp and len(components) < 1 + len(CONTROL_PLANE_COMPONENTS):
        done = False
    evicted = evicted_pods(pods, host)
    if done:
        action = "done"
    elif first:
        action = "kubeadm upgrade apply"
    else:
        action = "kubeadm upgrade node"
    return {
        "name": host,
        "role": "control-plane" if is_cp else "worker",
        "ready": _ready(node),
        "cordoned": bool(node.get("spec", {}).get("unschedulable")),
        "interrupted": marked,
        "action": action,
        "components": components,
        "drain": [] if done else [_name(p) for p in evicted],
        "blockers": pdb_blockers(host, evicted, pdbs),
    }


def _at(current: str, want: Version) -> bool:
    try:
        return parse_version(current) == want
    except UpgradeError:
        return False


def manifest_image_tag(manifest_text: str) -> str:
    """The image tag of a static pod manifest (/etc/kubernetes/manifests/*.yaml)."""
    match = re.search(r"^\s*image:\s*(\S+)\s*$", manifest_text, re.MULTILINE)
    return image_tag(match.group(1).strip("'\"")) if match else ""
