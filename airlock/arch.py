"""Architectures: the names airlock uses (Debian's and Go's: amd64, arm64) and the one map
from a machine's name (`uname -m`) to them. Everything in airlock/ asks here."""

from __future__ import annotations

import platform

ARCHES = ("amd64", "arm64")

# `uname -m` / platform.machine() -> airlock's name.
_MACHINE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def arch_of_machine(machine: str) -> str:
    """`x86_64` -> `amd64`, `aarch64` -> `arm64`; any other name is returned as it is."""
    return _MACHINE_ARCH.get(machine, machine)


def host_arch() -> str:
    """This machine's architecture, by airlock's name."""
    return arch_of_machine(platform.machine())
