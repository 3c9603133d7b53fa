"""No task delegates to a host it picks by index straight out of an inventory group.

Ansible templates `delegate_to` before it evaluates `when`, so
`delegate_to: "{{ groups['registry'][0] }}"` fails ("object has no element 0") on an
inventory without that group even where the task is skipped: CI's molecule ceph scenario
(no registry hosts) failed on exactly that. Roles name such hosts in a variable that is ''
when there is none and delegate to `<variable> or inventory_hostname`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DELEGATE = re.compile(r"^\s*delegate_to:\s*(?P<value>.+?)\s*$")
INDEXED = re.compile(r"\[\s*-?\d+\s*\]")


def _delegations() -> list[tuple[str, str]]:
    found = []
    for path in sorted([*ROOT.glob("roles/*/tasks/**/*.yml"), *ROOT.glob("playbooks/**/*.yml")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = DELEGATE.match(line)
            if match:
                found.append((f"{path.relative_to(ROOT)}:{number}", match["value"]))
    return found


def test_the_search_sees_the_delegations() -> None:
    values = [value for _, value in _delegations()]
    assert "localhost" in values
    assert '"{{ _ceph_csi_image_host or inventory_hostname }}"' in values


def test_no_delegation_indexes_a_group() -> None:
    assert [f"{where}: {value}" for where, value in _delegations() if INDEXED.search(value)] == []
