"""`make e2e-upgrade`: a 1.36 cluster moved to 1.37 under load, interrupted and resumed.

A fresh --internal 3+2 lab installs Kubernetes 1.36.3 from its lab bundle. A Deployment
of two busybox web servers (one per worker) behind a NodePort Service with a
PodDisruptionBudget (minAvailable 1) serves a client that requests through the VIP every
0.2 s for the whole upgrade, and a probe asks the API's /readyz through the VIP (with the
cluster CA) every 0.5 s. Then:
1. `airlock upgrade --plan` (asserted: order, actions, drains, the config diff, no blocker);
2. `airlock upgrade --to 1.37.2` killed (the whole controller side, SIGKILL) once the
   second control plane's drain has started, i.e. after the first control plane is done;
3. `airlock upgrade` again: it must resume with that host and finish;
4. every node Ready at 1.37.2, every system pod running, and a further `airlock upgrade`
   changes nothing.
The failed client requests and API probes are printed (the goal is zero), with the upgrade
time per node (benchmarks/upgrade_times.py reads the same events).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from benchmarks.upgrade_times import node_times
from tests.conftest import ROOT, lab_hosts, popen_airlock, run_airlock
from tests.e2e.conftest import _bundle, _load_toolbox, _program_from, _toolbox_archive
from tests.faults.test_interrupted_deploy import _changed_tasks, _kill_tree
from tests.probes import Probe, api_context

pytestmark = pytest.mark.e2e
LAB = "upgrade"
SUBNET = "10.77.46.0/24"
FROM, TO = "1.36.3", "1.37.2"
INVENTORY = ROOT / ".airlock" / "labs" / LAB / "inventory"
KUBECONFIG = INVENTORY / ".credentials" / "kubernetes" / "admin.conf"
NODEPORT = 30080
TOOLBOX = "localhost/airlock-e2e/toolbox:1"
# The second time this task starts (roles/kubernetes/tasks/drain.yml, named after the node),
# the first control plane is done and m2 is under way.
KILL_TASK = "Drain the node, PodDisruptionBudgets respected"


def _kubectl(kubectl: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(kubectl), "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _workload(kubectl: Path) -> None:
    serve = (
        "/bin/busybox mkdir -p /www && /bin/busybox hostname > /www/index.html"
        " && exec /bin/busybox httpd -f -p 8080 -h /www"
    )
    labels = {"app": "web"}
    documents = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [
                            {
                                "name": "web",
                                "image": TOOLBOX,
                                "imagePullPolicy": "Never",
                                "command": ["/bin/busybox", "sh", "-c", serve],
                                "readinessProbe": {
                                    "tcpSocket": {"port": 8080},
                                    "periodSeconds": 1,
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": NODEPORT}],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
        },
    ]
    for doc in documents:
        _kubectl(kubectl, "apply", "-f", "-", stdin=json.dumps(doc))
    _kubectl(kubectl, "rollout", "status", "deployment/web", "--timeout=300s")


def _upgrade(*extra: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return run_airlock(
        "upgrade",
        "-i",
        str(INVENTORY),
        "--to",
        TO,
        "--bundle",
        str(BUNDLES[TO]),
        *extra,
        timeout=timeout,
    )


def _upgrade_killed_at_second(task: str, delay: float) -> str:
    proc = popen_airlock("upgrade", "-i", str(INVENTORY), "--to", TO, "--bundle", str(BUNDLES[TO]))
    assert proc.stdout is not None
    seen: list[str] = []
    count = 0
    for line in proc.stdout:
        seen.append(line)
        if task in line:
            count += 1
            if count == 2:
                time.sleep(delay)
                _kill_tree(proc.pid)
                proc.wait()
                return "".join(seen)
    proc.wait()
    raise AssertionError(f"the upgrade never reached {task!r} twice:\n{''.join(seen)[-5000:]}")


def _newest_upgrade_run() -> Path:
    runs = sorted((ROOT / ".airlock" / "runs").glob("*-upgrade"), key=lambda p: p.name)
    for run in reversed(runs):
        events = run / "events.jsonl"
        if events.is_file() and f"labs/{LAB}/inventory" in events.read_text(errors="replace"):
            return run
    raise AssertionError("no upgrade run of this lab in .airlock/runs")


BUNDLES: dict[str, Path] = {}


def test_a_cluster_is_upgraded_one_minor_under_load_and_resumes_after_a_kill(
    tmp_path: Path,
) -> None:
    BUNDLES[FROM] = _bundle(FROM)
    BUNDLES[TO] = _bundle(TO)
    kubectl = _program_from(BUNDLES[TO], "kubectl", tmp_path / "kubectl")
    up = ("--internal", "--masters", "3", "--workers", "2", "--subnet", SUBNET)
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    with lab_hosts(LAB, *up, "--kube-version", FROM, timeout=1800, keep=keep):
        run_airlock("check", "-i", str(INVENTORY), check=True, timeout=600)
        deploy = run_airlock("deploy", "-i", str(INVENTORY), timeout=3600)
        assert deploy.returncode == 0, deploy.stdout[-6000:]
        _load_toolbox(_toolbox_archive(ROOT / ".airlock" / "cache"), LAB, ("w1", "w2"))
        _workload(kubectl)
        vip = (INVENTORY / "group_vars" / "all" / "lab.yml").read_text()
        vip = next(
            line.split(":", 1)[1].strip()
            for line in vip.splitlines()
            if line.startswith("airlock_api_vip:")
        )
        client = Probe(f"http://{vip}:{NODEPORT}/", 0.2)
        api = Probe(f"https://{vip}:8443/readyz", 0.5, api_context(KUBECONFIG))
        threads = [client.start(), api.start()]

        plan = _upgrade("--plan", timeout=600)
        print(f"\n--- airlock upgrade --plan\n{plan.stdout}")
        assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr
        for words in (
            f"Upgrade plan: Kubernetes v{FROM} -> v{TO}",
            "1. m1 (control-plane, Ready): kubeadm upgrade apply",
            "2. m2 (control-plane, Ready): kubeadm upgrade node",
            "4. w1 (worker, Ready): kubeadm upgrade node",
            "drain: default/web-",
            f"+kubernetesVersion: v{TO}",
            "Blockers: none",
            "5 node(s) to upgrade: m1, m2, m3, w1, w2",
        ):
            assert words in plan.stdout, words

        started = time.monotonic()
        killed = _upgrade_killed_at_second(KILL_TASK, 3)
        first_run = _newest_upgrade_run()
        resumed_plan = _upgrade("--plan", timeout=600)
        print(f"\n--- plan after the kill\n{resumed_plan.stdout}")
        assert "1. m1 (control-plane, Ready): done" in resumed_plan.stdout, killed[-3000:]
        assert "m2 (control-plane" in resumed_plan.stdout

        resumed = _upgrade()
        total = time.monotonic() - started
        assert resumed.returncode == 0, resumed.stdout[-8000:] + resumed.stderr
        second_run = _newest_upgrade_run()

        nodes = json.loads(_kubectl(kubectl, "get", "nodes", "-o", "json"))["items"]
        versions = {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes}
        assert set(versions.values()) == {f"v{TO}"}, versions
        assert all(not n["spec"].get("unschedulable") for n in nodes), "a node stayed cordoned"
        pods = json.loads(_kubectl(kubectl, "get", "pods", "-A", "-o", "json"))["items"]
        assert all(p["status"].get("phase") == "Running" for p in pods), [
            p["metadata"]["name"] for p in pods if p["status"].get("phase") != "Running"
        ]
        client.stop.set()
        api.stop.set()
        for thread in threads:
            thread.join()

        again = _upgrade()
        assert again.returncode == 0, again.stdout[-6000:]
        again_changed = _changed_tasks(_newest_upgrade_run())

        print(f"\nupgrade v{FROM} -> v{TO}: {total:.0f}s in all (killed once, resumed)")
        for run, label in ((first_run, "killed run"), (second_run, "resumed run")):
            for host, seconds in node_times(run).items():
                print(f"  {label}: {host} {seconds:.0f}s")
        print(
            f"client through the VIP: {client.ok} answered, {client.failed} failed "
            f"{client.failures}"
        )
        print(f"API /readyz through the VIP: {api.ok} answered, {api.failed} failed {api.failures}")
        print(f"further upgrade: {len(again_changed)} changes {again_changed}")
        assert again_changed == [], again_changed
