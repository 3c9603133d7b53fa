"""A deploy cut short recovers: kill the controller at points spread over the stages.

`make e2e-faults`: a fresh --internal 3+2 lab from the lab bundle. `airlock deploy` is
started and, once its progress shows a given task, everything it runs on the controller
(airlock, ansible-runner, ansible-playbook, the SSH connections) is killed with SIGKILL,
as a crashed or powered-off controller would be. The next deploy is killed at the next
point, and so on: during the bundle fetch, etcd's start, `kubeadm init`, a control-plane
join and a worker join. Then one deploy runs to the end with no manual step in between,
the cluster must be whole (5 nodes Ready, every system pod running, the API through the
VIP), and a further deploy must change nothing. What each interrupted run had changed
before it was killed is printed from its events.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, lab_hosts, popen_airlock, run_airlock
from tests.e2e.conftest import _bundle, _program_from

pytestmark = pytest.mark.e2e
LAB = "faults"
SUBNET = "10.77.36.0/24"
INVENTORY = ROOT / ".airlock" / "labs" / LAB / "inventory"
KUBECONFIG = INVENTORY / ".credentials" / "kubernetes" / "admin.conf"

# (what is interrupted, a task name the progress prints, the hosts whose `kubeadm` process
# must be running before the kill (none: kill `delay` s after the task starts), delay)
KILL_POINTS = [
    ("the bundle fetch", "Fetch each artifact and check its sha256", (), 4),
    ("etcd's start", "Start and enable etcd", (), 1),
    ("kubeadm init", "Initialise the first control-plane host", ("m1",), 5),
    ("a control-plane join", "Join the other control-plane hosts, one at a time", ("m2", "m3"), 5),
    ("a worker join", "Join the workers", ("w1", "w2"), 2),
]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children.get(current, []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL the process and everything it started (stopped first, so none escapes)."""
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGSTOP)
    for each in [pid, *_descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


def _newest_run() -> Path:
    """This lab's newest deploy run (other labs' runs may share the directory)."""
    runs = sorted((ROOT / ".airlock" / "runs").glob("*-site"), key=lambda p: p.name)
    mine = f"labs/{LAB}/inventory"
    for run in reversed(runs):
        events = run / "events.jsonl"
        if events.is_file() and mine in events.read_text(errors="replace"):
            return run
    raise AssertionError(f"no deploy run of lab {LAB} in .airlock/runs")


def _changed_tasks(run_dir: Path) -> list[str]:
    events = run_dir / "events.jsonl"
    changed = []
    for line in events.read_text().splitlines() if events.is_file() else []:
        event = json.loads(line)
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            changed.append(f"{data.get('host')}: {data.get('task')}")
    return changed


def _kubeadm_runs(hosts: tuple[str, ...]) -> str | None:
    """The first of `hosts` on which a `kubeadm` process runs now, if any (all hosts are
    asked at once: a worker's join lasts a few seconds, sequential probes missed it)."""
    probes = {
        host: subprocess.Popen(
            ["podman", "exec", f"airlock-{LAB}-{host}", "pgrep", "-x", "kubeadm"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for host in hosts
    }
    running = [host for host, probe in probes.items() if probe.wait() == 0]
    return running[0] if running else None


def _deploy_killed_at(task: str, hosts: tuple[str, ...], delay: float) -> tuple[str, str]:
    """Start a deploy and kill it during `task`; (what the kill interrupted, output).

    With `hosts`, the kill waits (up to 180 s) until kubeadm runs on one of them, so it
    lands inside `kubeadm init`/`join` rather than before or after it.
    """
    proc = popen_airlock("deploy", "-i", str(INVENTORY))
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if task not in line:
            continue
        landed = "the task"
        if hosts:
            deadline = time.monotonic() + 180
            while proc.poll() is None and time.monotonic() < deadline:
                host = _kubeadm_runs(hosts)
                if host:
                    landed = f"kubeadm running on {host}"
                    break
                time.sleep(0.1)
            else:
                landed = "the task (kubeadm never seen running)"
        time.sleep(delay)
        _kill_tree(proc.pid)
        proc.wait()
        return landed, "".join(seen)
    proc.wait()
    return "", "".join(seen)


def _kubectl(kubectl: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _wait(what: str, probe, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def test_a_deploy_killed_at_every_stage_converges_on_the_next_run(tmp_path: Path) -> None:
    bundle = _bundle()
    kubectl = _program_from(bundle, "kubectl", tmp_path / "kubectl")
    up = ("--internal", "--masters", "3", "--workers", "2", "--subnet", SUBNET)
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    with lab_hosts(LAB, *up, timeout=1800, keep=keep):
        run_airlock("check", "-i", str(INVENTORY), check=True, timeout=600)
        report = []
        for what, task, hosts, delay in KILL_POINTS:
            started = time.monotonic()
            landed, output = _deploy_killed_at(task, hosts, delay)
            assert landed, f"the deploy never reached {task!r} ({what}):\n{output[-4000:]}"
            changed = _changed_tasks(_newest_run())
            report.append((f"{what} ({landed})", time.monotonic() - started, changed))
        final = run_airlock("deploy", "-i", str(INVENTORY), timeout=3600)
        assert final.returncode == 0, f"deploy after the kills failed:\n{final.stdout[-6000:]}"
        final_changed = _changed_tasks(_newest_run())

        nodes = json.loads(_kubectl(kubectl, "get", "nodes", "-o", "json").stdout)["items"]
        ready = [
            n["metadata"]["name"]
            for n in nodes
            if {"type": "Ready", "status": "True"}.items()
            <= next(c for c in n["status"]["conditions"] if c["type"] == "Ready").items()
        ]
        assert sorted(ready) == ["m1", "m2", "m3", "w1", "w2"], ready

        def system_pods_run() -> bool:
            out = _kubectl(kubectl, "get", "pods", "-A", "-o", "json").stdout
            pods = json.loads(out or '{"items": []}')["items"]
            return bool(pods) and all(p["status"].get("phase") == "Running" for p in pods)

        _wait("every system pod running", system_pods_run)
        assert _kubectl(kubectl, "get", "--raw", "/readyz").stdout.strip() == "ok"

        again = run_airlock("deploy", "-i", str(INVENTORY), timeout=3600)
        assert again.returncode == 0, again.stdout[-6000:]
        again_changed = _changed_tasks(_newest_run())

        print("\ninterrupted deploys (kill point, seconds until killed, changes before the kill):")
        for what, seconds, changed in report:
            print(f"  {what}: killed after {seconds:.0f}s; {len(changed)} changes")
            for line in changed[-8:]:
                print(f"      {line}")
        print(f"deploy after the kills: {len(final_changed)} changes")
        for line in final_changed:
            print(f"      {line}")
        print(f"further deploy: {len(again_changed)} changes")
        assert again_changed == [], f"a deploy after recovery still changed: {again_changed}"
