"""The built-in lab: real SSH hosts, idempotent `up`, complete `down`, offline `--internal`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import airlock.podman
from airlock.cli import main
from tests.conftest import ROOT, VENV_BIN, lab_hosts, podman_json, run_airlock

LABEL = "io.airlock.lab"


def _ansible(inventory: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "-i", inventory, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def _lab_objects(name: str) -> tuple[list, list, list]:
    return (
        podman_json("ps", "-a", "--filter", f"label={LABEL}={name}"),
        podman_json("volume", "ls", "--filter", f"label={LABEL}={name}"),
        [n for n in podman_json("network", "ls") if n["name"] == f"airlock-{name}"],
    )


def test_every_host_answers_ansible_over_ssh(test_lab: dict[str, str]) -> None:
    proc = _ansible(test_lab["inventory"], "all", "-m", "ansible.builtin.ping", "-o")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in ("m1", "m2", "m3", "w1", "w2"):
        assert f"{host} | SUCCESS" in proc.stdout


def test_hosts_are_systemd_hosts_with_a_non_overlay_containerd_dir(
    test_lab: dict[str, str],
) -> None:
    proc = _ansible(
        test_lab["inventory"],
        "m1",
        "-m",
        "ansible.builtin.command",
        "-a",
        "findmnt -n -o FSTYPE /var/lib/containerd",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "overlay" not in proc.stdout.split("|")[-1]
    proc = _ansible(
        test_lab["inventory"],
        "m1",
        "-m",
        "ansible.builtin.command",
        "-a",
        "systemctl is-system-running",
    )
    assert "running" in proc.stdout, proc.stdout


def test_second_up_changes_nothing(test_lab: dict[str, str]) -> None:
    before = {c["Id"] for c in podman_json("ps", "--filter", f"label={LABEL}={test_lab['name']}")}
    inventory = Path(test_lab["inventory"]) / "hosts.yml"
    mtime = inventory.stat().st_mtime_ns
    proc = run_airlock(
        "lab",
        "up",
        "--name",
        test_lab["name"],
        "--masters",
        "3",
        "--workers",
        "2",
        "--subnet",
        "10.77.30.0/24",
        check=True,
    )
    assert "no change" in proc.stdout and "changed:" not in proc.stdout, proc.stdout
    after = {c["Id"] for c in podman_json("ps", "--filter", f"label={LABEL}={test_lab['name']}")}
    assert before == after and len(after) == 5
    assert inventory.stat().st_mtime_ns == mtime


def test_check_passes_on_the_lab(test_lab: dict[str, str]) -> None:
    proc = run_airlock("check", "-i", test_lab["inventory"], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hosts: ok" in proc.stdout


def test_check_names_a_busy_port_on_a_host(test_lab: dict[str, str]) -> None:
    ssh = ["lab", "ssh", "--name", test_lab["name"], "m2", "--"]
    run_airlock(
        *ssh, "systemd-run", "--unit=squatter", "python3", "-m", "http.server", "2380", check=True
    )
    try:
        proc = run_airlock("check", "-i", test_lab["inventory"], timeout=300)
    finally:
        run_airlock(*ssh, "systemctl", "stop", "squatter", check=True)
    assert proc.returncode == 1
    assert "host m2: port 2380/tcp is in use by python3" in proc.stderr, proc.stderr


def test_failed_deploy_names_host_task_message_and_reproduce_command(
    test_lab: dict[str, str], tmp_path: Path
) -> None:
    playbook = tmp_path / "broken.yml"
    playbook.write_text(
        "---\n- name: A stage that breaks on one host\n  hosts: all\n  gather_facts: false\n"
        "  tasks:\n    - name: Read the etcd data directory\n"
        "      ansible.builtin.command: ls /var/lib/no-such-etcd-dir\n"
        "      changed_when: false\n      when: inventory_hostname == 'm3'\n"
    )
    proc = run_airlock(
        "deploy", "-i", test_lab["inventory"], "--playbook", str(playbook), timeout=300
    )
    assert proc.returncode != 0
    out = proc.stdout
    assert "host m3 failed in task 'Read the etcd data directory'" in out, out
    assert "No such file or directory" in out
    reproduce = out.split("Reproduce with:\n", 1)[1].strip().splitlines()[0].strip()
    assert "ansible-playbook" in reproduce and "--limit m3" in reproduce
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    again = subprocess.run(
        ["bash", "-c", reproduce], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert again.returncode != 0 and "no-such-etcd-dir" in again.stdout + again.stderr
    run_dir = Path(out.split("log and events: ", 1)[1].split()[0])
    assert (run_dir / "events.jsonl").stat().st_size > 0
    assert list(run_dir.glob("artifacts/*/stdout"))
    assert not list(run_dir.glob("env/*")), "runner env files must not be left behind"


def test_internal_lab_has_no_route_out() -> None:
    up = ("--masters", "1", "--workers", "0", "--internal", "--subnet", "10.77.31.0/24")
    with lab_hosts("pytest-int", *up):
        ssh = ("lab", "ssh", "--name", "pytest-int", "m1", "--")
        url = "http://deb.debian.org/debian/"
        inside = run_airlock(*ssh, "curl", "-sS", "-m", "5", "-o", "/dev/null", url)
        assert inside.returncode != 0, "a host of an --internal lab reached Debian's archive"
        ok = run_airlock(*ssh, "true")
        assert ok.returncode == 0, "the controller must still reach an internal lab host"


def test_internal_lab_on_podmans_cni_backend_stops_before_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A machine configured like a fresh one before bootstrap selected netavark.

    podman then runs its CNI backend, whose --internal networks give this machine no
    address on the bridge: `lab up` used to create the hosts and time out in SSH. It
    must stop first, in one line with the fix, and leave nothing behind.
    """
    conf = tmp_path / "containers.conf"
    cni = 'network_backend = "cni"'
    conf.write_text(airlock.podman.CONTAINERS_CONF.replace('network_backend = "netavark"', cni))
    assert cni in conf.read_text()
    monkeypatch.setattr(airlock.podman, "containers_conf", lambda: conf)
    name = "pytest-cni"
    argv = ["lab", "up", "--name", name, "--masters", "1", "--workers", "0"]
    rc = main([*argv, "--internal", "--subnet", "10.77.34.0/24"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert len(lines) == 1, lines
    assert (
        "podman's cni backend gives this machine no address on a --internal network" in (lines[0])
    )
    assert "run scripts/bootstrap" in lines[0] and "netavark" in lines[0]
    assert airlock.podman.list_json("ps", f"label={LABEL}={name}") == []
    assert airlock.podman.inspect("network", f"airlock-{name}") is None
    assert not (ROOT / ".airlock" / "labs" / name / "inventory").exists()


def test_lab_up_without_netavark_names_the_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(airlock.podman, "HELPER_DIRS", ("/nonexistent/podman",))
    rc = main(["lab", "up", "--name", "pytest-nonetavark", "--masters", "1", "--workers", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(lines) == 1, lines
    assert "netavark network backend is not installed" in lines[0]
    assert "apt-get install netavark aardvark-dns" in lines[0]


def test_down_leaves_nothing_behind() -> None:
    name = "pytest-down"
    up = ("--masters", "1", "--workers", "1", "--subnet", "10.77.32.0/24")
    with lab_hosts(name, *up):
        assert all(_lab_objects(name))
        proc = run_airlock("lab", "down", "--name", name, check=True)
        assert "removed: network airlock-pytest-down" in proc.stdout
        assert _lab_objects(name) == ([], [], [])
        assert not (ROOT / ".airlock" / "labs" / name).exists()
        again = run_airlock("lab", "down", "--name", name, check=True)
        assert "nothing to remove" in again.stdout
