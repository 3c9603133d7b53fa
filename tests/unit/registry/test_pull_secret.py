"""The workloads' pull secret as roles/registry/tasks/trust.yml renders it: one
dockerconfigjson entry per name and address of every registry host (NAME:PORT, NAME alone
on 443), each with that registry's credentials: distribution's pull user, or the robot that
each Harbor made for node pulls (robot$NAME and that host's secret file)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HERE = Path(__file__).parent


def render(tmp_path: Path, hosts: dict, **settings: object) -> dict[str, dict[str, str]]:
    """Render the manifest for node w1 of an inventory with registry `hosts`; return the
    dockerconfigjson's auths of each namespace's Secret, decoded to user:password."""
    creds = tmp_path / "credentials" / "registry"
    creds.mkdir(parents=True)
    (creds / "pull.password").write_text("pull-pw\n")
    (creds / "h1.robot-nodes.secret").write_text("robot-secret-h1\n")
    out = tmp_path / "pull-secret.yml"
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "airlock_credentials_dir": str(tmp_path / "credentials"),
                "out": str(out),
                "test_settings": settings,
            },
            "hosts": {"w1": {"ip": "10.0.0.21"}, **hosts},
            "children": {
                "registry": {"hosts": dict.fromkeys(hosts)},
                "kube_node": {"hosts": {"w1": None}},
            },
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        PULL_SECRET_TASKS=os.path.relpath(
            HERE / "pull_secret_tasks.yml", REPO / "roles/registry/tasks"
        ),
    )
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", HERE / "pull_secret.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pull-pw" not in result.stdout and "robot-secret" not in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    secrets = {}
    for doc in yaml.safe_load_all(out.read_text()):
        if doc and doc["kind"] == "Secret":
            assert doc["type"] == "kubernetes.io/dockerconfigjson"
            config = json.loads(base64.b64decode(doc["data"][".dockerconfigjson"]))
            secrets[doc["metadata"]["namespace"]] = {
                name: base64.b64decode(entry["auth"]).decode()
                for name, entry in config["auths"].items()
            }
    return secrets


def test_distribution_names_every_name_with_the_pull_user(tmp_path: Path) -> None:
    hosts = {"r1": {"ip": "10.0.0.31", "registry_names": ["reg.example.org"]}}
    secrets = render(tmp_path, hosts, registry_impl="distribution")
    assert secrets == {
        "default": {
            "r1:5000": "pull:pull-pw",
            "10.0.0.31:5000": "pull:pull-pw",
            "reg.example.org:5000": "pull:pull-pw",
        }
    }


def test_harbor_hosts_get_their_own_robot_and_distribution_the_pull_user(
    tmp_path: Path,
) -> None:
    hosts = {
        "h1": {"ip": "10.0.0.41", "registry_impl": "harbor"},
        "r1": {"ip": "10.0.0.31", "registry_impl": "distribution"},
    }
    secrets = render(
        tmp_path,
        hosts,
        registry_impl="distribution",
        registry_pull_secret_namespaces=["apps", "ci"],
    )
    expected = {
        "h1": "robot$nodes:robot-secret-h1",  # 443: the name alone, as in image references
        "10.0.0.41": "robot$nodes:robot-secret-h1",
        "r1:5000": "pull:pull-pw",
        "10.0.0.31:5000": "pull:pull-pw",
    }
    assert secrets == {"apps": expected, "ci": expected}


def test_a_missing_robot_secret_stops_the_run(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"h2\.robot-nodes\.secret"):
        render(tmp_path, {"h2": {"ip": "10.0.0.42", "registry_impl": "harbor"}})
