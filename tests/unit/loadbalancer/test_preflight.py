"""The loadbalancer stage's preflight on this machine (hosts with a local connection): settings
a user gets wrong fail before anything is installed, with a message that says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOSTS = ("m1", "m2", "m3")


def run_preflight(
    tmp_path: Path, hosts: tuple[str, ...] = HOSTS, **overrides: Any
) -> subprocess.CompletedProcess[str]:
    ca = tmp_path / "ca.crt"
    ca.write_text("not parsed by the preflight\n")
    group_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ip": "127.0.0.1",
        "airlock_cluster_name": "unit",
        "airlock_api_vip": "127.0.0.250",
        "airlock_credentials_dir": str(tmp_path / "credentials"),
        "loadbalancer_ca_file": str(ca),
        # ARP on loopback means nothing; the probe's addressing checks still run.
        "loadbalancer_preflight_vip_probe": False,
        **overrides,
    }
    inventory = {
        "all": {
            "vars": group_vars,
            "hosts": dict.fromkeys(hosts),
            "children": {
                "lb": {"hosts": dict.fromkeys(hosts)},
                "kube_control_plane": {"hosts": dict.fromkeys(hosts)},
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", "--tags", "loadbalancer_preflight",
         REPO / "playbooks/loadbalancer.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_good_settings_pass(tmp_path: Path) -> None:
    result = run_preflight(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"airlock_api_vip": "api.example"}, "must be an IPv4 address"),
        ({"airlock_api_vip": "127.0.0.1"}, "no host's address (hosts that have it: m1, m2, m3)"),
        ({"airlock_api_vip": "10.1.2.3"}, "is not a host address of the network 127.0.0.0/8"),
        ({"loadbalancer_ca_file": "/no/ca"}, "/no/ca (loadbalancer_ca_file) does not exist"),
        ({"loadbalancer_virtual_router_id": 300}, "virtual_router_id (300) must be 1..255"),
        ({"loadbalancer_vrrp_mode": "broadcast"}, "loadbalancer_vrrp_mode"),
    ],
)  # fmt: skip
def test_wrong_settings_fail_with_a_clear_message(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    result = run_preflight(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split()), result.stdout


def test_single_control_plane_without_vip_skips_the_stage(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, hosts=("m1",), airlock_api_vip="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Check the load balancer settings" in result.stdout
    assert "skipping: [m1]" in result.stdout
    assert "ok: [m1]" not in result.stdout.split("Check the load balancer settings")[1]
