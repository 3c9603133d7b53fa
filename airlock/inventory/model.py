"""What the inventory checks produce and work on: a Problem, and the Inventory model."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One line for the user: where (FILE:LINE when known), what is wrong, how to fix it."""

    subject: str
    what: str
    fix: str
    where: str = ""

    def __str__(self) -> str:
        head = ": ".join(p for p in (self.where, self.subject) if p)
        return _one_line(f"{head}: {self.what}; {self.fix}")


def _one_line(text: str) -> str:
    """Control characters (a name may hold any) escaped, so a problem stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Definition:
    """A variable as written: in which file and line, and for which group or host."""

    name: str
    value: Any
    where: str  # FILE:LINE
    scope: str  # "group all", "group kube_node", "host m1"


@dataclass
class Inventory:
    """An inventory as airlock sees it.

    `hosts` holds each host's view of its inventory variables (Ansible's precedence,
    untemplated, no facts), `host_origins` where each of them comes from, `settings` the
    first host's view (what the cluster-wide rules check), `definitions` every variable
    as written, and `problems` what the loader found while reading the files.
    """

    source: Path
    hosts: dict[str, dict[str, Any]]
    groups: dict[str, list[str]]
    settings: dict[str, Any]
    setting_origins: dict[str, str] = field(default_factory=dict)
    host_origins: dict[str, dict[str, str]] = field(default_factory=dict)
    definitions: list[Definition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    broken: bool = False  # a file could not be read: only `problems` is meaningful
    vars_files: list[tuple[str, str, str]] = field(default_factory=list)  # kind, name, where
    host_where: dict[str, str] = field(default_factory=dict)
    group_where: dict[str, str] = field(default_factory=dict)

    @cached_property
    def ips(self) -> dict[str, str]:
        return {h: str(v["ip"]) for h, v in self.hosts.items() if v.get("ip") not in (None, "")}

    def members(self, group: str) -> list[str]:
        return self.groups.get(group, [])
