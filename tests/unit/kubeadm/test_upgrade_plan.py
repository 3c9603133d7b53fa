"""The upgrade plan (module_utils.kubeadm_upgrade) from a cluster's own objects.

The documents are shaped as `kubectl get ... -o json` returns them for a 1.36 cluster of
two control planes and two workers; each test changes one thing a user would meet.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import preflight_ignores
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_upgrade import (
    UPGRADE_MARK,
    UpgradeError,
    build_plan,
    evicted_pods,
    manifest_image_tag,
    parse_version,
    selector_matches,
    step_problem,
)

CPS = ["m1", "m2"]
WORKERS = ["w1", "w2"]
CONFIG = "apiServer: {}\nkubernetesVersion: v1.36.3\nnetworking:\n  podSubnet: 10.244.0.0/16\n"


def _node(name: str, version: str = "v1.36.3", ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {}},
        "spec": {},
        "status": {
            "nodeInfo": {
                "kubeletVersion": version,
                "containerRuntimeVersion": "containerd://2.2.1",
            },
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _pod(
    name: str,
    node: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    owner: str = "ReplicaSet",
    image: str = "example/web:1",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "ownerReferences": [{"kind": owner}],
        },
        "spec": {"nodeName": node, "containers": [{"image": image}]},
        "status": {"phase": "Running"},
    }


def _static(component: str, node: str, version: str = "v1.36.3") -> dict[str, Any]:
    pod = _pod(
        f"{component}-{node}",
        node,
        "kube-system",
        {"component": component, "tier": "control-plane"},
        owner="Node",
        image=f"registry.k8s.io/{component}:{version}",
    )
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    return pod


def _cluster(**changes: Any) -> dict[str, Any]:
    pods = [
        _static(c, n)
        for n in CPS
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    pods += [
        _pod("kube-proxy-a", "w1", "kube-system", owner="DaemonSet"),
        _pod("coredns-1", "m2", "kube-system", {"k8s-app": "kube-dns"}),
        _pod("web-1", "w1", labels={"app": "web"}),
        _pod("web-2", "w2", labels={"app": "web"}),
    ]
    args: dict[str, Any] = {
        "target": "1.37.2",
        "cluster_version": "v1.36.3",
        "control_planes": CPS,
        "workers": WORKERS,
        "nodes": [_node(n) for n in CPS + WORKERS],
        "pods": pods,
        "pdbs": [_pdb(allowed=1)],
        "workloads": [
            _workload("DaemonSet", "kube-proxy", "registry.k8s.io/kube-proxy:v1.36.3"),
            _workload("Deployment", "coredns", "registry.k8s.io/coredns/coredns:v1.14.2"),
        ],
        "cluster_configuration": CONFIG,
        "target_components": {"coredns": "v1.14.6", "etcd": "v3.7.3", "containerd": "2.2.1"},
        "current_components": {"etcd": "3.6.16"},
    }
    args.update(changes)
    return args


def _pdb(allowed: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1},
        "status": {"disruptionsAllowed": allowed, "currentHealthy": 2, "desiredHealthy": 1},
    }


def _workload(kind: str, name: str, image: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
    }


def test_a_healthy_cluster_gets_a_plan_in_upgrade_order_with_no_blocker() -> None:
    plan = build_plan(**_cluster())
    assert plan["blockers"] == []
    assert [n["name"] for n in plan["nodes"]] == ["m1", "m2", "w1", "w2"]
    assert [n["action"] for n in plan["nodes"]] == [
        "kubeadm upgrade apply",
        "kubeadm upgrade node",
        "kubeadm upgrade node",
        "kubeadm upgrade node",
    ]
    m1 = plan["nodes"][0]
    assert m1["components"]["kube-apiserver"] == ["v1.36.3", "v1.37.2"]
    assert m1["components"]["kubelet"] == ["v1.36.3", "v1.37.2"]
    # Drains evict workload pods, never DaemonSet or static pods.
    assert plan["nodes"][1]["drain"] == ["kube-system/coredns-1"]
    assert plan["nodes"][2]["drain"] == ["default/web-1"]
    rows = {r["component"]: (r["current"], r["target"]) for r in plan["cluster"]}
    assert rows == {
        "kube-proxy": ("v1.36.3", "v1.37.2"),
        "coredns": ("v1.14.2", "v1.14.6"),
        "etcd": ("v3.6.16", "v3.7.3"),
        "containerd": ("v2.2.1", "v2.2.1"),
    }
    assert "-kubernetesVersion: v1.36.3" in plan["config_diff"]
    assert "+kubernetesVersion: v1.37.2" in plan["config_diff"]
    assert plan["pending"] == ["m1", "m2", "w1", "w2"]


@pytest.mark.parametrize(
    ("current", "target", "words"),
    [
        ("v1.35.4", "v1.37.2", "skips a minor release: upgrade to the newest v1.36.x first"),
        ("v1.37.2", "v1.36.3", "older than the cluster's v1.37.2"),
        ("v1.36.3", "v2.0.0", "skips a minor release"),
    ],
)
def test_a_skipped_or_backward_minor_blocks(current: str, target: str, words: str) -> None:
    plan = build_plan(**_cluster(cluster_version=current, target=target))
    assert any(words in b for b in plan["blockers"]), plan["blockers"]


def test_the_next_minor_and_a_patch_are_allowed() -> None:
    assert step_problem(parse_version("v1.36.3"), parse_version("1.37.2")) is None
    assert step_problem(parse_version("v1.37.0"), parse_version("1.37.2")) is None


def test_a_not_ready_node_blocks_and_is_named() -> None:
    nodes = [_node(n, ready=n != "w2") for n in CPS + WORKERS]
    plan = build_plan(**_cluster(nodes=nodes))
    assert any(b.startswith("node w2 is NotReady") for b in plan["blockers"]), plan["blockers"]


def test_an_inventory_host_that_is_no_node_blocks() -> None:
    plan = build_plan(**_cluster(workers=[*WORKERS, "w9"]))
    assert any("host w9 is in the inventory but not a node" in b for b in plan["blockers"])


def test_a_budget_that_allows_no_disruption_blocks_the_drain_it_would_stall() -> None:
    plan = build_plan(**_cluster(pdbs=[_pdb(allowed=0)]))
    blockers = [b for b in plan["blockers"] if "PodDisruptionBudget default/web" in b]
    assert len(blockers) == 2  # w1 and w2 each hold one of its pods
    assert "draining w1 would evict default/web-1" in blockers[0]


def test_nodes_at_the_target_are_done_and_a_finished_cluster_has_nothing_pending() -> None:
    upgraded = _cluster(
        cluster_version="v1.37.2",
        nodes=[_node(n, "v1.37.2") for n in CPS + WORKERS],
        pods=[
            _static(c, n, "v1.37.2")
            for n in CPS
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ],
    )
    plan = build_plan(**upgraded)
    assert plan["pending"] == []
    assert {n["action"] for n in plan["nodes"]} == {"done"}
    assert plan["blockers"] == []


def test_a_run_stopped_half_way_resumes_with_the_marked_node_only() -> None:
    nodes = [_node(n, "v1.37.2") for n in CPS] + [_node(n) for n in WORKERS]
    nodes[1]["metadata"]["annotations"][UPGRADE_MARK] = "v1.37.2"  # m2, versions done
    nodes[1]["spec"]["unschedulable"] = True
    pods = [
        _static(c, n, "v1.37.2")
        for n in CPS
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    plan = build_plan(**_cluster(cluster_version="v1.37.2", nodes=nodes, pods=pods))
    assert plan["pending"] == ["m2", "w1", "w2"]
    m2 = plan["nodes"][1]
    assert m2["interrupted"] and m2["cordoned"]


def test_a_blocking_budget_on_a_done_node_does_not_block() -> None:
    nodes = [_node(n) for n in CPS] + [_node("w1", "v1.37.2"), _node("w2")]
    plan = build_plan(**_cluster(nodes=nodes, pdbs=[_pdb(allowed=0)]))
    assert not any("draining w1" in b for b in plan["blockers"])
    assert any("draining w2" in b for b in plan["blockers"])


def test_problems_found_elsewhere_are_blockers() -> None:
    plan = build_plan(**_cluster(problems=["https://10.0.0.3:2379: connection refused"]))
    assert plan["blockers"] == ["https://10.0.0.3:2379: connection refused"]


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "1"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]},
            {"app": "b"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]},
            {"app": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
        ({}, {"app": "a"}, True),  # an empty selector selects every pod
        (None, {"app": "a"}, False),
    ],
)
def test_label_selectors(selector: Any, labels: dict[str, str], match: bool) -> None:
    assert selector_matches(selector, labels) is match


def test_finished_pods_are_not_evicted() -> None:
    done = _pod("job-1", "w1")
    done["status"]["phase"] = "Succeeded"
    assert evicted_pods([done, _pod("web-1", "w1")], "w1") == [_pod("web-1", "w1")]


def test_versions_and_static_pod_manifests() -> None:
    assert parse_version("1.37.2") == (1, 37, 2) == parse_version("v1.37.2-rc.0")
    with pytest.raises(UpgradeError, match="not a Kubernetes version"):
        parse_version("latest")
    manifest = (
        "spec:\n  containers:\n  - command: [kube-apiserver]\n"
        "    image: registry.k8s.io/kube-apiserver:v1.37.2\n"
    )
    assert manifest_image_tag(manifest) == "v1.37.2"


@pytest.mark.parametrize(
    ("given", "cgroup", "expected"),
    [
        ([], 1, ["SystemVerification"]),
        ([], 2, []),
        (["Swap"], 1, ["Swap", "SystemVerification"]),
        (["systemverification"], 1, ["systemverification"]),
        (["all"], 1, ["all"]),
    ],
)
def test_cgroup_v1_hosts_skip_system_verification(
    given: list[str], cgroup: int, expected: list[str]
) -> None:
    params = {"ignore_preflight_errors": copy.copy(given), "cgroup_version": cgroup}
    assert preflight_ignores(params) == expected


def test_a_system_pod_that_does_not_run_blocks() -> None:
    cluster = _cluster()
    stuck = _pod("coredns-2", "w2", "kube-system", {"k8s-app": "kube-dns"})
    stuck["status"]["phase"] = "Pending"
    cluster["pods"] = [*cluster["pods"], stuck]
    plan = build_plan(**cluster)
    assert plan["blockers"] == [
        "system pod kube-system/coredns-2 on w2 is Pending: fix it first "
        "(kubectl -n kube-system describe pod coredns-2)"
    ]
