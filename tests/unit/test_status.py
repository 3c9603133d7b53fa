"""airlock status: the events of playbooks/status.yml -> the status and its problems."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml

from airlock import status
from airlock.runner import Failure
from tests.conftest import ROOT

HAPROXY_CSV = (
    "# pxname,svname,status,\n"
    "kube_apiserver,m1,UP,\nkube_apiserver,m2,{m2},\nkube_apiserver,BACKEND,UP,\n"
    "stats,FRONTEND,OPEN,\n"
)


def _ok(host: str, task: str, res: dict[str, Any]) -> dict[str, Any]:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": res}}


def _node(name: str, ready: str = "True", role: str = "control-plane") -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {f"node-role.kubernetes.io/{role}": ""}},
        "status": {
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletNotReady"}],
            "nodeInfo": {"kubeletVersion": "v1.37.2"},
        },
    }


def _pod(name: str, phase: str = "Running", ready: bool = True, restarts: int = 0) -> dict:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"nodeName": "m1"},
        "status": {
            "phase": phase,
            "containerStatuses": [{"ready": ready, "restartCount": restarts}],
        },
    }


def _healthy(**change: Any) -> list[dict[str, Any]]:
    """A healthy 2-host cluster's events; `change` replaces one reader's result by name."""
    artifacts = base64.b64encode(
        json.dumps({"bundle": {"profile": "lab", "kube_version": "1.37.2"}}).encode()
    ).decode()
    units = {"stdout": "Id=kubelet.service\nLoadState=loaded\nActiveState=active\n"
                       "SubState=running\n\nId=containerd.service\nLoadState=loaded\n"
                       "ActiveState=active\nSubState=running"}  # fmt: skip
    items = [_node("m1"), _node("w1", role="worker"), _pod("etcd-m1"), _pod("coredns-1")]
    events = {
        "settings": _ok("m1", status.SETTINGS, {"msg": {"vip": "10.0.0.100", "cert_days": "30"}}),
        "bundle_m1": _ok("m1", status.BUNDLE, {"content": artifacts}),
        "bundle_w1": _ok("w1", status.BUNDLE, {"content": artifacts}),
        "units": _ok("m1", status.UNITS, units),
        "etcd": _ok("m1", status.ETCD, {"endpoints": [
            {"healthy": True, "is_leader": True, "db_size": 2**21, "version": "3.7.3"}]}),
        "vip": _ok("m1", status.ADDRESSES, {"stdout": "2: eth0 inet 10.0.0.11/24 brd x\n"
                                            "2: eth0 inet 10.0.0.100/32 scope global eth0"}),
        "haproxy": _ok("m1", status.HAPROXY, {"status": 200,
                                              "content": HAPROXY_CSV.format(m2="UP")}),
        "readyz": _ok("m1", status.READYZ, {"status": 200, "content": "ok"}),
        "kube": _ok("m1", status.KUBE, {"rc": 0, "stdout": json.dumps({"items": items})}),
        "certs": _ok("m1", status.CERTS, {"certificates": [
            {"path": "/etc/kubernetes/pki/ca.crt", "not_after": "2036-01-01T00:00:00Z",
             "days_left": 3600},
            {"path": "/etc/kubernetes/pki/apiserver.crt", "not_after": "2027-11-01T00:00:00Z",
             "days_left": 330}]}),
    }  # fmt: skip
    events.update(change)
    return list(events.values())


def test_a_healthy_cluster_has_no_problems_and_says_so() -> None:
    found = status.from_events(_healthy())
    assert found.problems == []
    screen = status.render(found)
    assert "Nodes (2/2 Ready)" in screen
    assert "VIP 10.0.0.100: held by m1" in screen
    assert "leader" in screen and "2.0 MiB" in screen
    assert "Earliest certificate expiry: 2027-11-01T00:00:00Z (330 days)" in screen
    assert "Bundle deployed: lab 1.37.2" in screen
    assert "Services: 2/2 active on 1 hosts" in screen
    assert screen.endswith("healthy")
    assert json.loads(found.to_json())["vip_holders"] == ["m1"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"etcd": _ok("m1", status.ETCD, {"endpoints": [{"healthy": False,
          "error": "connection refused"}]})},
         "etcd member m1 is not healthy: connection refused"),
        ({"vip": _ok("m1", status.ADDRESSES, {"stdout": "2: eth0 inet 10.0.0.11/24"})},
         "the VIP 10.0.0.100 is held by no load balancer (exactly one must hold it)"),
        ({"haproxy": _ok("m1", status.HAPROXY, {"status": 200,
          "content": HAPROXY_CSV.format(m2="DOWN")})},
         "m1: haproxy sees apiserver m2 DOWN"),
        ({"readyz": _ok("m1", status.READYZ, {"status": 500, "content": "[-]etcd failed"})},
         "m1: its apiserver is not ready (HTTP 500: [-]etcd failed)"),
        ({"kube": _ok("m1", status.KUBE, {"rc": 1, "stderr": "Unable to connect to the server"})},
         "the API did not answer kubectl on m1: Unable to connect to the server"),
        ({"kube": _ok("m1", status.KUBE, {"rc": 0, "stdout": json.dumps({"items": [
          _node("w1", ready="False")]})})},
         "node w1 is NotReady (KubeletNotReady)"),
        ({"kube": _ok("m1", status.KUBE, {"rc": 0, "stdout": json.dumps({"items": [
          _pod("coredns-1", ready=False, restarts=7)]})})},
         "pod kube-system/coredns-1 on m1 is Running, not ready (7 restarts)"),
        ({"units": _ok("m1", status.UNITS, {"stdout": "Id=kubelet.service\nActiveState=active\n"
          "SubState=running\n\nId=haproxy.service\nLoadState=loaded\nActiveState=failed\n"
          "SubState=failed"})},
         "m1: haproxy is failed; `systemctl status haproxy` on m1"),
        ({"bundle_w1": _ok("w1", status.BUNDLE, {"content": base64.b64encode(json.dumps(
          {"bundle": {"profile": "lab", "kube_version": "1.36.5"}}).encode()).decode()})},
         "hosts run different bundles: lab 1.36.5: w1; lab 1.37.2: m1"),
        ({"ceph": _ok("m1", status.CEPH, {"rc": 0, "stdout": json.dumps({"status": "HEALTH_WARN",
          "checks": {"OSD_DOWN": {"summary": {"message": "1 osds down"}}}})})},
         "Ceph: HEALTH_WARN: OSD_DOWN: 1 osds down"),
        ({"certs": _ok("m1", status.CERTS, {"certificates": [{"path": "/etc/x.crt",
          "not_after": "2026-12-10T00:00:00Z", "days_left": 5, "expiring": True}]})},
         "m1: /etc/x.crt expires in 5 days (2026-12-10T00:00:00Z); "
         "`airlock certs renew -i INVENTORY`"),
    ],
)  # fmt: skip
def test_each_unhealthy_thing_is_one_line_naming_where(change: dict, problem: str) -> None:
    found = status.from_events(_healthy(**change))
    assert problem in found.problems, found.problems
    screen = status.render(found)
    assert "UNHEALTHY" in screen and problem in screen


def test_a_host_that_could_not_be_read_is_named() -> None:
    found = status.from_events(_healthy(), [Failure("w1", "Gathering", "ssh: timed out", True)])
    assert found.problems == [
        "w1: could not be read (ssh: timed out); `airlock check -i INVENTORY --limit w1`"
    ]


def test_the_task_names_are_the_playbooks() -> None:
    plays = yaml.safe_load((ROOT / "playbooks" / "status.yml").read_text())
    names = {task["name"] for play in plays for task in play.get("tasks", [])}
    readers = {v for k, v in vars(status).items() if k.isupper() and isinstance(v, str)}
    readers -= {status.BACKEND}
    assert readers <= names, readers - names


def test_an_answer_too_large_to_record_says_so_rather_than_a_missing_exit_code() -> None:
    # ansible-runner empties a result over MAX_EVENT_RES (the runner raises it); if that
    # ever happens the screen says what, not "kubectl exit code None".
    found = status.from_events(_healthy(kube=_ok("m2", status.KUBE, {})))
    screen = status.render(found)
    assert "the answer of kubectl on m2 was too large to be recorded" in screen
