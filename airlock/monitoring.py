"""Where the monitoring stack of an inventory answers: `airlock monitoring open`.

Reads the inventory only (no host is contacted): the `monitoring` hosts, their addresses
and ports, and the controller-side files a person needs to log in (the monitoring CA and
the web password, both made by the deploy). Settings come from the inventory, else from
the roles' argument specs; a value that needs Ansible to template it is refused with the
setting's name.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airlock.errors import AirlockError
from airlock.inventory.load import load_inventory
from airlock.inventory.specs import known_settings
from airlock.inventory.values import setting


@dataclass(frozen=True)
class Endpoint:
    host: str
    prometheus: str
    alertmanager: str


@dataclass(frozen=True)
class Access:
    inventory: Path
    endpoints: list[Endpoint]
    ca_file: Path
    user: str
    password_file: Path

    def render(self) -> str:
        first = self.endpoints[0]
        curl = (
            f"curl --cacert {shlex.quote(str(self.ca_file))} -u "
            f'{self.user}:"$(cat {shlex.quote(str(self.password_file))})" '
            f"{first.prometheus}api/v1/targets"
        )
        hosts = ", ".join(e.host for e in self.endpoints)
        return "\n".join(
            [
                f"monitoring of {self.inventory} ({len(self.endpoints)} host"
                f"{'s' if len(self.endpoints) != 1 else ''}: {hosts})",
                "  Prometheus    " + "  ".join(e.prometheus for e in self.endpoints),
                "  Alertmanager  " + "  ".join(e.alertmanager for e in self.endpoints),
                f"  CA            {self.ca_file}  (trust it in the browser: the endpoints "
                "are HTTPS with the monitoring CA)",
                f"  user          {self.user}",
                f"  password      in {self.password_file} (0600)",
                f"  try           {curl}",
            ]
        )


def _value(name: str, host_vars: dict[str, Any], base: dict[str, Any], where: str) -> str:
    return setting(name, host_vars, base, where, "airlock monitoring open")


def access(inventory: Path) -> Access:
    """The monitoring endpoints and login files of `inventory`; AirlockError on a problem."""
    inv = load_inventory(inventory)
    if inv.broken:
        raise AirlockError(
            f"inventory {inventory} cannot be read; `airlock check -i {inventory}` says why"
        )
    hosts = inv.members("monitoring")
    if not hosts:
        raise AirlockError(
            f"inventory {inventory}: no hosts in group monitoring; add some (for the lab: "
            "`airlock lab up --monitoring w1,w2`) and deploy"
        )
    inventory_dir = inventory.resolve() if inventory.is_dir() else inventory.resolve().parent
    base = {**known_settings(), "inventory_dir": str(inventory_dir)}
    endpoints = []
    for host in hosts:
        host_vars = inv.hosts.get(host, {})
        ip = inv.ips.get(host)
        if not ip:
            raise AirlockError(f"inventory {inventory}: monitoring host {host} has no ip; set it")
        where = f"inventory {inventory}, host {host}"
        endpoints.append(
            Endpoint(
                host,
                f"https://{ip}:{_value('monitoring_prometheus_port', host_vars, base, where)}/",
                f"https://{ip}:{_value('monitoring_alertmanager_port', host_vars, base, where)}/",
            )
        )
    first_vars = inv.hosts.get(hosts[0], {})
    where = f"inventory {inventory}, host {hosts[0]}"
    credentials = Path(_value("monitoring_credentials_dir", first_vars, base, where))
    found = Access(
        inventory=inventory,
        endpoints=endpoints,
        ca_file=credentials / "ca.crt",
        user=_value("monitoring_web_user", first_vars, base, where),
        password_file=credentials / "web-admin.password",
    )
    for path in (found.ca_file, found.password_file):
        if not path.is_file():
            raise AirlockError(
                f"{path} does not exist: the monitoring stack of {inventory} is not deployed "
                f"yet; run `airlock deploy -i {inventory}`"
            )
    return found
