#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: whether a stage left this host as it is now; record it after the stage."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.stage_state import (
    StageStateError,
    current,
    difference,
    read_record,
    record_path,
    write_record,
)

DOCUMENTATION = r"""
---
module: stage_state
short_description: Whether a stage of airlock left this host as it is now; record that it did
version_added: "0.1.0"
description:
  - What lets a converged cluster be re-deployed in seconds. Each stage of C(site.yml)
    starts with O(state=check) on every host of its play (C(playbooks/tasks/stage_gate.yml))
    and, when every host answers C(converged), ends the play before any other task. After
    the stage it runs with O(state=record) (C(playbooks/tasks/stage_record.yml)).
  - A host is converged for a stage when its record (C(DIR/NAME.json), 0600) holds the same
    O(fingerprint) (the stage's inputs, computed on the controller by the lookup
    C(airlock.cluster.stage_fingerprint)), every file under O(paths) has the signature it
    had when the stage last finished (type, mode and owner; the content of a regular file
    up to 1 MiB; inode, ctime, size and mtime of a larger one, so any write or replacement
    of a program shows; a directory counts by its entries), and every unit of O(services)
    has the same C(ActiveState) and C(UnitFileState).
  - It never changes anything with O(state=check), in check mode or not. With
    O(state=record) it writes the record when it differs (reported as a change; nothing is
    written in check mode).
  - What it cannot see is said in docs/DEVELOPING.md, "Skipping converged stages". State
    kept outside files and units is seen only through O(probes) (objects in the Kubernetes
    API, Ceph's monitors, pools and keys) or the files that stand for it; images in
    containerd's store, installed packages and Ceph's data are not seen.
    C(airlock deploy --full) (C(airlock_stage_skip=false)) runs every stage regardless.
options:
  name:
    description: The stage (letters, digits, C(-), C(_)); the record is C(DIR/NAME.json).
    type: str
    required: true
  fingerprint:
    description:
      - The controller's digests of the stage's inputs, input -> digest (what the lookup
        C(airlock.cluster.stage_fingerprint) returns); a change is reported by input name.
    type: dict
    required: true
  state:
    description: V(check) compares the host with its record; V(record) writes it.
    type: str
    choices: [check, record]
    default: check
  paths:
    description: Absolute paths (files or directories, read recursively) the stage manages.
    type: list
    elements: path
    default: []
  exclude:
    description:
      - Absolute paths below O(paths) that another stage manages (neither they nor anything
        below them count).
    type: list
    elements: path
    default: []
  probes:
    description:
      - Read-only commands whose exit code and output (by sha256) must be as after the
        stage's last run, for state outside files, for example
        C(kubectl get ... -o jsonpath={.metadata.uid}/{.metadata.generation}) of the objects
        the stage applies (deleting or editing an object changes them; its status does not).
      - Each is a mapping with C(name) (named in the reason), C(argv) (a list, no shell) and
        optionally C(timeout) (seconds, default 30).
    type: list
    elements: dict
    default: []
  services:
    description: systemd units the stage runs.
    type: list
    elements: str
    default: []
  dir:
    description: Where the records are kept (0700).
    type: path
    default: /var/lib/airlock/stages
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Compare this host with what the etcd stage left
  airlock.cluster.stage_state:
    name: etcd
    fingerprint: "{{ lookup('airlock.cluster.stage_fingerprint', 'etcd', prefixes=['etcd']) }}"
    paths: [/etc/etcd, /etc/systemd/system/etcd.service, /usr/local/bin/etcd]
    services: [etcd.service]
  register: etcd_stage
"""

RETURN = r"""
converged:
  description: With O(state=check), whether the host is as the stage's last run left it.
  type: bool
  returned: always
fingerprint:
  description: With O(state=check), the O(fingerprint) given, for O(state=record) after the stage.
  type: dict
  returned: when O(state=check)
reason:
  description: Why not, in one line (empty when converged).
  type: str
  returned: always
  sample: "its inputs changed: var:etcd_heartbeat_interval"
"""


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    path = record_path(p["dir"], p["name"])
    now = current(p["paths"], p["services"], p["exclude"], p["probes"])
    recorded = read_record(path)
    reason = difference(recorded, p["fingerprint"], now)
    if p["state"] == "check":
        return {
            "changed": False,
            "converged": not reason,
            "reason": reason,
            "fingerprint": p["fingerprint"],
        }
    wanted = {"fingerprint": p["fingerprint"], **now}
    if recorded == wanted:
        return {"changed": False, "converged": True, "reason": ""}
    if not module.check_mode:
        write_record(path, wanted)
    return {"changed": True, "converged": True, "reason": ""}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "fingerprint": {"type": "dict", "required": True},
            "state": {"type": "str", "choices": ["check", "record"], "default": "check"},
            "paths": {"type": "list", "elements": "path", "default": []},
            "exclude": {"type": "list", "elements": "path", "default": []},
            "probes": {"type": "list", "elements": "dict", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "dir": {"type": "path", "default": "/var/lib/airlock/stages"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except (StageStateError, OSError) as exc:
        module.fail_json(msg=f"stage_state {module.params['name']}: {exc}")


if __name__ == "__main__":
    main()
