"""`airlock check`'s per-host part: results are read from the preflight module's data and the
python3 check's output, never from task names; the ports come from the roles' settings.

The table tests feed `_event_problems` runner events; the last test runs playbooks/check.yml
through ansible-runner against this machine (a local connection on loopback, no podman).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airlock.check import (
    PREFLIGHT_MODULE,
    PYTHON_MISSING,
    _event_problems,
    host_notes,
    host_problems,
)
from airlock.inventory import load_inventory
from tests.inventory_factory import write_inventory

PORT_PROBLEM = (
    "host m2: port 2380/tcp is in use by python3 (pid 7); stop it or move it to another port"
)
OS_CHECK = {"check": "os", "ok": True, "message": "OS debian-12 is supported", "fix": ""}
PORT_CHECK = {
    "check": "port",
    "ok": False,
    "port": 2380,
    "message": "port 2380/tcp is in use by python3 (pid 7)",
    "fix": "stop it or move it to another port",
}


def _event(kind: str, res: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": "m2", "res": res, **data}}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            _event(
                "runner_on_ok",
                {"checks": [OS_CHECK, PORT_CHECK]},
                task="any name at all",
                resolved_action=PREFLIGHT_MODULE,
            ),
            [PORT_PROBLEM],
        ),
        (  # older ansible-runner events carry only task_action
            _event("runner_on_ok", {"checks": [PORT_CHECK]}, task_action=PREFLIGHT_MODULE),
            [PORT_PROBLEM],
        ),
        (  # another module's result is not read, whatever the task is called
            _event(
                "runner_on_ok",
                {"checks": [PORT_CHECK]},
                task="Check OS, swap, ports, disk, clock and network",
                resolved_action="ansible.builtin.debug",
            ),
            [],
        ),
        (
            _event(
                "runner_on_failed",
                {"rc": 1, "stdout": PYTHON_MISSING + "\r\n", "msg": "non-zero return code"},
                task="renamed", resolved_action="ansible.builtin.raw",
            ),
            ["host m2: has no python3; install python3 on it (apt-get install python3)"],
        ),
        (  # sudo failing on the python3 check is not a missing python3
            _event(
                "runner_on_failed",
                {"msg": "Missing sudo password"},
                task="Check that python3 is installed", resolved_action="ansible.builtin.raw",
            ),
            ["host m2: privilege escalation failed: Missing sudo password; allow the SSH user "
             "passwordless sudo, or set ansible_become_password"],
        ),
        (
            _event("runner_on_unreachable", {"msg": "Connection refused"}),
            ["host m2: cannot be reached over SSH: Connection refused; check ansible_host, "
             "ansible_user and the SSH key, and that sshd runs"],
        ),
    ],
    ids=["preflight", "task-action", "other-module", "no-python3", "sudo", "unreachable"],
)  # fmt: skip
def test_event_problems(event: dict[str, Any], expected: list[str]) -> None:
    answered: set[str] = set()
    assert [str(p) for p in _event_problems(event, 2.0, answered)] == expected
    assert answered == ({"m2"} if expected else set())


def test_the_python3_check_prints_what_check_py_looks_for() -> None:
    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "check.yml"
    assert f"echo '{PYTHON_MISSING}'; exit 1" in playbook.read_text()


def _local_inventory(directory: Path, **settings: Any) -> Path:
    host = {
        "ip": "127.0.0.1",
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,  # the play becomes root; here the tests' user is enough
    }
    hosts = {
        "all": {
            "hosts": {"m1": host},
            "children": {g: {"hosts": {"m1": None}} for g in ("etcd", "kube_control_plane", "lb")},
        }
    }
    group_vars = {"airlock_cluster_name": "unit", "airlock_min_free_gb": 0, **settings}
    return write_inventory(directory, hosts, group_vars)


def test_check_takes_ports_from_the_role_settings_and_reads_the_module_result(
    tmp_path: Path,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        # etcd_peer_port set in the inventory, etcd_client_port from role etcd's defaults.
        inventory = load_inventory(_local_inventory(tmp_path / "inv", etcd_peer_port=port))
        problems, result = host_problems(inventory)
    oks = [e["event_data"] for e in result.events if e["event"] == "runner_on_ok"]
    preflight = [d["res"] for d in oks if d.get("resolved_action") == PREFLIGHT_MODULE]
    assert len(preflight) == 1, f"see {result.run_dir}"
    ports = [p["port"] for p in preflight[0]["invocation"]["module_args"]["ports"]]
    assert ports == [2379, port, 6443, 10257, 10259, 10250, 8443]
    mine = [str(p) for p in problems if f"port {port}/" in str(p)]
    assert len(mine) == 1 and mine[0].startswith(f"host m1: port {port}/tcp is in use by "), mine
    assert mine[0].endswith("; stop it or move it to another port")
    assert not [p for p in problems if "was not checked" in p.what or "failed" in p.what], problems


def test_a_check_passed_with_a_warning_becomes_a_note_not_a_problem() -> None:
    cgroup = {
        "check": "cgroup",
        "ok": True,
        "message": "cgroup v1, deprecated",
        "fix": "",
        "warning": True,
    }
    event = _event("runner_on_ok", {"checks": [OS_CHECK, cgroup]}, resolved_action=PREFLIGHT_MODULE)
    assert _event_problems(event, 2.0, set()) == []

    result = SimpleNamespace(events=[event])
    assert host_notes(result) == ["host m2: cgroup v1, deprecated"]  # type: ignore[arg-type]
