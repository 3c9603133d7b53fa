#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: ensure a Ceph auth entity with exactly the given caps, and its keyring file."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.ceph import (
    Entity,
    caps_args,
    caps_problem,
    describe_caps,
    entity_name_problem,
    keyring_text,
    normalize_caps,
    parse_auth_get,
)
from ansible_collections.airlock.cluster.plugins.module_utils.ceph_run import (
    CONNECTION_ARGUMENT_SPEC,
    Ceph,
    CephError,
    fail_ceph,
)

DOCUMENTATION = r"""
---
module: ceph_auth
short_description: Ensure a Ceph user (cephx entity) with exactly the given caps
version_added: "0.1.0"
description:
  - Creates a cephx entity such as C(client.kubernetes) (C(ceph auth get-or-create)),
    or deletes one (C(ceph auth del)).
  - B(Caps are set exactly.) An existing entity whose caps differ in any way (a
    different cap, an extra daemon, a missing one) gets C(ceph auth caps) with exactly
    O(caps); a daemon not in O(caps) loses its cap.
  - B(The key is never regenerated.) An existing entity keeps its key whatever else
    changes; deleting the entity (O(state=absent)) is the only way to get a new one.
  - With O(keyring_dest) the entity's keyring file is written there (mode 0600, owner
    and group as given, atomically) when its content or mode differ.
  - B(The key is a secret.) It is returned as RV(key) so that callers can hand it on
    (a Kubernetes Secret for ceph-csi, for example); set C(no_log) on the task. The
    module never puts the key in its message or its diff.
options:
  name:
    description: The entity, C(TYPE.ID), for example V(client.kubernetes).
    type: str
    required: true
  state:
    description:
      - V(present) creates the entity if it does not exist and sets its caps.
      - V(absent) deletes it (and O(keyring_dest), when given).
    type: str
    choices: [present, absent]
    default: present
  caps:
    description:
      - "The entity's caps, daemon (V(mon), V(mgr), V(osd), V(mds)) to cap string, for
        example C({mon: 'profile rbd', osd: 'profile rbd pool=kubernetes',
        mgr: 'profile rbd pool=kubernetes'}) for ceph-csi's RBD driver."
      - Set exactly. When omitted, an existing entity's caps are left alone and a new
        one is created without caps.
    type: dict
  keyring_dest:
    description:
      - Path of a keyring file with the entity's key, written with mode 0600. Its
        directory must exist.
    type: path
  keyring_owner:
    description: Owner of O(keyring_dest).
    type: str
  keyring_group:
    description: Group of O(keyring_dest).
    type: str
extends_documentation_fragment:
  - airlock.cluster.ceph
attributes:
  check_mode:
    support: full
    details: Reports what would be created, changed, written or deleted without doing it.
  diff_mode:
    support: full
    details: Shows the caps before and after (never the key).
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: The user ceph-csi's RBD driver connects as
  airlock.cluster.ceph_auth:
    name: client.kubernetes
    caps:
      mon: profile rbd
      osd: profile rbd pool=kubernetes
      mgr: profile rbd pool=kubernetes
    keyring_dest: /etc/ceph/ceph.client.kubernetes.keyring
  no_log: true
  register: _kubernetes_user

- name: Remove a user
  airlock.cluster.ceph_auth:
    name: client.old
    state: absent
"""

RETURN = r"""
key:
  description:
    - The entity's secret key (null when absent, or when check mode would create it).
    - A secret. Set C(no_log) on the task.
  returned: always
  type: str
caps:
  description: The entity's caps after the run (as they would be, in check mode).
  returned: always
  type: dict
  sample: {"mon": "profile rbd", "osd": "profile rbd pool=kubernetes"}
actions:
  description: What was done (would be done, in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["created", "wrote keyring_dest"]
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "caps": {"type": "dict"},
        "keyring_dest": {"type": "path"},
        "keyring_owner": {"type": "str"},
        "keyring_group": {"type": "str"},
        **CONNECTION_ARGUMENT_SPEC,
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def read_entity(ceph: Ceph, name: str) -> Entity | None:
    try:
        return parse_auth_get(ceph.call(["auth", "get", name]), name)
    except CephError as exc:
        if exc.errno == 2 and "failed to find" in exc.message:
            return None
        raise


def create_entity(ceph: Ceph, name: str, caps: dict[str, str]) -> Entity:
    """Create ``name`` with ``caps``; the entity as Ceph then has it (key and caps)."""
    ceph.text(["auth", "get-or-create", name, *caps_args(caps)])
    created = read_entity(ceph, name)
    if created is None:
        raise CephError(
            f"ceph auth get {name}", f"ceph auth get {name}: not found after creating it"
        )
    return created


class KeyringFile:
    """The keyring file at ``path``: compared, written atomically 0600, removed."""

    def __init__(self, module: AnsibleModule, path: str) -> None:
        self.module = module
        self.path = path

    def current(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def ensure(self, text: str) -> bool:
        """Write ``text`` (or in check mode say so) if it differs; True if anything changed."""
        changed = self.current() != text
        if changed and not self.module.check_mode:
            self._write(text)
        if not os.path.exists(self.path):
            return changed
        params = self.module.params
        changed = self.module.set_mode_if_different(self.path, "0600", changed)
        changed = self.module.set_owner_if_different(self.path, params["keyring_owner"], changed)
        return self.module.set_group_if_different(self.path, params["keyring_group"], changed)

    def _write(self, text: str) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-ceph-keyring-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            # os.replace, not module.atomic_move: atomic_move gives a new file the umask's
            # mode (0644) until set_mode_if_different narrows it, and this file
            # holds a key. The temporary file is 0600 from its creation.
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def remove(self) -> bool:
        if not os.path.exists(self.path):
            return False
        if not self.module.check_mode:
            os.unlink(self.path)
        return True


def ensure_present(module: AnsibleModule, ceph: Ceph, before: Entity | None) -> dict[str, Any]:
    params = module.params
    name = params["name"]
    wanted = None if params["caps"] is None else normalize_caps(params["caps"])
    actions: list[str] = []
    after = before
    if before is None:
        actions.append("created")
        if not module.check_mode:
            after = create_entity(ceph, name, wanted or {})
    elif wanted is not None and wanted != before.caps:
        actions.append("set caps")
        if not module.check_mode:
            ceph.text(["auth", "caps", name, *caps_args(wanted)])
            after = read_entity(ceph, name)
    key = after.key if after else None
    if params["keyring_dest"]:
        keyring = KeyringFile(module, params["keyring_dest"])
        try:
            if key is None or keyring.ensure(keyring_text(name, key)):
                actions.append("wrote keyring_dest")
        except OSError as exc:
            module.fail_json(
                msg=f"writing keyring_dest {keyring.path} failed: {exc.strerror}",
                actions=actions,
            )
    if module.check_mode:
        caps_after = wanted if wanted is not None else (before.caps if before else {})
    else:
        caps_after = after.caps if after else {}
    return {
        "changed": bool(actions),
        "actions": actions,
        "key": key,
        "caps": caps_after,
        "diff": {
            "before": describe_caps(before.caps if before else None),
            "after": describe_caps(caps_after),
        },
    }


def ensure_absent(module: AnsibleModule, ceph: Ceph, before: Entity | None) -> dict[str, Any]:
    params = module.params
    actions: list[str] = []
    if before is not None:
        actions.append("deleted")
        if not module.check_mode:
            ceph.text(["auth", "del", params["name"]])
    if params["keyring_dest"] and KeyringFile(module, params["keyring_dest"]).remove():
        actions.append("removed keyring_dest")
    return {
        "changed": bool(actions),
        "actions": actions,
        "key": None,
        "caps": None,
        "diff": {"before": describe_caps(before.caps if before else None), "after": ""},
    }


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    problem = entity_name_problem(params["name"])
    if problem is None and params["caps"] is not None:
        problem = caps_problem(params["caps"])
    if problem:
        module.fail_json(msg=problem)
    ceph = Ceph(module)
    try:
        before = read_entity(ceph, params["name"])
        if params["state"] == "absent":
            return ensure_absent(module, ceph, before)
        return ensure_present(module, ceph, before)
    except CephError as exc:
        fail_ceph(module, exc)
        raise  # fail_json does not return; this only tells type checkers so


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
