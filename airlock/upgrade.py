"""`airlock upgrade`: the target bundle, the run's extra variables, the plan on screen.

The plan itself is computed on the cluster by the airlock.cluster.kubeadm_upgrade module
(plugins/module_utils/kubeadm_upgrade.py); this module reads the target bundle on the
controller (what release and component versions it carries, whether it has every file
the upgrade needs) and prints the plan the module returned.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.errors import AirlockError

#: What an upgrade installs from the target bundle (component names of its MANIFEST.json).
NEEDED = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)
PLAN_TASK = "Plan the upgrade"


@dataclass(frozen=True)
class TargetBundle:
    path: Path
    kube_version: str
    components: Mapping[str, str]  # component -> version (the first entry of each)


def normalise(version: str) -> str:
    """`1.37.2` or `v1.37.2` -> `v1.37.2`; anything else is refused."""
    parts = version.strip().removeprefix("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise AirlockError(f"--to {version}: give a Kubernetes release such as 1.37.2")
    return "v" + ".".join(parts)


def read_bundle(path: Path) -> TargetBundle:
    """The release and component versions a bundle's MANIFEST.json names."""
    if not path.is_file():
        raise AirlockError(f"--bundle {path}: no such file; build it with `airlock bundle build`")
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("MANIFEST.json")
            if member is None:
                raise KeyError("MANIFEST.json")
            manifest = json.load(member)
    except (tarfile.TarError, KeyError, OSError, ValueError) as exc:
        raise AirlockError(
            f"bundle {path}: cannot read its MANIFEST.json ({exc}); check it with "
            f"`airlock bundle verify {path}`"
        ) from None
    components: dict[str, str] = {}
    for artifact in manifest.get("artifacts") or []:
        if isinstance(artifact, dict) and artifact.get("kind") != "deb":
            components.setdefault(str(artifact.get("component")), str(artifact.get("version")))
    return TargetBundle(path, str(manifest.get("kube_version", "")), components)


def bundle_problems(bundle: TargetBundle, target: str) -> list[str]:
    """Why `bundle` cannot carry an upgrade to `target` (empty when it can)."""
    if normalise(bundle.kube_version or "0.0.0") != target:
        return [
            f"bundle {bundle.path} carries Kubernetes {bundle.kube_version or '?'}, not "
            f"{target}: pass --bundle with the {target} bundle (airlock bundle build "
            f"--kube-version {target})"
        ]
    missing = [name for name in NEEDED if normalise_or_empty(bundle.components.get(name)) != target]
    if missing:
        return [f"bundle {bundle.path} lacks {', '.join(missing)} at {target}; rebuild it"]
    return []


def normalise_or_empty(version: str | None) -> str:
    try:
        return normalise(version or "")
    except AirlockError:
        return ""


def extra_vars(bundle: TargetBundle, target: str, batch: str) -> dict[str, Any]:
    """The variables `airlock upgrade` runs playbooks/upgrade.yml with."""
    components = {
        name: bundle.components[name]
        for name in ("coredns", "etcd", "containerd")
        if name in bundle.components
    }
    return {
        "airlock_kube_version": target.removeprefix("v"),
        "airlock_bundle": str(bundle.path.resolve()),
        "kubernetes_upgrade_components": components,
        "airlock_upgrade_batch": batch,
    }


def plan_from_events(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The plan the kubeadm_upgrade module returned in this run, if it ran."""
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task") == PLAN_TASK:
            plan = (data.get("res") or {}).get("plan")
            if isinstance(plan, dict):
                return plan
    return None


def render_plan(plan: Mapping[str, Any]) -> str:
    """The plan as a person reads it: cluster rows, nodes in order, config diff, blockers."""
    lines = [f"Upgrade plan: Kubernetes {plan.get('current')} -> {plan.get('target')}", ""]
    lines.append(f"  {'component':<26}{'now':<22}after")
    for row in plan.get("cluster") or []:
        lines.append(f"  {row['component']:<26}{row['current']:<22}{row['target']}")
    lines += ["", "Nodes, in the order they are upgraded (one at a time):"]
    for index, node in enumerate(plan.get("nodes") or [], 1):
        state = "Ready" if node.get("ready") else "NOT READY"
        if node.get("cordoned"):
            state += ", cordoned"
        if node.get("interrupted"):
            state += ", left by an interrupted upgrade"
        lines.append(f"  {index}. {node['name']} ({node['role']}, {state}): {node['action']}")
        for name, (now, after) in (node.get("components") or {}).items():
            same = " (already)" if now == after else ""
            lines.append(f"       {name:<24}{now or '?':<22}{after}{same}")
        drain = node.get("drain") or []
        if node.get("action") != "done":
            evicts = ", ".join(drain) if drain else "no pods to evict"
            lines.append(f"       drain: {evicts}")
    diff = plan.get("config_diff") or ""
    lines += ["", "kubeadm ClusterConfiguration changes (kubeadm-config ConfigMap):"]
    lines += [f"  {line}" for line in diff.splitlines()] or ["  none"]
    blockers = plan.get("blockers") or []
    lines += ["", "Blockers:" if blockers else "Blockers: none"]
    lines += [f"  - {b}" for b in blockers]
    pending = plan.get("pending") or []
    lines.append(
        f"\n{len(pending)} node(s) to upgrade: {', '.join(pending)}"
        if pending
        else "\nEvery node is at the target: nothing to upgrade."
    )
    return "\n".join(lines)
