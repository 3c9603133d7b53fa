"""`airlock monitoring open`: the URLs, CA, user and password file of an inventory's
monitoring stack, from the inventory and the controller's files only; one-line errors."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.monitoring import access
from tests.inventory_factory import BASE, write_inventory


def _inventory(tmp_path: Path, group_vars: dict | None = None, deployed: bool = True) -> Path:
    hosts = copy.deepcopy(BASE)
    hosts["all"]["children"]["monitoring"] = {"hosts": {"w1": None, "w2": None}}
    inventory = write_inventory(tmp_path / "inv", hosts, group_vars)
    if deployed:
        creds = inventory / ".credentials" / "monitoring"
        creds.mkdir(parents=True)
        (creds / "ca.crt").write_text("ca")
        (creds / "web-admin.password").write_text("secret-not-shown\n")
    return inventory


def test_open_prints_every_endpoint_and_where_the_password_is(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "airlock.cli", "monitoring", "open", "-i", str(inventory)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    creds = inventory.resolve() / ".credentials" / "monitoring"
    assert "https://192.0.2.21:9090/  https://192.0.2.22:9090/" in out
    assert "https://192.0.2.21:9093/  https://192.0.2.22:9093/" in out
    assert f"CA            {creds / 'ca.crt'}" in out
    assert f"password      in {creds / 'web-admin.password'} (0600)" in out
    assert "secret-not-shown" not in out
    assert "https://192.0.2.21:9090/api/v1/targets" in out


def test_inventory_settings_win_over_the_defaults(tmp_path: Path) -> None:
    inventory = _inventory(
        tmp_path, {"monitoring_prometheus_port": 19090, "monitoring_web_user": "ops"}
    )
    found = access(inventory)
    assert [e.prometheus for e in found.endpoints] == [
        "https://192.0.2.21:19090/",
        "https://192.0.2.22:19090/",
    ]
    assert found.user == "ops"


def test_not_deployed_yet_says_to_deploy(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, deployed=False)
    with pytest.raises(AirlockError, match=r"ca.crt does not exist: .* run `airlock deploy -i"):
        access(inventory)


def test_a_value_only_ansible_can_template_is_named(tmp_path: Path) -> None:
    inventory = _inventory(
        tmp_path, {"monitoring_credentials_dir": "{{ lookup('env', 'HOME') }}/mon"}
    )
    with pytest.raises(AirlockError, match=r"w1: monitoring_credentials_dir is .*only Ansible"):
        access(inventory)


def test_no_monitoring_hosts_is_one_line(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "plain")
    with pytest.raises(AirlockError, match=r"no hosts in group monitoring; add some"):
        access(inventory)
