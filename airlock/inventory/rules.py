"""The static rules of `airlock check`: each registered with an id, a one-line
description and an example message, from which the README's table is generated
(scripts/gen-check-docs). A rule is a function (Context -> problems); the loader's own
rules (file syntax, shapes, duplicate keys) are registered here without one.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path
from typing import Any

from airlock.inventory.load import BUILTIN_GROUPS
from airlock.inventory.model import Inventory, Problem
from airlock.inventory.source import Vaulted
from airlock.inventory.specs import (
    ansible_variables,
    cluster_settings,
    is_ansible_variable,
    nearest,
    option_specs,
)

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
ETCD_SIZES = (1, 3, 5, 7)
CEPH_MON_SIZES = (1, 3, 5)
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Names any inventory may set besides role settings (Ansible's own and the host address).
ALWAYS_ALLOWED = ("ip",)
# Argument specs have no range keyword: ranges by setting name (fnmatch patterns).
RANGES: dict[str, tuple[float, float]] = {
    "*_port": (1, 65535),
    "airlock_min_free_gb": (0, 1_000_000),
    "airlock_max_clock_skew": (0.1, 3600),
    "loadbalancer_virtual_router_id": (1, 255),
    "loadbalancer_priority": (1, 254),
    "network_flannel_vni": (1, 16_777_215),
    "*_timeout": (0, 86_400),
    "*_days": (1, 36_500),
}
# Cluster-wide settings that may differ per host: the per-host check limits, and the
# declarations of your own groups and variables (they are merged over every host).
PER_HOST_OK = frozenset(
    {
        "airlock_disable_swap",
        "airlock_min_free_gb",
        "airlock_max_clock_skew",
        "airlock_extra_groups",
        "airlock_extra_vars",
    }
)
# The node subnet kubeadm's controller-manager gives each node (--node-cidr-mask-size).
NODE_MASK = 24
NODES = ("kube_control_plane", "kube_node")
SPEC_FILE = "roles/airlock/meta/argument_specs.yml"
_REF_RE = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")


@dataclass
class Context:
    inv: Inventory
    options: dict[str, dict[str, Any]]
    settings: dict[str, Any]  # the defaults, then the first host's view
    ips: dict[str, str] = field(default_factory=dict)  # resolved where a template resolves

    def where(self, name: str) -> str:
        return self.inv.setting_origins.get(name, "")


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    example: str
    check: Callable[[Context], Iterable[Problem]] | None = None


RULES: list[Rule] = []


def rule(id: str, text: str, example: str) -> Callable[[Callable], Callable]:
    def register(func: Callable[[Context], Iterable[Problem]]) -> Callable:
        RULES.append(Rule(id, text, example, func))
        return func

    return register


# Reported while the files are read (airlock/inventory/source.py, load.py); documented here.
RULES += [
    Rule(
        "yaml",
        "every inventory file is UTF-8 YAML without syntax errors or tabs, one document",
        "group_vars/all.yml:3: YAML syntax error: a tab character; indent with spaces, never tabs",
    ),
    Rule(
        "mapping",
        "hosts.yml, each group, its `hosts` and `children` and every vars file is a mapping",
        "hosts.yml:9: group kube_node: its hosts are a list, not a mapping (so it has no "
        "members); write `hosts: {w1: {}, w2: {}}`",
    ),
    Rule(
        "duplicate-key",
        "no key is given twice in one mapping",
        "group_vars/all.yml:7: key `airlock_api_vip` is given twice in one mapping (first at "
        "line 2, and Ansible silently keeps only the last); delete one of them",
    ),
    Rule(
        "vars-file-read",
        "no group_vars/host_vars file is silently skipped: Ansible reads only the first of "
        "NAME/, NAME.yml, NAME.yaml, NAME.json",
        "group_vars/all.yml:1: is never read: Ansible reads group_vars/all/ instead; move its "
        "variables into group_vars/all",
    ),
    Rule(
        "group-keys",
        "a group holds only `hosts`, `children` and `vars`; variable names are identifiers",
        "hosts.yml:5: group etcd: has a key `host`, which Ansible ignores (a group holds "
        "hosts, children, vars); did you mean `hosts`?",
    ),
]


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _unknowable(value: Any) -> bool:
    return _is_template(value) or isinstance(value, Vaulted)


# ---------------------------------------------------------------------------------------
# names


@rule(
    "groups-known",
    "every group is one of airlock's or declared in `airlock_extra_groups`",
    "hosts.yml:14: group kube_contol_plane: is not a group airlock knows; did you mean "
    "`kube_control_plane`? (declare your own groups in airlock_extra_groups)",
)
def _check_groups(ctx: Context) -> Iterator[Problem]:
    extra = _extra(ctx, "airlock_extra_groups")
    valid = (*GROUPS, *BUILTIN_GROUPS)
    for group in sorted(ctx.inv.groups):
        if group in valid or group in extra:
            continue
        guess = nearest(group, GROUPS)
        fix = f"did you mean `{guess}`?" if guess else f"airlock's groups are: {', '.join(GROUPS)}"
        yield Problem(
            f"group {group}",
            "is not a group airlock knows",
            f"{fix} (declare your own groups in airlock_extra_groups)",
            where=ctx.inv.group_where.get(group, ""),
        )


def _extra(ctx: Context, name: str) -> set[str]:
    out: set[str] = set()
    for d in ctx.inv.definitions:
        if d.name == name and isinstance(d.value, list):
            out.update(str(v) for v in d.value)
    return out


@rule(
    "vars-file-target",
    "each group_vars/ and host_vars/ file names a group or host of the inventory",
    "group_vars/kube_nodes.yml:1: group_vars for kube_nodes: there is no such group; did you "
    "mean `kube_node`? (rename the file)",
)
def _check_vars_files(ctx: Context) -> Iterator[Problem]:
    seen: set[tuple[str, str]] = set()
    for kind, name, where in ctx.inv.vars_files:
        if (kind, name) in seen:
            continue
        seen.add((kind, name))
        pool = ctx.inv.groups if kind == "group" else ctx.inv.hosts
        if name in pool:
            continue
        guess = nearest(name, pool)
        hint = (
            f"did you mean `{guess}`? (rename the file)"
            if guess
            else (f"add the {kind} to the inventory or remove the file")
        )
        yield Problem(f"{kind}_vars for {name}", f"there is no such {kind}", hint, where=where)


@rule(
    "setting-names",
    "every variable is a role setting, `ip`, or declared in `airlock_extra_vars`",
    "group_vars/all/cluster.yml:12: setting airlock_api_vipp: is not a setting airlock "
    "knows; did you mean `airlock_api_vip`? (list your own variables in airlock_extra_vars)",
)
def _check_setting_names(ctx: Context) -> Iterator[Problem]:
    allowed = set(ctx.options) | set(ALWAYS_ALLOWED)
    extra = _extra(ctx, "airlock_extra_vars")
    seen: set[str] = set()
    for d in ctx.inv.definitions:
        name = d.name
        if name in allowed or name in extra or name.startswith("ansible_") or name in seen:
            continue
        seen.add(name)
        guess = nearest(name, allowed)
        fix = (
            f"did you mean `{guess}`?"
            if guess
            else "see roles/*/meta/argument_specs.yml for the settings airlock knows"
        )
        yield Problem(
            f"setting {name}",
            "is not a setting airlock knows",
            f"{fix} (list your own variables in airlock_extra_vars)",
            where=d.where,
        )


@rule(
    "ansible-vars",
    "every `ansible_*` variable is one Ansible reads (its connection, become and shell variables)",
    "host_vars/m1.yml:2: variable ansible_hsot: is not a variable Ansible knows; did you "
    "mean `ansible_host`?",
)
def _check_ansible_vars(ctx: Context) -> Iterator[Problem]:
    extra = _extra(ctx, "airlock_extra_vars")
    seen: set[str] = set()
    for d in ctx.inv.definitions:
        name = d.name
        if not name.startswith("ansible_") or name in seen or name in extra:
            continue
        seen.add(name)
        if is_ansible_variable(name):
            continue
        guess = nearest(name, ansible_variables())
        yield Problem(
            f"variable {name}",
            "is not a variable Ansible knows",
            f"did you mean `{guess}`?" if guess else "remove it or fix its name",
            where=d.where,
        )


# ---------------------------------------------------------------------------------------
# values


_BOOLS = {"yes", "no", "true", "false", "on", "off", "y", "n", "1", "0", "t", "f"}


def _coerce_number(option: dict[str, Any], value: Any) -> tuple[Any, str]:
    kind = option.get("type")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value, f"is a {_kind(value)}, not a number"
    try:
        return (float(value) if kind == "float" else int(str(value).strip())), ""
    except ValueError:
        if kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value), ""
        return value, "is not a whole number" if kind == "int" else "is not a number"


def _coerce_bool(_: dict[str, Any], value: Any) -> tuple[Any, str]:
    if isinstance(value, bool):
        return value, ""
    if not isinstance(value, (list, dict)) and str(value).lower() in _BOOLS:
        return str(value).lower() in {"yes", "true", "on", "y", "1", "t"}, ""
    return value, "is not true or false"


def _coerce_str(_: dict[str, Any], value: Any) -> tuple[Any, str]:
    if isinstance(value, str):
        return value, ""
    if isinstance(value, bool):
        return value, "is a boolean (YAML reads yes/no/on/off as one), not a string; quote it"
    if isinstance(value, float):
        return value, f"is read as the number {value!r}, not a string; quote it"
    if isinstance(value, int):
        return str(value), ""
    return value, f"is a {_kind(value)}, not a string"


def _coerce_list(option: dict[str, Any], value: Any) -> tuple[Any, str]:
    if not isinstance(value, list):
        return value, f"is a {_kind(value)}, not a list; write it as [a, b] (or [] for none)"
    if option.get("elements") == "str":
        for item in value:
            if not isinstance(item, (str, int)) or isinstance(item, bool):
                return value, f"holds {item!r}, which is not a string"
    return value, ""


def _coerce_dict(_: dict[str, Any], value: Any) -> tuple[Any, str]:
    return value, "" if isinstance(value, dict) else f"is a {_kind(value)}, not a mapping"


_COERCE = {
    "int": _coerce_number,
    "float": _coerce_number,
    "bool": _coerce_bool,
    "str": _coerce_str,
    "path": _coerce_str,
    "list": _coerce_list,
    "dict": _coerce_dict,
}


def _coerce(option: dict[str, Any], value: Any) -> tuple[Any, str]:
    """(value as the role sees it, why it is wrong or '') for the option's type."""
    convert = _COERCE.get(option.get("type", "str"))
    return convert(option, value) if convert else (value, "")


def _kind(value: Any) -> str:
    return {list: "list", dict: "mapping", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


_WANTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "path": "a path",
    "list": "a list",
    "dict": "a mapping",
}


def range_of(name: str) -> tuple[float, float] | None:
    for pattern, bounds in RANGES.items():
        if fnmatch(name, pattern):
            return bounds
    return None


@rule(
    "setting-types",
    "every role setting has its argument spec's type and one of its choices; ports are "
    "1-65535 and other numbers within the range airlock keeps for them (RANGES)",
    "group_vars/all.yml:4: setting airlock_api_port: 70000 is outside 1-65535; use a value "
    "between 1 and 65535",
)
def _check_types(ctx: Context) -> Iterator[Problem]:
    seen: set[tuple[str, str]] = set()
    for d in ctx.inv.definitions:
        option = ctx.options.get(d.name)
        if option is None or _unknowable(d.value) or (d.name, d.where) in seen:
            continue
        seen.add((d.name, d.where))
        value, wrong = _coerce(option, d.value)
        subject = f"setting {d.name}"
        kind = option.get("type", "str")
        if wrong:
            yield Problem(
                subject,
                f"{d.value!r} {wrong}",
                f"write {_WANTED.get(kind, kind)} "
                f"(roles/{option['_role']}/meta/argument_specs.yml)",
                where=d.where,
            )
            continue
        choices = option.get("choices")
        if choices and value not in choices:
            guess = nearest(str(value), [str(c) for c in choices])
            hint = f"did you mean `{guess}`? " if guess else ""
            yield Problem(
                subject,
                f"{value!r} is not one of {', '.join(map(str, choices))}",
                f"{hint}choose one of them",
                where=d.where,
            )
            continue
        bounds = range_of(d.name)
        if bounds and isinstance(value, (int, float)) and not bounds[0] <= value <= bounds[1]:
            low, high = (f"{int(b)}" if float(b).is_integer() else f"{b}" for b in bounds)
            yield Problem(
                subject,
                f"{value} is outside {low}-{high}",
                f"use a value between {low} and {high}",
                where=d.where,
            )


KUBELET_FIELDS = Path(__file__).resolve().parents[1] / "data" / "kubelet-config-fields.json"
# What airlock's drop-in sets itself (roles/kubernetes/vars/main.yml _kubernetes_kubelet_dropin).
KUBELET_OWN = ("apiVersion", "kind", "tlsCertFile", "tlsPrivateKeyFile")
_JSON_KIND = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "string": (lambda v: isinstance(v, str), 'a string (quote it; durations as "5m0s")'),
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
    "list": (lambda v: isinstance(v, list), "a list"),
}


@lru_cache(maxsize=1)
def kubelet_fields() -> dict[str, dict[str, str]]:
    """{minor: {field: json kind}} of KubeletConfiguration (scripts/gen-kubelet-fields)."""
    return json.loads(KUBELET_FIELDS.read_text(encoding="utf-8"))["releases"]


def _kubelet_release(ctx: Context) -> str:
    releases = kubelet_fields()
    version = str(ctx.settings.get("airlock_kube_version") or "").lstrip("v")
    minor = ".".join(version.split(".")[:2])
    return (
        minor if minor in releases else max(releases, key=lambda r: tuple(map(int, r.split("."))))
    )


@rule(
    "kubelet-config",
    "each key of `kubernetes_kubelet_config_overrides` is a KubeletConfiguration field of the "
    "kubelet release deployed (not one airlock's drop-in sets), with a value of its kind",
    "group_vars/all.yml:3: setting kubernetes_kubelet_config_overrides: has `evictionHrad`, "
    "which is not a KubeletConfiguration field of kubelet 1.37; did you mean `evictionHard`?",
)
def _check_kubelet_config(ctx: Context) -> Iterator[Problem]:
    name = "kubernetes_kubelet_config_overrides"
    seen: set[str] = set()
    for d in ctx.inv.definitions:
        if d.name != name or not isinstance(d.value, dict) or d.where in seen:
            continue
        seen.add(d.where)
        release = _kubelet_release(ctx)
        fields = kubelet_fields()[release]
        for key, value in d.value.items():
            yield from _kubelet_field_problems(str(key), value, fields, release, d.where)


def _kubelet_field_problems(
    key: str, value: Any, fields: dict[str, str], release: str, where: str
) -> Iterator[Problem]:
    subject = "setting kubernetes_kubelet_config_overrides"
    if key in KUBELET_OWN:
        yield Problem(
            subject,
            f"has `{key}`, which airlock's drop-in sets itself (the serving certificate)",
            "remove it",
            where=where,
        )
    elif key not in fields:
        guess = nearest(key, fields)
        yield Problem(
            subject,
            f"has `{key}`, which is not a KubeletConfiguration field of kubelet {release}",
            f"did you mean `{guess}`?"
            if guess
            else "see the kubelet's KubeletConfiguration "
            "(kubelet.config.k8s.io/v1beta1) reference for its fields",
            where=where,
        )
    elif not _unknowable(value):
        accepts, wanted = _JSON_KIND[fields[key]]
        if not accepts(value):
            yield Problem(
                subject,
                f"its `{key}` is {_kind(value)} {value!r}, and the kubelet reads {wanted}",
                f"write {key}: as {wanted}",
                where=where,
            )


@rule(
    "setting-agrees",
    "a cluster-wide setting (role airlock's) has the same value for every host",
    "group_vars/kube_node.yml:1: setting airlock_api_vip: group_vars/kube_node.yml:1 sets "
    "10.0.0.9 but group_vars/all/cluster.yml:8 sets 10.0.0.250; set a cluster-wide setting "
    "once, in group_vars/all (hosts w1 and m1 disagree)",
)
def _check_agreement(ctx: Context) -> Iterator[Problem]:
    inv = ctx.inv
    if len(inv.hosts) < 2:
        return
    names = sorted(cluster_settings() - PER_HOST_OK)
    defined = {d.name for d in inv.definitions}
    for name in names:
        if name not in defined:
            continue
        values: dict[str, tuple[Any, str, str]] = {}  # repr -> value, origin, a host
        counts: Counter[str] = Counter()
        missing = object()
        for host, view in inv.hosts.items():
            value = view.get(name, missing)
            key = "<default>" if value is missing else repr(value)
            counts[key] += 1
            if key not in values:
                origin = (
                    f"the default in {SPEC_FILE}"
                    if value is missing
                    else inv.host_origins[host].get(name, "?")
                )
                shown = option_specs().get(name, {}).get("default") if value is missing else value
                values[key] = (shown, origin, host)
        if len(values) < 2:
            continue
        common, other = (k for k, _ in counts.most_common(2))
        a_value, a_origin, a_host = values[common]
        b_value, b_origin, b_host = values[other]
        yield Problem(
            f"setting {name}",
            f"{b_origin} sets {b_value} but {a_origin} sets {a_value}",
            f"set a cluster-wide setting once, in group_vars/all (hosts {b_host} and {a_host} "
            "disagree)",
            where="" if b_origin.startswith("the default") else b_origin,
        )


# ---------------------------------------------------------------------------------------
# hosts


@rule(
    "host-names",
    "host names are valid node names (RFC 1123) and unique ignoring case",
    "hosts.yml:6: host Worker_1: is not a valid node name (RFC 1123: lowercase letters, "
    "digits and '-', at most 63); rename the host",
)
def _check_host_names(ctx: Context) -> Iterator[Problem]:
    by_lower: dict[str, str] = {}
    for host in sorted(ctx.inv.hosts):
        where = ctx.inv.host_where.get(host, "")
        if host.lower() in by_lower:
            yield Problem(
                f"host {host}",
                f"has the same name as {by_lower[host.lower()]} (host names are case-insensitive)",
                "rename one of them",
                where=where,
            )
        by_lower[host.lower()] = host
        if not HOSTNAME_RE.match(host):
            yield Problem(
                f"host {host}",
                "is not a valid node name (RFC 1123: lowercase "
                "letters, digits and '-', at most 63)",
                "rename the host",
                where=where,
            )


_FACT_RE = re.compile(r"^ansible_")


def resolve_ip(ctx: Context, host: str, value: str) -> tuple[str | None, Problem | None]:
    """A templated `ip` rendered with the inventory's variables, or why it cannot be.

    Facts (`ansible_*` names no inventory sets) are only known on the host: such a
    template is left to the per-host check.
    """
    import jinja2
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    inv = ctx.inv
    view = {**ctx.settings, **inv.hosts[host]}
    context = {
        **view,
        "inventory_hostname": host,
        "inventory_hostname_short": host.split(".", maxsplit=1)[0],
        "group_names": sorted(g for g, m in inv.groups.items() if host in m and g != "all"),
        "groups": inv.groups,
        "hostvars": inv.hosts,
    }
    where = inv.host_origins.get(host, {}).get("ip", "")
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    text: str | None = value
    for _ in range(5):
        if text is None or not _is_template(text):
            return text, None
        text, why = _render_once(env, meta, text, context)
        if why:
            return None, Problem(
                f"host {host}",
                f"ip {value!r} {why}",
                "define what it refers to, or write the address itself",
                where=where,
            )
    return None, None


def _render_once(env: Any, meta: Any, text: str, context: dict[str, Any]) -> tuple[Any, str]:
    """(rendered text, '') or (None, why it cannot resolve) or (None, '') when unknowable."""
    import jinja2

    try:
        names = meta.find_undeclared_variables(env.parse(text))
    except jinja2.TemplateError as exc:
        return None, f"is not a valid template ({exc.message})"
    missing = sorted(n for n in names if n not in context)
    if any(_FACT_RE.match(n) or n == "ansible_facts" for n in missing):
        return None, ""  # a fact: known on the host only
    if missing:
        return None, f"uses {', '.join(missing)}, which no inventory file defines"
    try:
        return env.from_string(text).render(context).strip(), ""
    except jinja2.UndefinedError as exc:
        return None, f"does not resolve: {exc.message}"
    except Exception:  # an Ansible filter or test: left to the deploy
        return None, ""


@rule(
    "host-ip",
    "every host has an `ip`: a usable IPv4 address (not 0.0.0.0, loopback, multicast, nor the "
    "network or broadcast address of `airlock_host_cidr`), unique, and a template in it resolves",
    "hosts.yml:5: host m2: has ip 192.0.2.11, the same as m1; give each host its own ip",
)
def _check_host_ips(ctx: Context) -> Iterator[Problem]:
    by_ip: dict[str, str] = {}
    host_net = _host_net(ctx)
    for host, host_vars in sorted(ctx.inv.hosts.items()):
        where = ctx.inv.host_origins.get(host, {}).get("ip", ctx.inv.host_where.get(host, ""))
        ip = host_vars.get("ip")
        if ip in (None, ""):
            yield Problem(
                f"host {host}",
                "has no `ip`",
                f"set `ip: <its cluster-network IPv4 address>` for {host}",
                where=ctx.inv.host_where.get(host, ""),
            )
            continue
        if isinstance(ip, Vaulted):
            continue
        if _is_template(ip):
            resolved, problem = resolve_ip(ctx, host, ip)
            if problem:
                yield problem
            if resolved is None:
                continue
            ctx.ips[host] = ip = resolved
        yield from _ip_problems(host, ip, where, host_net, by_ip)


def _ip_problems(
    host: str, ip: Any, where: str, net: ipaddress.IPv4Network | None, by_ip: dict[str, str]
) -> Iterator[Problem]:
    try:
        addr = ipaddress.IPv4Address(str(ip))
    except ValueError:
        yield Problem(
            f"host {host}",
            f"ip {ip!r} is not an IPv4 address",
            "set ip to the host's cluster-network address, e.g. 10.0.0.11",
            where=where,
        )
        return
    why = _unusable(addr, net)
    if why:
        yield Problem(
            f"host {host}",
            f"ip {ip} {why}",
            "set ip to the host's own address on the cluster network",
            where=where,
        )
    if str(addr) in by_ip:
        yield Problem(
            f"host {host}",
            f"has ip {ip}, the same as {by_ip[str(addr)]}",
            "give each host its own ip",
            where=where,
        )
    else:
        by_ip[str(addr)] = host


_UNUSABLE: tuple[tuple[Callable[[ipaddress.IPv4Address], bool], str], ...] = (
    (lambda a: a.is_unspecified, "is the unspecified address (it means 'every address')"),
    (lambda a: a.is_loopback, "is a loopback address (other hosts cannot reach it)"),
    (lambda a: a.is_multicast, "is a multicast address"),
    (lambda a: a.is_reserved or str(a) == "255.255.255.255", "is a reserved address"),
    (lambda a: a.is_link_local, "is a link-local address (169.254.0.0/16, not routed)"),
)


def _unusable(addr: ipaddress.IPv4Address, net: ipaddress.IPv4Network | None) -> str:
    for test, why in _UNUSABLE:
        if test(addr):
            return why
    edges = (net.network_address, net.broadcast_address) if net and net.prefixlen < 31 else ()
    if net is not None and addr in edges:
        kind = "network" if addr == net.network_address else "broadcast"
        return f"is the {kind} address of airlock_host_cidr {net}"
    return ""


def _host_net(ctx: Context) -> ipaddress.IPv4Network | None:
    value = ctx.settings.get("airlock_host_cidr") or ""
    if not value or _unknowable(value):
        return None
    try:
        return ipaddress.IPv4Network(str(value), strict=False)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# groups


@rule(
    "etcd-size",
    "etcd has 1, 3, 5 or 7 members",
    "group etcd: has 4 members; use 1, 3, 5 or 7 members: an even count adds no fault "
    "tolerance (3 survive 1 failure, 5 survive 2)",
)
def _check_etcd(ctx: Context) -> Iterator[Problem]:
    count = len(ctx.inv.members("etcd"))
    if count not in ETCD_SIZES:
        yield Problem(
            "group etcd",
            f"has {count} member{'s' if count != 1 else ''}",
            "use 1, 3, 5 or 7 members: an even count adds no fault tolerance "
            "(3 survive 1 failure, 5 survive 2)",
            where=ctx.inv.group_where.get("etcd", "") or "",
        )


@rule(
    "control-plane",
    "`kube_control_plane` has at least one host",
    "group kube_control_plane: has no host; put at least one host in kube_control_plane (3 for HA)",
)
def _check_control_plane(ctx: Context) -> Iterator[Problem]:
    if not ctx.inv.members("kube_control_plane"):
        yield Problem(
            "group kube_control_plane",
            "has no host",
            "put at least one host in kube_control_plane (3 for HA)",
            where=ctx.inv.group_where.get("kube_control_plane", "") or "",
        )


@rule(
    "required-groups",
    "a VIP has `lb` hosts to hold it; `airlock_install_source: bundle` has a `bundle_host`",
    "group lb: has no host but airlock_api_vip is set; put the hosts that should hold the VIP "
    "(usually the control-plane hosts) in lb",
)
def _check_required_groups(ctx: Context) -> Iterator[Problem]:
    vip = ctx.settings.get("airlock_api_vip") or ""
    if vip and not ctx.inv.members("lb"):
        yield Problem(
            "group lb",
            "has no host but airlock_api_vip is set",
            "put the hosts that should hold the VIP (usually the control-plane hosts) in lb",
            where=ctx.inv.group_where.get("lb", "") or "",
        )
    source = ctx.settings.get("airlock_install_source")
    if source == "bundle" and ctx.inv.hosts and not ctx.inv.members("bundle_host"):
        yield Problem(
            "group bundle_host",
            "has no host but airlock_install_source is bundle",
            "put one host (e.g. the first control-plane host) in bundle_host to serve the bundle",
            where=ctx.inv.group_where.get("bundle_host", "") or "",
        )


@rule(
    "registry-hosts",
    "a registry host with `registry_impl: harbor` is no Kubernetes node (Harbor brings Docker)",
    "host m3: is a Kubernetes node and a Harbor registry host (registry_impl harbor); Harbor "
    "brings Docker (its own iptables chains, another containerd): give Harbor a host outside "
    "kube_control_plane and kube_node, or set registry_impl: distribution",
)
def _check_registry_hosts(ctx: Context) -> Iterator[Problem]:
    nodes = set(ctx.inv.members("kube_control_plane")) | set(ctx.inv.members("kube_node"))
    for host in ctx.inv.members("registry"):
        impl = ctx.inv.hosts.get(host, {}).get("registry_impl", ctx.settings.get("registry_impl"))
        if impl == "harbor" and host in nodes:
            yield Problem(
                f"host {host}",
                "is a Kubernetes node and a Harbor registry host (registry_impl harbor)",
                "Harbor brings Docker (its own iptables chains, another containerd): give Harbor "
                "a host outside kube_control_plane and kube_node, or set registry_impl: "
                "distribution",
                where=ctx.inv.host_where.get(host, ""),
            )


@rule(
    "image-source",
    "`airlock_image_source: registry` has `registry` hosts, each with `registry_impl: "
    "distribution` (the mirror nodes pull the bundle's images from)",
    "group registry: has no host but airlock_image_source is registry; put a host in registry "
    "(with registry_impl: distribution) or set airlock_image_source: import",
)
def _check_image_source(ctx: Context) -> Iterator[Problem]:
    if ctx.settings.get("airlock_image_source") != "registry":
        return
    hosts = ctx.inv.members("registry")
    if not hosts:
        yield Problem(
            "group registry",
            "has no host but airlock_image_source is registry",
            "put a host in registry (with registry_impl: distribution) or set "
            "airlock_image_source: import",
            where=ctx.inv.group_where.get("registry", "") or "",
        )
    for host in hosts:
        impl = ctx.inv.hosts.get(host, {}).get("registry_impl", ctx.settings.get("registry_impl"))
        if impl != "distribution":
            yield Problem(
                f"host {host}",
                f"runs registry_impl {impl} but airlock_image_source is registry",
                "the mirror of the bundle's images runs on registry_impl: distribution only; "
                "set it, or airlock_image_source: import",
                where=ctx.inv.host_where.get(host, ""),
            )


@rule(
    "ceph-mons",
    "group `ceph` runs 1, 3 or 5 monitors (hosts without `ceph_mon: false`)",
    "group ceph: runs 2 monitors (m1, m2); run 1, 3 or 5 (set ceph_mon: false on the "
    "others): Ceph's monitors need a majority, so an even count adds no fault tolerance",
)
def _check_ceph_mons(ctx: Context) -> Iterator[Problem]:
    hosts = ctx.inv.members("ceph")
    if not hosts:
        return
    mons = []
    for host in hosts:
        value = ctx.inv.hosts.get(host, {}).get("ceph_mon", True)
        runs_mon, wrong = _coerce_bool({}, value)
        if _unknowable(value) or wrong:
            return  # a template or vaulted value (the preflight checks it) or setting-types'
        if runs_mon:
            mons.append(host)
    if len(mons) not in CEPH_MON_SIZES:
        shown = f" ({', '.join(mons[:5])}{', ...' if len(mons) > 5 else ''})" if mons else ""
        yield Problem(
            "group ceph",
            f"runs {len(mons)} monitor{'s' if len(mons) != 1 else ''}{shown}",
            "run 1, 3 or 5 (set ceph_mon: false on the others): Ceph's monitors need a "
            "majority, so an even count adds no fault tolerance",
            where=ctx.inv.group_where.get("ceph", "") or "",
        )


@rule(
    "ceph-lab-osds",
    "an OSD of mode `lab-file` is only on a host with `ceph_allow_lab_osds: true`",
    "host m1: has an OSD of mode lab-file (/var/lib/ceph/lab-osd/osd0.img), BlueStore on a "
    "file, for labs only; give it a whole device (mode raw or lvm), or set "
    "ceph_allow_lab_osds: true in a lab",
)
def _check_ceph_lab_osds(ctx: Context) -> Iterator[Problem]:
    for host in ctx.inv.members("ceph"):
        view = ctx.inv.hosts.get(host, {})
        devices, allowed = view.get("ceph_osd_devices", []), view.get("ceph_allow_lab_osds", False)
        allows, wrong = _coerce_bool({}, allowed)
        if not isinstance(devices, list) or _unknowable(allowed) or wrong or allows:
            continue  # a wrong type is setting-types' business
        paths = [
            str(d.get("path", "?"))
            for d in devices
            if isinstance(d, dict) and d.get("mode") == "lab-file"
        ]
        if paths:
            yield Problem(
                f"host {host}",
                f"has an OSD of mode lab-file ({', '.join(paths)}), BlueStore on a file, "
                "for labs only",
                "give it a whole device (mode raw or lvm), or set ceph_allow_lab_osds: true "
                "in a lab",
                where=ctx.inv.host_where.get(host, ""),
            )


# ---------------------------------------------------------------------------------------
# addresses and networks


def _network(ctx: Context, name: str) -> tuple[ipaddress.IPv4Network | None, Problem | None]:
    value = ctx.settings.get(name)
    if _unknowable(value) or not isinstance(value, str):
        return None, None  # a wrong type is setting-types' business
    try:
        return ipaddress.IPv4Network(value), None
    except ValueError as exc:
        return None, Problem(
            f"setting {name}",
            f"{value!r} is not a valid network ({exc})",
            "write it as a network address with a prefix, e.g. 10.244.0.0/16",
            where=ctx.where(name),
        )


@rule(
    "vip",
    "with several control-plane hosts a VIP is set; it is a usable IPv4 address, nobody's "
    "`ip`, inside `airlock_host_cidr` (not its network or broadcast address) and outside the "
    "pod and service networks",
    "group_vars/all.yml:3: setting airlock_api_vip: 198.51.100.7 is outside the hosts' network "
    "192.0.2.0/24; choose a free address in 192.0.2.0/24",
)
def _check_vip(ctx: Context) -> Iterator[Problem]:
    vip = ctx.settings.get("airlock_api_vip") or ""
    masters = ctx.inv.members("kube_control_plane")
    where = ctx.where("airlock_api_vip")
    if not vip:
        if len(masters) > 1:
            yield Problem(
                "setting airlock_api_vip",
                f"is empty but kube_control_plane has {len(masters)} hosts",
                "set airlock_api_vip to a free address in the hosts' subnet",
                where=where,
            )
        return
    if _unknowable(vip):
        return
    try:
        vip_addr = ipaddress.IPv4Address(str(vip))
    except ValueError:
        yield Problem(
            "setting airlock_api_vip",
            f"{vip!r} is not an IPv4 address",
            "set it to a free address in the hosts' subnet",
            where=where,
        )
        return
    host_cidr = ctx.settings.get("airlock_host_cidr") or ""
    net = None
    if host_cidr and not _unknowable(host_cidr):
        try:
            net = ipaddress.IPv4Network(str(host_cidr), strict=False)
        except ValueError:
            yield Problem(
                "setting airlock_host_cidr",
                f"{host_cidr!r} is not a network",
                "set it like 10.0.0.0/24",
                where=ctx.where("airlock_host_cidr"),
            )
    why = _unusable(vip_addr, net)
    if why:
        yield Problem(
            "setting airlock_api_vip",
            f"{vip} {why}",
            "choose a free address in the hosts' network",
            where=where,
        )
        return
    for host, ip in sorted({**ctx.inv.ips, **ctx.ips}.items()):
        if ip == str(vip_addr):
            yield Problem(
                "setting airlock_api_vip",
                f"{vip} is the ip of host {host}",
                "choose an address no host uses",
                where=where,
            )
    if net is not None and vip_addr not in net:
        yield Problem(
            "setting airlock_api_vip",
            f"{vip} is outside the hosts' network {host_cidr}",
            f"choose a free address in {host_cidr}",
            where=where,
        )
    for name in ("airlock_service_cidr", "airlock_pod_cidr"):
        cluster_net, _ = _network(ctx, name)
        if cluster_net is not None and vip_addr in cluster_net:
            yield Problem(
                "setting airlock_api_vip",
                f"{vip} lies inside {name} {cluster_net}",
                "choose an address in the hosts' network, outside the cluster's networks",
                where=where,
            )


@rule(
    "networks",
    "pod and service networks are valid, overlap neither each other nor the hosts; the "
    "service network is /12 to /28; the pod network gives every node (kube_control_plane, "
    "kube_node) its own /24",
    "group_vars/all.yml:6: setting airlock_pod_cidr: 10.244.0.0/23 gives 2 node subnets of "
    "/24 but the cluster has 5 nodes; use a larger network, e.g. /16",
)
def _check_cidrs(ctx: Context) -> Iterator[Problem]:
    nets: dict[str, ipaddress.IPv4Network] = {}
    for name in ("airlock_pod_cidr", "airlock_service_cidr"):
        net, problem = _network(ctx, name)
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
            where=ctx.where("airlock_pod_cidr"),
        )
    host_net = _host_net(ctx)
    ips = {**ctx.inv.ips, **ctx.ips}
    for name, net in nets.items():
        where = ctx.where(name)
        if host_net and net.overlaps(host_net):
            yield Problem(
                f"setting {name}",
                f"{net} overlaps the hosts' network {host_net}",
                "choose a network the hosts do not use",
                where=where,
            )
            continue
        for host, ip in sorted(ips.items()):
            try:
                inside = ipaddress.IPv4Address(ip) in net
            except ValueError:
                continue
            if inside:
                yield Problem(
                    f"setting {name}",
                    f"{net} contains the ip {ip} of host {host}",
                    "choose a network the hosts do not use",
                    where=where,
                )
                break
    yield from _network_sizes(ctx, pod, svc)


def _network_sizes(
    ctx: Context, pod: ipaddress.IPv4Network | None, svc: ipaddress.IPv4Network | None
) -> Iterator[Problem]:
    if svc is not None:
        if svc.prefixlen < 12:
            yield Problem(
                "setting airlock_service_cidr",
                f"{svc} is larger than kube-apiserver accepts",
                "use at most a /12 (e.g. 10.96.0.0/12)",
                where=ctx.where("airlock_service_cidr"),
            )
        elif svc.prefixlen > 28:
            yield Problem(
                "setting airlock_service_cidr",
                f"{svc} has only {svc.num_addresses} addresses (the API takes the 1st, DNS the "
                "10th)",
                "use at least a /28, better a /16 or larger",
                where=ctx.where("airlock_service_cidr"),
            )
    if pod is not None:
        nodes = set().union(*(ctx.inv.members(g) for g in NODES))
        where = ctx.where("airlock_pod_cidr")
        if pod.prefixlen > NODE_MASK:
            yield Problem(
                "setting airlock_pod_cidr",
                f"{pod} is smaller than the /{NODE_MASK} each node gets",
                "use a /16 (or at most /24 per node)",
                where=where,
            )
        elif len(nodes) > 2 ** (NODE_MASK - pod.prefixlen):
            yield Problem(
                "setting airlock_pod_cidr",
                f"{pod} gives {2 ** (NODE_MASK - pod.prefixlen)} node subnets of /{NODE_MASK} "
                f"but the cluster has {len(nodes)} nodes",
                "use a larger network, e.g. /16",
                where=where,
            )


# ---------------------------------------------------------------------------------------
# ports

# (what listens, the setting or fixed port, the groups whose hosts run it), in the order a
# clash is reported.
SERVICES: tuple[tuple[str, str | int, tuple[str, ...]], ...] = (
    ("haproxy (the API frontend)", "loadbalancer_port", ("lb",)),
    ("kube-apiserver", "airlock_apiserver_port", ("kube_control_plane",)),
    ("etcd (clients)", "etcd_client_port", ("etcd",)),
    ("etcd (peers)", "etcd_peer_port", ("etcd",)),
    ("etcd (metrics)", "etcd_metrics_port", ("etcd",)),
    ("haproxy stats", "loadbalancer_stats_port", ("lb",)),
    ("the bundle server", "bundle_server_port", ("bundle_host",)),
    ("kubelet", 10250, NODES),
    ("kube-proxy health", 10256, NODES),
    ("kube-controller-manager", 10257, ("kube_control_plane",)),
    ("kube-scheduler", 10259, ("kube_control_plane",)),
)


def _resolve(view: dict[str, Any], defaults: dict[str, Any], name: str) -> tuple[Any, str]:
    """A setting's value, following `{{ other }}` references; and the setting that set it."""
    for _ in range(5):
        value = view.get(name, defaults.get(name))
        match = _REF_RE.match(value) if isinstance(value, str) else None
        if not match:
            return value, name
        name = match.group(1)
    return None, name


@rule(
    "ports",
    "no two services airlock runs on one host share a port (haproxy, kube-apiserver, etcd, "
    "haproxy stats, the bundle server, kubelet, kube-proxy, controller-manager, scheduler)",
    "group_vars/all.yml:5: setting airlock_api_port: 6443 equals airlock_apiserver_port on "
    "host m1 (and 2 more): haproxy (the API frontend) and kube-apiserver would both listen "
    "there; give one of them another port",
)
def _check_ports(ctx: Context) -> Iterator[Problem]:
    defaults = {n: o.get("default") for n, o in ctx.options.items()}
    host_groups: dict[str, set[str]] = {h: set() for h in ctx.inv.hosts}
    for group in {g for _, _, gs in SERVICES for g in gs}:
        for h in ctx.inv.members(group):
            host_groups.setdefault(h, set()).add(group)
    clashes: dict[tuple[Any, str, str], list[str]] = {}
    for host, groups in sorted(host_groups.items()):
        view = ctx.inv.hosts.get(host, {})
        used: dict[int, tuple[str, str]] = {}
        for label, setting, run_by in SERVICES:
            if not groups.intersection(run_by):
                continue
            if isinstance(setting, int):
                port, name = setting, str(setting)
            else:
                value, name = _resolve(view, defaults, setting)
                coerced, wrong = _coerce({"type": "int"}, value)
                if value is None or wrong:
                    continue
                port = coerced
            if port in used:
                first_label, first_name = used[port]
                clashes.setdefault((port, first_name, name), [label, first_label]).append(host)
            else:
                used[port] = (label, name)
    for (port, first, second), (label, first_label, *hosts) in clashes.items():
        more = f" (and {len(hosts) - 1} more)" if len(hosts) > 1 else ""
        subject = f"setting {first}" if not first.isdigit() else f"port {first}"
        other = second if not second.isdigit() else f"{label}'s fixed port"
        yield Problem(
            subject,
            f"{port} equals {other} on host {hosts[0]}{more}: {first_label} and {label} would "
            "both listen there",
            "give one of them another port",
            where=ctx.where(first) if not first.isdigit() else "",
        )


RULES.append(
    Rule(
        "kube-version",
        "`airlock_kube_version` is the version the bundle manifest pins (airlock/check.py)",
        "setting airlock_kube_version: 1.33.0 is not in the bundle manifest manifest.yml (it "
        'pins Kubernetes v1.37.2, v1.36.3, v1.35.4); set airlock_kube_version: "1.37.2" (or '
        "another release it pins), or pin the release you want in offline-bundle/manifest.yml",
    )
)


# ---------------------------------------------------------------------------------------


def validate(inv: Inventory, known: dict[str, Any] | None = None) -> list[Problem]:
    """Every problem of the inventory: the loader's, then each rule's, in RULES order."""
    if inv.broken:
        return list(inv.problems)
    options = option_specs()
    if known is not None:
        options = {**{n: {"default": d, "_role": "?"} for n, d in known.items()}, **options}
    defaults = {n: o.get("default") for n, o in options.items()}
    ctx = Context(inv, options, {**defaults, **inv.settings})
    problems = list(inv.problems)
    for entry in RULES:
        if entry.check is not None:
            problems.extend(entry.check(ctx))
    return problems


def rules_table() -> str:
    """The README's table of what `airlock check` verifies before touching a host."""
    lines = ["| rule | what it verifies | example message |", "| --- | --- | --- |"]
    for entry in RULES:
        cells = [f"`{entry.id}`", entry.text, f"`` {entry.example} ``"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
