#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: install Prometheus rule files, checked by promtool, `for:` optionally capped."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: prometheus_rules
short_description: Install Prometheus rule files into one directory, checked by promtool first
version_added: "0.1.0"
description:
  - Copies every C(*.yml) file of each O(sources) directory into O(dest), named
    C(PREFIX-NAME), after C(promtool check rules) accepted all of them together; O(dest)
    then holds exactly those files (others are removed). Nothing in O(dest) changes when
    promtool refuses a file; the task fails with promtool's message.
  - With O(for_max), every rule's C(for:) longer than it is written as O(for_max), so that a
    lab sees alerts fire within a minute without anyone editing the rules. Rule files are
    read as text (C(for:) lines), so the host needs no YAML library; promtool checks the result.
  - Reports changed only when a file in O(dest) was added, changed or removed; check mode
    reports what would change and writes nothing.
options:
  sources:
    description: Directories on the host with rule files, each with the prefix its files get.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Directory holding C(*.yml) rule files.
        type: path
        required: true
      prefix:
        description: Prefix of the installed names (C(airlock), C(upstream)).
        type: str
        required: true
      files:
        description: Only these file names of O(sources[].path); empty takes every C(*.yml).
        type: list
        elements: str
        default: []
  dest:
    description: Directory Prometheus' C(rule_files) reads; created if missing.
    type: path
    required: true
  promtool:
    description: The promtool program.
    type: path
    default: /usr/local/bin/promtool
  for_max:
    description: Cap every rule's C(for:) at this duration (C(30s), C(1m)); empty keeps them.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: airlock contributors
"""

EXAMPLES = r"""
- name: Install the alert rules
  airlock.cluster.prometheus_rules:
    sources:
      - {path: /etc/prometheus/rules.d/airlock, prefix: airlock}
      - {path: /etc/prometheus/rules.d/upstream, prefix: upstream}
    dest: /etc/prometheus/rules
    for_max: 30s
  notify: Reload prometheus
"""

RETURN = r"""
files:
  description: The installed file names.
  returned: always
  type: list
  elements: str
changed_files:
  description: Names added, changed or removed.
  returned: always
  type: list
  elements: str
capped:
  description: How many C(for:) durations were shortened to O(for_max).
  returned: always
  type: int
"""

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_FOR_LINE = re.compile(r"^(?P<lead>\s*(?:-\s+)?for:\s*)(?P<value>['\"]?[0-9a-z]+['\"]?)\s*$")


def duration_seconds(text: str) -> float:
    """Seconds of a Prometheus duration (1h30m, 5m, 30s); ValueError when it is not one."""
    text = text.strip("'\"")
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def cap_for(text: str, for_max: str) -> tuple[str, int]:
    """`text` with every `for:` longer than `for_max` set to it; and how many were."""
    if not for_max:
        return text, 0
    limit = duration_seconds(for_max)
    out, capped = [], 0
    for line in text.splitlines(keepends=True):
        match = _FOR_LINE.match(line.rstrip("\n"))
        if match and duration_seconds(match.group("value")) > limit:
            out.append(f"{match.group('lead')}{for_max}\n")
            capped += 1
        else:
            out.append(line)
    return "".join(out), capped


def _wanted(module: AnsibleModule) -> tuple[dict[str, str], int]:
    files: dict[str, str] = {}
    capped = 0
    for source in module.params["sources"]:
        path = source["path"]
        if not os.path.isdir(path):
            module.fail_json(msg=f"prometheus_rules: {path} is not a directory")
        only = set(source.get("files") or [])
        for name in sorted(os.listdir(path)):
            if not name.endswith((".yml", ".yaml")) or (only and name not in only):
                continue
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                text, count = cap_for(handle.read(), module.params["for_max"])
            files[f"{source['prefix']}-{name}"] = text
            capped += count
    return files, capped


def _check(module: AnsibleModule, files: dict[str, str]) -> None:
    tmp = tempfile.mkdtemp(prefix="airlock-rules-")
    try:
        paths = []
        for name, text in files.items():
            paths.append(os.path.join(tmp, name))
            with open(paths[-1], "w", encoding="utf-8") as handle:
                handle.write(text)
        if not paths:
            return
        rc, out, err = module.run_command([module.params["promtool"], "check", "rules", *paths])
        if rc != 0:
            module.fail_json(
                msg="prometheus_rules: promtool refused the rules; nothing was installed: "
                + (err or out).strip().replace(tmp + "/", "")[-1500:]
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_module(module: AnsibleModule) -> dict[str, Any]:
    dest = module.params["dest"]
    try:
        cap_for("", module.params["for_max"])
        files, capped = _wanted(module)
    except ValueError as exc:
        module.fail_json(msg=f"prometheus_rules: for_max: {exc}")
    current = {}
    if os.path.isdir(dest):
        for name in os.listdir(dest):
            with open(os.path.join(dest, name), encoding="utf-8") as handle:
                current[name] = handle.read()
    changed = sorted(
        {n for n, t in files.items() if current.get(n) != t} | (set(current) - set(files))
    )
    result = {
        "changed": bool(changed),
        "files": sorted(files),
        "changed_files": changed,
        "capped": capped,
    }
    if not changed:
        return result
    _check(module, files)
    if module.check_mode:
        return result
    os.makedirs(dest, mode=0o755, exist_ok=True)
    for name in changed:
        path = os.path.join(dest, name)
        if name not in files:
            os.unlink(path)
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(files[name])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return result


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "sources": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "prefix": {"type": "str", "required": True},
                    "files": {"type": "list", "elements": "str", "default": []},
                },
            },
            "dest": {"type": "path", "required": True},
            "promtool": {"type": "path", "default": "/usr/local/bin/promtool"},
            "for_max": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
