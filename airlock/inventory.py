"""Static validation of an inventory: everything that can be known without touching a host.

The inventory is read by Ansible's own inventory manager (so INI, YAML, directories and
group_vars/host_vars mean exactly what they mean to a deploy), then checked against the
rules below. Each problem is one `Problem`: where (a host, group or setting), what is
wrong, and how to fix it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from airlock.errors import AirlockError
from airlock.paths import project_root

GROUPS = (
    "etcd",
    "kube_control_plane",
    "kube_node",
    "lb",
    "registry",
    "ceph",
    "monitoring",
    "bundle_host",
)
BUILTIN_GROUPS = ("all", "ungrouped")
ETCD_SIZES = (1, 3, 5, 7)
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Names any inventory may set besides role settings (Ansible's own and the host address).
ALWAYS_ALLOWED = ("ip",)


@dataclass(frozen=True)
class Problem:
    subject: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.what}; {self.fix}"


@dataclass
class Inventory:
    """An inventory as airlock sees it: hosts with their variables, groups, settings."""

    source: Path
    hosts: dict[str, dict[str, Any]]
    groups: dict[str, list[str]]
    settings: dict[str, Any]
    setting_origins: dict[str, str] = field(default_factory=dict)

    @cached_property
    def ips(self) -> dict[str, str]:
        return {h: str(v["ip"]) for h, v in self.hosts.items() if v.get("ip") not in (None, "")}

    def members(self, group: str) -> list[str]:
        return self.groups.get(group, [])


_PLUGINS_READY: list[bool] = []


def _init_plugins(init: Any) -> None:
    if not _PLUGINS_READY:
        init()
        _PLUGINS_READY.append(True)


def load_inventory(path: Path) -> Inventory:
    """Read an inventory file or directory with Ansible's inventory manager."""
    if not path.exists():
        raise AirlockError(f"inventory {path} does not exist; give a file or directory with -i")
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.display import Display

    Display().verbosity = 0
    _init_plugins(init_plugin_loader)
    from ansible import constants
    from ansible.plugins.loader import vars_loader

    for plugin in constants.VARIABLE_PLUGINS_ENABLED:  # group_vars/ and host_vars/ readers
        vars_loader.get(plugin)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    if not manager.list_hosts() and not any(g for g in manager.groups if g not in BUILTIN_GROUPS):
        raise AirlockError(
            f"inventory {path}: no hosts or groups could be read; check its YAML/INI syntax "
            f"with `ansible-inventory -i {path} --graph`"
        )
    sources = manager._sources
    hosts = {h.name: _host_vars(loader, sources, h) for h in manager.get_hosts()}
    groups = {
        name: sorted(h.name for h in group.get_hosts()) for name, group in manager.groups.items()
    }
    settings, origins = _settings(manager, hosts)
    return Inventory(path, hosts, groups, settings, origins)


def _host_vars(loader: Any, sources: list[str], host: Any) -> dict[str, Any]:
    """A host's inventory variables (inventory files + group_vars/host_vars), untemplated.

    Merged in Ansible's order (groups by depth and priority, then the host), without facts
    or magic variables: exactly what the user wrote.
    """
    from ansible.vars.plugins import get_vars_from_inventory_sources

    merged: dict[str, Any] = {}
    for group in sorted(host.get_groups(), key=lambda g: (g.depth, g.priority, g.name)):
        merged.update(group.get_vars())
        merged.update(get_vars_from_inventory_sources(loader, sources, [group], "task"))
    merged.update(host.get_vars())
    merged.update(get_vars_from_inventory_sources(loader, sources, [host], "task"))
    for magic in (
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "group_names",
    ):
        merged.pop(magic, None)
    return merged


def _settings(
    manager: Any, hosts: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings as a deploy sees them for the first host (group `all` when no host)."""
    settings: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, group in manager.groups.items():
        for key in group.get_vars():
            origins.setdefault(key, f"group {name}")
    if hosts:
        settings = dict(next(iter(hosts.values())))
    for name, host_vars in hosts.items():
        for key in host_vars:
            origins.setdefault(key, f"host {name}")
    return settings, origins


# ---------------------------------------------------------------------------------------
# What the roles accept


def known_settings(root: Path | None = None) -> dict[str, Any]:
    """Every variable a role documents in meta/argument_specs.yml, with its default."""
    root = root or project_root()
    known: dict[str, Any] = {}
    for spec_file in sorted((root / "roles").glob("*/meta/argument_specs.yml")):
        data = yaml.safe_load(spec_file.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            for name, option in (entry.get("options") or {}).items():
                known.setdefault(name, (option or {}).get("default"))
    return known


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


# ---------------------------------------------------------------------------------------
# The rules


def validate(inv: Inventory, known: dict[str, Any] | None = None) -> list[Problem]:
    known = known if known is not None else known_settings()
    settings = {**{k: v for k, v in known.items()}, **inv.settings}
    problems: list[Problem] = []
    for rule in (
        _check_groups,
        _check_settings_names,
        _check_hosts,
        _check_etcd,
        _check_control_plane,
        _check_vip,
        _check_cidrs,
        _check_ports,
    ):
        problems.extend(rule(inv, settings, known))
    return problems


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _check_groups(inv: Inventory, settings: dict[str, Any], _: dict[str, Any]) -> Iterator[Problem]:
    extra = set(settings.get("airlock_extra_groups") or [])
    valid = (*GROUPS, *BUILTIN_GROUPS)
    for group in sorted(inv.groups):
        if group in valid or group in extra:
            continue
        guess = nearest(group, GROUPS)
        fix = f"did you mean `{guess}`?" if guess else f"airlock's groups are: {', '.join(GROUPS)}"
        yield Problem(
            f"group {group}",
            "is not a group airlock knows",
            f"{fix} (declare your own groups in airlock_extra_groups)",
        )


def _check_settings_names(
    inv: Inventory, settings: dict[str, Any], known: dict[str, Any]
) -> Iterator[Problem]:
    allowed = set(known) | set(ALWAYS_ALLOWED) | set(settings.get("airlock_extra_vars") or [])
    seen: set[str] = set()
    for host_vars in [inv.settings, *inv.hosts.values()]:
        for name in host_vars:
            if name in seen or name in allowed or name.startswith("ansible_"):
                continue
            seen.add(name)
            guess = nearest(name, allowed)
            where = inv.setting_origins.get(name, "inventory")
            fix = (
                f"did you mean `{guess}`?"
                if guess
                else "see roles/*/defaults/main.yml for the settings airlock knows"
            )
            yield Problem(
                f"setting {name} ({where})",
                "is not a setting airlock knows",
                f"{fix} (list your own variables in airlock_extra_vars)",
            )


def _check_hosts(inv: Inventory, _: dict[str, Any], __: dict[str, Any]) -> Iterator[Problem]:
    by_ip: dict[str, str] = {}
    by_lower: dict[str, str] = {}
    for host, host_vars in sorted(inv.hosts.items()):
        if host.lower() in by_lower:
            yield Problem(
                f"host {host}",
                f"has the same name as {by_lower[host.lower()]} (host names are case-insensitive)",
                "rename one of them",
            )
        by_lower[host.lower()] = host
        if not HOSTNAME_RE.match(host):
            yield Problem(
                f"host {host}",
                "is not a valid node name (RFC 1123: lowercase "
                "letters, digits and '-', at most 63)",
                "rename the host",
            )
        ip = host_vars.get("ip")
        if ip in (None, ""):
            yield Problem(
                f"host {host}",
                "has no `ip`",
                f"set `ip: <its cluster-network IPv4 address>` for {host}",
            )
            continue
        if _is_template(ip):
            continue
        try:
            ipaddress.IPv4Address(str(ip))
        except ValueError:
            yield Problem(
                f"host {host}",
                f"ip {ip!r} is not an IPv4 address",
                "set ip to the host's cluster-network address, e.g. 10.0.0.11",
            )
            continue
        if str(ip) in by_ip:
            yield Problem(
                f"host {host}",
                f"has ip {ip}, the same as {by_ip[str(ip)]}",
                "give each host its own ip",
            )
        else:
            by_ip[str(ip)] = host


def _check_etcd(inv: Inventory, _: dict[str, Any], __: dict[str, Any]) -> Iterator[Problem]:
    count = len(inv.members("etcd"))
    if count not in ETCD_SIZES:
        yield Problem(
            "group etcd",
            f"has {count} member{'s' if count != 1 else ''}",
            "use 1, 3, 5 or 7 members: an even count adds no fault tolerance "
            "(3 survive 1 failure, 5 survive 2)",
        )


def _check_control_plane(
    inv: Inventory, _: dict[str, Any], __: dict[str, Any]
) -> Iterator[Problem]:
    if not inv.members("kube_control_plane"):
        yield Problem(
            "group kube_control_plane",
            "has no host",
            "put at least one host in kube_control_plane (3 for HA)",
        )


def _check_vip(inv: Inventory, settings: dict[str, Any], _: dict[str, Any]) -> Iterator[Problem]:
    vip = settings.get("airlock_api_vip") or ""
    masters = inv.members("kube_control_plane")
    if not vip:
        if len(masters) > 1:
            yield Problem(
                "setting airlock_api_vip",
                f"is empty but kube_control_plane has {len(masters)} hosts",
                "set airlock_api_vip to a free address in the hosts' subnet",
            )
        return
    if _is_template(vip):
        return
    try:
        vip_addr = ipaddress.IPv4Address(str(vip))
    except ValueError:
        yield Problem(
            "setting airlock_api_vip",
            f"{vip!r} is not an IPv4 address",
            "set it to a free address in the hosts' subnet",
        )
        return
    for host, ip in sorted(inv.ips.items()):
        if ip == str(vip_addr):
            yield Problem(
                "setting airlock_api_vip",
                f"{vip} is the ip of host {host}",
                "choose an address no host uses",
            )
    host_cidr = settings.get("airlock_host_cidr") or ""
    if host_cidr and not _is_template(host_cidr):
        try:
            net = ipaddress.IPv4Network(str(host_cidr), strict=False)
        except ValueError:
            yield Problem(
                "setting airlock_host_cidr",
                f"{host_cidr!r} is not a network",
                "set it like 10.0.0.0/24",
            )
            return
        if vip_addr not in net:
            yield Problem(
                "setting airlock_api_vip",
                f"{vip} is outside the hosts' network {host_cidr}",
                f"choose a free address in {host_cidr}",
            )


def _network(
    settings: dict[str, Any], name: str
) -> tuple[ipaddress.IPv4Network | None, Problem | None]:
    value = settings.get(name)
    if _is_template(value):
        return None, None
    try:
        return ipaddress.IPv4Network(str(value)), None
    except ValueError as exc:
        return None, Problem(
            f"setting {name}",
            f"{value!r} is not a valid network ({exc})",
            "write it as a network address with a prefix, e.g. 10.244.0.0/16",
        )


def _check_cidrs(inv: Inventory, settings: dict[str, Any], _: dict[str, Any]) -> Iterator[Problem]:
    nets: dict[str, ipaddress.IPv4Network] = {}
    for name in ("airlock_pod_cidr", "airlock_service_cidr"):
        net, problem = _network(settings, name)
        if problem:
            yield problem
        elif net is not None:
            nets[name] = net
    pod, svc = nets.get("airlock_pod_cidr"), nets.get("airlock_service_cidr")
    if pod and svc and pod.overlaps(svc):
        yield Problem(
            "setting airlock_pod_cidr",
            f"{pod} overlaps airlock_service_cidr {svc}",
            "choose networks that do not overlap (defaults: 10.244.0.0/16 and 10.96.0.0/12)",
        )
    host_cidr = settings.get("airlock_host_cidr") or ""
    host_net = None
    if host_cidr and not _is_template(host_cidr):
        try:
            host_net = ipaddress.IPv4Network(str(host_cidr), strict=False)
        except ValueError:
            host_net = None
    for name, net in nets.items():
        if host_net and net.overlaps(host_net):
            yield Problem(
                f"setting {name}",
                f"{net} overlaps the hosts' network {host_net}",
                "choose a network the hosts do not use",
            )
            continue
        for host, ip in sorted(inv.ips.items()):
            try:
                if ipaddress.IPv4Address(ip) in net:
                    yield Problem(
                        f"setting {name}",
                        f"{net} contains the ip {ip} of host {host}",
                        "choose a network the hosts do not use",
                    )
                    break
            except ValueError:
                continue


def _check_ports(inv: Inventory, settings: dict[str, Any], _: dict[str, Any]) -> Iterator[Problem]:
    api, apiserver = settings.get("airlock_api_port"), settings.get("airlock_apiserver_port")
    if (
        api is not None
        and api == apiserver
        and set(inv.members("lb")) & set(inv.members("kube_control_plane"))
    ):
        yield Problem(
            "setting airlock_api_port",
            f"{api} equals airlock_apiserver_port while lb hosts also run apiservers",
            "use another port, e.g. 8443",
        )
