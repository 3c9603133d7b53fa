# Copyright: airlock developers
# Apache-2.0
"""What airlock's ceph_* modules know about Ceph, without running anything.

Parsing of the ``ceph ... --format json`` answers the modules use (``auth get``,
``osd pool ls detail``), the plans they compute (which ``ceph`` commands bring an entity's
caps or a pool's properties to what was asked), keyring text, the monitors a conf file
names (for error messages) and the one-line text of a ``ceph`` failure. Pure: no Ansible,
no Ceph; module_utils/ceph_run.py runs the programs and hands their output here (as
module_utils/etcd.py and etcd_run.py split etcdctl).

The JSON shapes are those of Ceph 16 (Pacific, Debian 12), which the tests run for real.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: The daemons an entity's caps can name, in the order Ceph prints them.
CAP_TYPES = ("mon", "mgr", "osd", "mds")
#: Entity types ``ceph auth`` knows (the part of a name before the first dot).
ENTITY_TYPES = ("client", "mon", "mgr", "osd", "mds")
AUTOSCALE_MODES = ("on", "warn", "off")

_ERRNO_LINE = re.compile(r"^Error (E[A-Z]+):\s*(.*)$")
_RADOS_LINE = re.compile(r"\[errno (\d+)\] (.*)$")
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\S+ \S+ +-?\d+ ")
_KEYRING_MISSING = re.compile(r"unable to find a keyring on (.*?): \(2\)")


# --- entities and caps ----------------------------------------------------------------
def entity_name_problem(name: str) -> str | None:
    """Why ``name`` is not a Ceph entity name (``client.kubernetes``), or None."""
    kind, dot, ident = name.partition(".")
    if not dot or not ident or kind not in ENTITY_TYPES:
        return (
            f"name {name!r} is not a Ceph entity name: give TYPE.ID with TYPE one of "
            f"{', '.join(ENTITY_TYPES)}, for example client.{name or 'kubernetes'}"
        )
    if any(c.isspace() for c in name):
        return f"name {name!r} contains white space"
    return None


def caps_problem(caps: dict[str, Any]) -> str | None:
    """Why ``caps`` (daemon -> cap string) cannot be set, or None."""
    if not caps:
        # `ceph auth caps` needs at least one; an entity without caps can do nothing.
        return "caps is empty: give at least one cap, or leave caps unset to keep them"
    unknown = sorted(set(caps) - set(CAP_TYPES))
    if unknown:
        return f"caps: unknown daemon {', '.join(unknown)}; use {', '.join(CAP_TYPES)}"
    for daemon, value in caps.items():
        if not isinstance(value, str) or not value.strip():
            return f"caps.{daemon} must be a non-empty string such as 'profile rbd'"
    return None


def normalize_caps(caps: dict[str, Any]) -> dict[str, str]:
    """``caps`` in Ceph's order, values stripped (what ``ceph auth get`` will print)."""
    return {d: str(caps[d]).strip() for d in CAP_TYPES if d in caps}


def caps_args(caps: dict[str, str]) -> list[str]:
    """``ceph auth caps``/``get-or-create`` arguments: daemon, cap, daemon, cap, ..."""
    return [part for daemon, cap in normalize_caps(caps).items() for part in (daemon, cap)]


@dataclass
class Entity:
    """One entity of ``ceph auth get NAME --format json``. ``key`` is a secret."""

    name: str
    key: str = field(repr=False)
    caps: dict[str, str]


def parse_auth_get(data: Any, name: str) -> Entity:
    """The entity ``name`` in ``ceph auth get`` JSON: a list of ``{entity, key, caps}``."""
    entries = data if isinstance(data, list) else [data]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("entity") == name:
            return Entity(
                name=name,
                key=str(entry.get("key", "")),
                caps=normalize_caps(entry.get("caps") or {}),
            )
    raise ValueError(f"ceph auth get printed no entry for {name}")


def describe_caps(caps: dict[str, str] | None) -> str:
    """Caps as diff text, one ``daemon = cap`` per line ('' for no entity)."""
    if caps is None:
        return ""
    return "".join(f"{daemon} = {cap}\n" for daemon, cap in normalize_caps(caps).items())


def keyring_text(name: str, key: str) -> str:
    """A keyring file holding ``name``'s key, as ``ceph auth get-or-create`` writes one."""
    return f"[{name}]\n\tkey = {key}\n"


# --- pools ------------------------------------------------------------------------------
@dataclass
class Pool:
    """The properties ceph_pool manages, from ``ceph osd pool ls detail --format json``."""

    name: str
    size: int | None = None
    min_size: int | None = None
    pg_autoscale_mode: str | None = None
    applications: list[str] = field(default_factory=list)
    pg_num: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "min_size": self.min_size,
            "pg_autoscale_mode": self.pg_autoscale_mode,
            "applications": sorted(self.applications),
            "pg_num": self.pg_num,
        }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_pools(data: Any) -> dict[str, Pool]:
    """Pools by name from ``ceph osd pool ls detail --format json`` (a list of pools)."""
    pools: dict[str, Pool] = {}
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not entry.get("pool_name"):
            continue
        name = str(entry["pool_name"])
        pools[name] = Pool(
            name=name,
            size=_int(entry.get("size")),
            min_size=_int(entry.get("min_size")),
            pg_autoscale_mode=entry.get("pg_autoscale_mode"),
            applications=sorted((entry.get("application_metadata") or {}).keys()),
            pg_num=_int(entry.get("pg_num")),
        )
    return pools


@dataclass
class PoolWish:
    """What ceph_pool was asked for; None leaves a property as Ceph has it."""

    name: str
    pg_autoscale_mode: str = "on"
    size: int | None = None
    min_size: int | None = None
    application: str | None = None
    rbd_init: bool = False


def create_args(wish: PoolWish, pg_num: int | None) -> list[str]:
    """``ceph`` arguments creating the pool with its autoscale mode (sizes come after)."""
    args = ["osd", "pool", "create", wish.name]
    if pg_num is not None:
        args.append(str(pg_num))
    return [*args, "--autoscale-mode", wish.pg_autoscale_mode]


def _size_steps(pool: Pool, wish: PoolWish) -> list[tuple[str, int]]:
    """size and min_size to set, ordered so min_size never exceeds size on the way."""
    steps: list[tuple[str, int]] = []
    if wish.size is not None and wish.size != pool.size:
        steps.append(("size", wish.size))
    if wish.min_size is not None and wish.min_size != pool.min_size:
        steps.append(("min_size", wish.min_size))
    growing = wish.size is not None and pool.size is not None and wish.size > pool.size
    return steps if growing else sorted(steps, key=lambda s: s[0] != "min_size")


def pool_plan(pool: Pool, wish: PoolWish) -> list[list[str]]:
    """The ``ceph`` (or ``rbd``) commands that bring ``pool`` to ``wish``, in order.

    Each is an argument list; the first item is the program (``ceph`` or ``rbd``).
    """
    plan = [
        ["ceph", "osd", "pool", "set", wish.name, prop, str(value)]
        for prop, value in _size_steps(pool, wish)
    ]
    if pool.pg_autoscale_mode != wish.pg_autoscale_mode:
        plan.append(
            ["ceph", "osd", "pool", "set", wish.name, "pg_autoscale_mode", wish.pg_autoscale_mode]
        )
    apps = set(pool.applications)
    if wish.rbd_init and "rbd" not in apps:
        plan.append(["rbd", "pool", "init", wish.name])
        apps.add("rbd")
    if wish.application and wish.application not in apps:
        plan.append(["ceph", "osd", "pool", "application", "enable", wish.name, wish.application])
    return plan


def planned_pool(pool: Pool, plan: list[list[str]]) -> Pool:
    """``pool`` as it will be after ``plan`` (what check mode reports)."""
    after = Pool(**{**pool.__dict__, "applications": list(pool.applications)})
    for step in plan:
        if step[:4] == ["ceph", "osd", "pool", "set"]:
            prop, value = step[5], step[6]
            setattr(after, prop, value if prop == "pg_autoscale_mode" else int(value))
        elif step[:3] == ["rbd", "pool", "init"]:
            after.applications.append("rbd")
        elif step[:5] == ["ceph", "osd", "pool", "application", "enable"]:
            after.applications.append(step[6])
    after.applications = sorted(set(after.applications))
    return after


def describe_pool(pool: Pool | None) -> str:
    """A pool as diff text (pg_num left out: the autoscaler changes it by itself)."""
    if pool is None:
        return ""
    data = pool.to_dict()
    data["applications"] = ",".join(data["applications"])
    return "".join(
        f"{k} = {data[k]}\n" for k in ("size", "min_size", "pg_autoscale_mode", "applications")
    )


# --- conf files and errors --------------------------------------------------------------
def mon_host_from_conf(text: str) -> str | None:
    """The ``mon host`` (or ``mon_host``/``mon-host``) a ceph.conf text sets, if any."""
    section = "global"
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        if re.sub(r"[ _-]+", "_", key.strip().lower()) == "mon_host" and section in (
            "global",
            "client",
            "mon",
        ):
            return value.strip()
    return None


def _meaningful_lines(stderr: str) -> list[str]:
    return [_LOG_PREFIX.sub("", line).strip() for line in stderr.splitlines() if line.strip()]


@dataclass
class Failure:
    """What a failed ``ceph``/``rbd`` run said: an errno (if any) and its text."""

    errno: int | None
    text: str
    keyring_paths: str | None = None


_ERRNO_NUMBERS = {
    "EPERM": 1,
    "ENOENT": 2,
    "EIO": 5,
    "EAGAIN": 11,
    "EACCES": 13,
    "EBUSY": 16,
    "EEXIST": 17,
    "EINVAL": 22,
    "ERANGE": 34,
    "ETIMEDOUT": 110,
}


def parse_failure(stderr: str, stdout: str = "") -> Failure:
    """The errno and message of a failed ceph/rbd run, from its stderr (else stdout)."""
    lines = _meaningful_lines(stderr) or _meaningful_lines(stdout)
    keyring = next((m.group(1) for line in lines if (m := _KEYRING_MISSING.search(line))), None)
    for line in reversed(lines):
        match = _ERRNO_LINE.match(line)
        if match:
            return Failure(_ERRNO_NUMBERS.get(match.group(1)), match.group(2), keyring)
    for line in reversed(lines):
        match = _RADOS_LINE.search(line)
        if match:
            return Failure(int(match.group(1)), match.group(2), keyring)
    for line in reversed(lines):
        match = re.search(r"\((\d+)\) ([^:]+)$", line)
        if match:
            return Failure(int(match.group(1)), line, keyring)
    return Failure(None, lines[-1] if lines else "no output", keyring)
