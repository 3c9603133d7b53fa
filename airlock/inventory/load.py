"""Reading an inventory directory or file into an `Inventory`, the way Ansible would.

YAML inventories (hosts.yml and the like), group_vars/ and host_vars/ are read by our own
code (`airlock.inventory.source`), so every mistake has a FILE:LINE and no Ansible parser
error can escape. Each host's view of its variables follows Ansible's precedence: group
`all` and then every other group of the host (by depth, `ansible_group_priority`, name)
from inventory files, then group_vars/all, then the other groups' group_vars, then the
host's own inventory variables and host_vars. Other inventory formats (INI) are read by
Ansible's inventory manager, with its errors turned into problems.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlock.errors import AirlockError
from airlock.inventory.model import Definition, Inventory, Problem
from airlock.inventory.source import Doc, read_yaml

BUILTIN_GROUPS = ("all", "ungrouped")
YAML_EXTS = (".yml", ".yaml", ".json")
# Ansible's INVENTORY_IGNORE_EXTS and the names it always skips in an inventory directory.
IGNORED_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig")
IGNORED_EXTS += (".cfg", ".retry", ".ini.example")
IGNORED_NAMES = ("group_vars", "host_vars", "vars_plugins")
GROUP_KEYS = ("hosts", "children", "vars")
VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RANGE_RE = re.compile(r"\[[^\]]*:[^\]]*\]")


@dataclass
class _Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    parents: set[str] = field(default_factory=set)
    defined_at: str = ""
    priority: int = 1


@dataclass
class _Host:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    defined_at: str = ""


class _Builder:
    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.hosts: dict[str, _Host] = {}
        self.problems: list[Problem] = []
        self.definitions: list[Definition] = []
        self.broken = False

    def group(self, name: str, where: str = "") -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name, defined_at=where)
        return self.groups[name]

    def host(self, name: str, where: str) -> _Host:
        if name not in self.hosts:
            self.hosts[name] = _Host(name, defined_at=where)
        return self.hosts[name]

    def problem(self, where: str, subject: str, what: str, fix: str) -> None:
        self.problems.append(Problem(subject, what, fix, where=where))

    def add_vars(
        self,
        target: dict[str, Any],
        origin: dict[str, str],
        data: Any,
        doc: Doc,
        path: tuple[Any, ...],
        scope: str,
    ) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            self.problem(
                doc.where(*path),
                scope,
                f"its vars are a {_kind(data)}, not a mapping",
                "write them as `name: value` lines",
            )
            return
        for key, value in data.items():
            where = doc.where(*path, str(key))
            if not isinstance(key, str) or not VAR_NAME_RE.match(key):
                self.problem(
                    where,
                    scope,
                    f"{key!r} is not a valid variable name",
                    "use letters, digits and '_', starting with a letter",
                )
                continue
            target[key] = value
            origin[key] = where
            self.definitions.append(Definition(key, value, where, scope))


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------------------------------
# hosts files


def _parse_yaml_hosts(b: _Builder, doc: Doc) -> None:
    data = doc.data
    if data is None:
        return
    if not isinstance(data, dict):
        b.broken = True
        b.problem(
            doc.where(),
            "",
            f"holds a {_kind(data)}, not a mapping of groups",
            "start with `all:` and put `hosts:` and `children:` under it (see inventories/example)",
        )
        return
    for name, gdata in data.items():
        _parse_group(b, doc, str(name), gdata, (str(name),), parent="all")


def _parse_group(
    b: _Builder,
    doc: Doc,
    name: str,
    gdata: Any,
    path: tuple[str, ...],
    parent: str,
    depth: int = 0,
) -> None:
    where = doc.where(*path)
    group = b.group(name, where)
    if name == parent != "all":
        b.problem(where, f"group {name}", "is listed among its own children", "remove it there")
        return
    if name != "all" and parent:
        b.group(parent).children.add(name)
        group.parents.add(parent)
    if gdata is None or depth > 50:
        return
    if not isinstance(gdata, dict):
        names = (
            [str(h) for h in gdata[:2]]
            if isinstance(gdata, list) and all(isinstance(h, (str, int)) for h in gdata[:2])
            else []
        ) or ["h1"]
        example = f"`{name}: {{hosts: {{{', '.join(n + ': {}' for n in names)}}}}}`"
        b.problem(
            where,
            f"group {name}",
            f"is a {_kind(gdata)}, not a mapping (so it has no members)",
            f"write it as {example}",
        )
        return
    for key, value in gdata.items():
        kpath = (*path, str(key))
        kwhere = doc.where(*kpath)
        if key == "vars":
            b.add_vars(group.vars, group.where, value, doc, kpath, f"group {name}")
            _take_priority(b, group)
        elif key == "hosts":
            _parse_hosts(b, doc, name, value, kpath)
        elif key == "children":
            if value is None:
                continue
            if not isinstance(value, dict):
                b.problem(
                    kwhere,
                    f"group {name}",
                    f"its children are a {_kind(value)}, not a mapping",
                    f"write `children: {{group1: {{}}, group2: {{}}}}` under {name}",
                )
                continue
            for child, cdata in value.items():
                _parse_group(b, doc, str(child), cdata, (*kpath, str(child)), name, depth + 1)
        else:
            from airlock.inventory.specs import nearest

            guess = nearest(str(key), GROUP_KEYS)
            hint = f"did you mean `{guess}`?" if guess else "use hosts, children or vars"
            b.problem(
                kwhere,
                f"group {name}",
                f"has a key `{key}`, which Ansible ignores (a group holds hosts, children, vars)",
                hint,
            )


def _parse_hosts(b: _Builder, doc: Doc, group: str, value: Any, path: tuple[str, ...]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        names = [str(h) for h in value[:2]] if isinstance(value, list) else ["h1"]
        b.problem(
            doc.where(*path),
            f"group {group}",
            f"its hosts are a {_kind(value)}, not a mapping (so it has no members)",
            f"write `hosts: {{{', '.join(n + ': {}' for n in names)}}}`",
        )
        return
    for pattern, hvars in value.items():
        hpath = (*path, str(pattern))
        where = doc.where(*hpath)
        names = _expand(str(pattern))
        for name in names:
            host = b.host(name, where)
            b.group(group).hosts.add(name)
            b.add_vars(host.vars, host.where, hvars, doc, hpath, f"host {name}")


def _expand(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03, as Ansible expands host ranges."""
    if not _RANGE_RE.search(pattern):
        return [pattern]
    try:
        from ansible.plugins.inventory import detect_range, expand_hostname_range

        return list(expand_hostname_range(pattern)) if detect_range(pattern) else [pattern]
    except Exception:  # not a range Ansible can expand: a literal name
        return [pattern]


def _parse_with_ansible(b: _Builder, path: Path, name: str) -> None:
    """A non-YAML inventory file (INI): Ansible reads it, its errors become problems."""
    try:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.plugins.loader import init_plugin_loader
        from ansible.utils.display import Display

        Display().verbosity = 0
        _init_plugins(init_plugin_loader)
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)], parse=False)
        manager._inventory.current_source = str(path)
        parsed = False
        for plugin_name in ("ini", "yaml", "host_list"):
            from ansible.plugins.loader import inventory_loader

            plugin = inventory_loader.get(plugin_name)
            if plugin is None or not plugin.verify_file(str(path)):
                continue
            try:
                plugin.parse(manager._inventory, manager._loader, str(path), cache=False)
                parsed = True
                break
            except Exception as exc:  # any parser error is the user's input
                message = " ".join(str(exc).split())[:300]
                line = re.search(r"line (\d+)", message)
                b.problem(
                    f"{name}:{line.group(1) if line else 1}",
                    "",
                    f"cannot be read: {message}",
                    "fix the INI syntax (`[group]`, one host per line) or write it as YAML",
                )
                b.broken = True
                return
        if not parsed:
            b.problem(
                f"{name}:1",
                "",
                "is not an inventory file Ansible can read",
                "write it as YAML (hosts.yml), or move it out of the inventory directory",
            )
            b.broken = True
            return
        data = manager._inventory
        for gname, g in data.groups.items():
            group = b.group(gname, f"{name}:1")
            b.add_vars(group.vars, group.where, dict(g.get_vars()), Doc(name), (), f"group {gname}")
            group.priority = g.priority
            for child in g.child_groups:
                group.children.add(child.name)
                b.group(child.name).parents.add(gname)
            for h in g.hosts:
                b.group(gname).hosts.add(h.name)
        for hname, h in data.hosts.items():
            host = b.host(hname, f"{name}:1")
            hvars = {k: v for k, v in h.get_vars().items() if k not in _MAGIC}
            b.add_vars(host.vars, host.where, hvars, Doc(name), (), f"host {hname}")
    except Exception as exc:  # Ansible's errors are about the user's file
        b.problem(
            f"{name}:1",
            "",
            f"cannot be read: {' '.join(str(exc).split())[:300]}",
            "fix the file, or write it as YAML",
        )
        b.broken = True


_PLUGINS_READY: list[bool] = []


def _init_plugins(init: Any) -> None:
    if not _PLUGINS_READY:
        init()
        _PLUGINS_READY.append(True)


_MAGIC = (
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "group_names",
)


# ---------------------------------------------------------------------------------------
# group_vars/ and host_vars/


def _vars_files(base: Path, kind: str) -> tuple[dict[str, list[Path]], list[tuple[Path, Path]]]:
    """entity name -> its files, as Ansible finds them; and the entries it ignores.

    Ansible takes the first of NAME (a file or a directory), NAME.yml, NAME.yaml and
    NAME.json that exists and ignores the others: `group_vars/all.yml` next to a
    directory `group_vars/all/` is never read.
    """
    root = base / kind
    if not root.is_dir():
        return {}, []
    entries: dict[str, list[tuple[int, Path]]] = {}
    for entry in sorted(os.listdir(root)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full = root / entry
        stem, ext = os.path.splitext(entry)
        if ext in YAML_EXTS:
            order, name = YAML_EXTS.index(ext) + 1, stem
        elif ext and not full.is_dir():
            continue  # Ansible ignores files with other extensions
        else:
            order, name = 0, entry
        entries.setdefault(name, []).append((order, full))
    found: dict[str, list[Path]] = {}
    ignored: list[tuple[Path, Path]] = []
    for name, candidates in entries.items():
        (_, chosen), *others = sorted(candidates, key=lambda c: c[0])
        found[name] = _dir_files(chosen) if chosen.is_dir() else [chosen]
        ignored += [(other, chosen) for _, other in others]
    return found, ignored


def _dir_files(path: Path) -> list[Path]:
    out: list[Path] = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full = path / entry
        ext = os.path.splitext(entry)[1]
        if full.is_dir() and not ext:
            out.extend(_dir_files(full))
        elif full.is_file() and (not ext or ext in YAML_EXTS):
            out.append(full)
    return out


def _read_vars(
    b: _Builder, base: Path, kind: str, scope_kind: str
) -> tuple[dict[str, tuple[dict[str, Any], dict[str, str]]], list[tuple[str, str, str]]]:
    out: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    listed: list[tuple[str, str, str]] = []
    found, ignored = _vars_files(base, kind)
    for path, chosen in ignored:
        b.problem(
            f"{path.relative_to(base)}:1",
            "",
            f"is never read: Ansible reads {chosen.relative_to(base)}"
            f"{'/' if chosen.is_dir() else ''} instead",
            f"move its variables into {chosen.relative_to(base)}",
        )
    for name, files in found.items():
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for path in files:
            rel = str(path.relative_to(base))
            doc = read_yaml(path, rel, track_depth=1)
            b.problems.extend(doc.problems)
            b.broken = b.broken or doc.broken
            listed.append((scope_kind, name, f"{rel}:1"))
            if doc.broken or doc.data is None:
                continue
            if not isinstance(doc.data, dict):
                b.broken = True
                b.problem(
                    f"{rel}:1",
                    "",
                    f"holds a {_kind(doc.data)}, not a mapping of variables",
                    "write one `name: value` per line (no leading '-')",
                )
                continue
            b.add_vars(values, origins, doc.data, doc, (), f"{scope_kind} {name}")
        out[name] = (values, origins)
    return out, listed


# ---------------------------------------------------------------------------------------


def _host_sources(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    out: list[Path] = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry in IGNORED_NAMES or entry.endswith(IGNORED_EXTS):
            continue
        full = path / entry
        out.extend(_host_sources(full) if full.is_dir() else [full])
    return out


def load_inventory(path: Path) -> Inventory:
    """Read an inventory file or directory; reading problems land in `Inventory.problems`."""
    if not path.exists():
        raise AirlockError(f"inventory {path} does not exist; give a file or directory with -i")
    base = path if path.is_dir() else path.parent
    b = _Builder()
    for source in _host_sources(path):
        rel = str(source.relative_to(base))
        ext = source.suffix
        if ext in YAML_EXTS or (not ext and _looks_like_yaml(source)):
            doc = read_yaml(source, rel)
            b.problems.extend(doc.problems)
            if doc.broken:
                b.broken = True
                continue
            if isinstance(doc.data, dict) and "plugin" in doc.data:
                b.problem(
                    f"{rel}:1",
                    "",
                    "is an inventory plugin configuration",
                    "airlock reads static inventories only: write hosts.yml",
                )
                b.broken = True
                continue
            _parse_yaml_hosts(b, doc)
        else:
            _parse_with_ansible(b, source, rel)
    group_files, listed = _read_vars(b, base, "group_vars", "group")
    host_files, listed_h = _read_vars(b, base, "host_vars", "host")
    if not b.broken and not b.hosts and all(not g.children for g in b.groups.values()):
        b.broken = True
        b.problem(
            str(path),
            "",
            "no hosts or groups are defined",
            "write hosts.yml with `all:`, `hosts:` and `children:` (see inventories/example)",
        )
    return _build(path, b, group_files, host_files, [*listed, *listed_h])


def _looks_like_yaml(path: Path) -> bool:
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return True
    return not re.search(rb"^\s*\[[^\]]+\]\s*$", head, re.M)


def _depths(groups: dict[str, _Group], b: _Builder) -> dict[str, int]:
    depth: dict[str, int] = {"all": 0}
    visiting: set[str] = set()

    def visit(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in visiting:
            b.broken = True
            b.problem(
                groups[name].defined_at,
                f"group {name}",
                "is its own ancestor (a loop of children)",
                "remove one `children` entry of the loop",
            )
            return 1
        visiting.add(name)
        parents = groups[name].parents - {name}
        d = 1 + max((visit(p) for p in parents), default=0)
        visiting.discard(name)
        depth[name] = d
        return d

    for name in groups:
        visit(name)
    return depth


def _priority(group: _Group) -> int:
    return group.priority


def _take_priority(b: _Builder, group: _Group) -> None:
    """`ansible_group_priority` is not a variable: Ansible makes it the group's priority."""
    if "ansible_group_priority" not in group.vars:
        return
    value = group.vars.pop("ansible_group_priority")
    where = group.where.pop("ansible_group_priority", "")
    try:
        group.priority = int(value)
    except (TypeError, ValueError):
        b.problem(
            where,
            f"group {group.name}",
            f"ansible_group_priority {value!r} is not a whole number",
            "set it to a number such as 10",
        )


def _views(
    b: _Builder,
    host_groups: dict[str, set[str]],
    order: Any,
    group_files: dict[str, tuple[dict[str, Any], dict[str, str]]],
    host_files: dict[str, tuple[dict[str, Any], dict[str, str]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """Each host's variables in Ansible's precedence, and the FILE:LINE of each."""
    groups = b.groups
    cache: dict[frozenset[str], tuple[dict[str, Any], dict[str, str]]] = {}
    views: dict[str, dict[str, Any]] = {}
    origins: dict[str, dict[str, str]] = {}
    for h, gs in host_groups.items():
        key = frozenset(gs)
        if key not in cache:
            view: dict[str, Any] = {}
            where: dict[str, str] = {}
            ordered = ["all", *order(gs)]
            for g in ordered:  # inventory files first: group all, then by depth
                view.update(groups[g].vars)
                where.update(groups[g].where)
            for g in ordered:  # then group_vars/, in the same order
                values, origin = group_files.get(g, ({}, {}))
                view.update(values)
                where.update(origin)
            cache[key] = (view, where)
        view, where = (dict(d) for d in cache[key])
        host = b.hosts[h]
        values, origin = host_files.get(h, ({}, {}))
        views[h] = {**view, **host.vars, **values}
        origins[h] = {**where, **host.where, **origin}
    return views, origins


def _build(
    path: Path,
    b: _Builder,
    group_files: dict[str, tuple[dict[str, Any], dict[str, str]]],
    host_files: dict[str, tuple[dict[str, Any], dict[str, str]]],
    listed: list[tuple[str, str, str]],
) -> Inventory:
    groups = b.groups
    for name in list(groups):
        if name != "all" and not groups[name].parents:
            groups[name].parents.add("all")
            groups["all"].children.add(name)
    depth = _depths(groups, b)
    # every group a host belongs to, directly or through children
    members: dict[str, set[str]] = {}

    def all_hosts(name: str, seen: set[str]) -> set[str]:
        if name in members:
            return members[name]
        if name in seen:
            return set()
        seen.add(name)
        out = set(groups[name].hosts)
        for child in groups[name].children:
            out |= all_hosts(child, seen)
        members[name] = out
        return out

    for name in groups:
        all_hosts(name, set())
    host_groups: dict[str, set[str]] = {h: set() for h in b.hosts}
    for name, hosts in members.items():
        for h in hosts:
            host_groups[h].add(name)
    for h, gs in host_groups.items():
        if not gs - {"all"}:
            gs.add("ungrouped")
            groups["ungrouped"].hosts.add(h)
        gs.add("all")
    members["all"] = set(b.hosts)
    members["ungrouped"] = set(groups["ungrouped"].hosts)

    def order(names: set[str]) -> list[str]:
        return sorted(names - {"all"}, key=lambda g: (depth.get(g, 1), _priority(groups[g]), g))

    views, origins = _views(b, host_groups, order, group_files, host_files)
    if views:
        first = next(iter(views))
        settings, setting_origins = dict(views[first]), dict(origins[first])
    else:
        settings = {**groups["all"].vars, **group_files.get("all", ({}, {}))[0]}
        setting_origins = {**groups["all"].where, **group_files.get("all", ({}, {}))[1]}
    return Inventory(
        source=path,
        hosts=views,
        groups={name: sorted(m) for name, m in members.items()},
        settings=settings,
        setting_origins=setting_origins,
        host_origins=origins,
        definitions=b.definitions,
        problems=b.problems,
        broken=b.broken,
        vars_files=listed,
        host_where={h: host.defined_at for h, host in b.hosts.items()},
        group_where={g: grp.defined_at for g, grp in groups.items()},
    )
