# Copyright: airlock developers
# Apache-2.0
"""Removing the chains Kubernetes and its network made from an iptables-save dump.

kube-proxy (KUBE-*), flannel (FLANNEL-*) and the CNI portmap/firewall plugins (CNI-*)
leave chains and rules behind when a node is reset (kubeadm reset says so and leaves it to
the operator). `strip_chains` drops, table by table, every chain whose name starts with one
of the prefixes and every rule that is in such a chain or jumps to one; the result is
restored atomically with iptables-restore. Everything else (the host's own rules) is kept
as it was. Pure: tests/unit/module_utils/test_iptables.py.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_JUMP = re.compile(r"(?:^|\s)-[jg]\s+(\S+)")


@dataclass
class Stripped:
    text: str
    chains: list[str] = field(default_factory=list)  # "table/CHAIN"
    rules: int = 0


def _ours(name: str, prefixes: tuple[str, ...]) -> bool:
    return name.startswith(prefixes)


def _rule_is_ours(line: str, prefixes: tuple[str, ...]) -> bool:
    parts = shlex.split(line, posix=True)
    chain = parts[1] if len(parts) > 1 else ""
    jump = _JUMP.search(line)
    return _ours(chain, prefixes) or (jump is not None and _ours(jump.group(1), prefixes))


def strip_chains(save: str, prefixes: tuple[str, ...]) -> Stripped:
    """`save` (iptables-save output) without the chains named by `prefixes` and their rules."""
    out: list[str] = []
    result = Stripped(text="")
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if _ours(name, prefixes):
                result.chains.append(f"{table}/{name}")
                continue
        elif line.startswith("-A ") and _rule_is_ours(line, prefixes):
            result.rules += 1
            continue
        out.append(line)
    result.text = "\n".join(out) + ("\n" if out else "")
    return result
