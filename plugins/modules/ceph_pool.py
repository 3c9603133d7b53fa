#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: ensure a replicated Ceph pool (size, autoscaling, application, rbd init)."""

from __future__ import annotations

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.ceph import (
    AUTOSCALE_MODES,
    Pool,
    PoolWish,
    create_args,
    describe_pool,
    parse_pools,
    planned_pool,
    pool_plan,
)
from ansible_collections.airlock.cluster.plugins.module_utils.ceph_run import (
    CONNECTION_ARGUMENT_SPEC,
    Ceph,
    CephError,
    fail_ceph,
)

DOCUMENTATION = r"""
---
module: ceph_pool
short_description: Ensure a replicated Ceph pool with its size, autoscaling and application
version_added: "0.1.0"
description:
  - Creates a replicated pool (C(ceph osd pool create)) or deletes one, and brings an
    existing pool's O(size), O(min_size) and O(pg_autoscale_mode) to the values given
    (C(ceph osd pool set)), enables O(application) on it and, with O(rbd_init=true),
    prepares it for RBD images once (C(rbd pool init)).
  - Properties left unset are left as Ceph has them. O(pg_num) only applies when the
    pool is created; afterwards the autoscaler (or an operator) owns it.
  - Deleting needs O(allow_delete=true) and the monitors' C(mon_allow_pool_delete). When
    that is off, the module turns it on (C(ceph config set mon mon_allow_pool_delete
    true)) for the deletion only and turns it off again afterwards.
  - Reads the cluster with C(ceph osd pool ls detail --format json); nothing is parsed
    from text meant for people.
options:
  name:
    description: Name of the pool.
    type: str
    required: true
  state:
    description:
      - V(present) creates the pool if it does not exist and sets what differs.
      - V(absent) deletes the pool and B(every object in it); needs O(allow_delete=true).
    type: str
    choices: [present, absent]
    default: present
  allow_delete:
    description: Confirms that O(state=absent) may delete the pool and its data.
    type: bool
    default: false
  pg_autoscale_mode:
    description:
      - The pool's placement-group autoscaler mode.
      - YAML reads a bare C(on) or C(off) as a boolean; V(true) and V(false) are therefore
        taken as V(on) and V(off).
    type: raw
    choices: ["on", "warn", "off"]
    default: "on"
  pg_num:
    description:
      - Placement groups to create the pool with. Only used at creation; when unset,
        Ceph chooses (its C(osd_pool_default_pg_num), 32 unless configured).
    type: int
  size:
    description:
      - Replicas of each object. Set when it differs from the pool's.
      - V(1) needs the monitors' C(mon_allow_pool_size_one); the module then confirms
        Ceph's C(--yes-i-really-mean-it) itself, since the value was asked for.
    type: int
  min_size:
    description: Replicas that must be up for I/O. Set when it differs from the pool's.
    type: int
  application:
    description:
      - Application to enable on the pool, for example V(rbd) or V(cephfs), when the pool
        does not have it yet. Other applications on the pool are left alone.
    type: str
  rbd_init:
    description:
      - Run C(rbd pool init) (which also enables the C(rbd) application) when the pool
        has no C(rbd) application yet, that is once, after it was created.
    type: bool
    default: false
extends_documentation_fragment:
  - airlock.cluster.ceph
attributes:
  check_mode:
    support: full
    details: Reports what would be created, set, initialised or deleted without doing it.
  diff_mode:
    support: full
    details: Shows size, min_size, pg_autoscale_mode and applications before and after.
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: A pool for Kubernetes volumes (ceph-csi RBD)
  airlock.cluster.ceph_pool:
    name: kubernetes
    application: rbd
    rbd_init: true
    size: 3
    min_size: 2

- name: Same, on a cluster named lab with its own conf and admin keyring
  airlock.cluster.ceph_pool:
    name: kubernetes
    application: rbd
    rbd_init: true
    cluster: lab
    conf: /etc/ceph/lab.conf
    keyring: /etc/ceph/lab.client.admin.keyring

- name: Delete a pool and everything in it
  airlock.cluster.ceph_pool:
    name: scratch
    state: absent
    allow_delete: true
"""

RETURN = r"""
pool:
  description: The pool after the run (as it would be, in check mode); null when absent.
  returned: always
  type: dict
  sample: {"name": "kubernetes", "size": 3, "min_size": 2, "pg_autoscale_mode": "on",
           "applications": ["rbd"], "pg_num": 32}
actions:
  description: What was done (would be done, in check mode), one line each, in order.
  returned: always
  type: list
  elements: str
  sample: ["created", "ceph osd pool set kubernetes size 3", "rbd pool init kubernetes"]
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "allow_delete": {"type": "bool", "default": False},
        # raw, not str: YAML turns a bare on/off into a boolean (see autoscale_mode()).
        "pg_autoscale_mode": {"type": "raw", "default": "on"},
        "pg_num": {"type": "int"},
        "size": {"type": "int"},
        "min_size": {"type": "int"},
        "application": {"type": "str"},
        "rbd_init": {"type": "bool", "default": False},
        **CONNECTION_ARGUMENT_SPEC,
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def autoscale_mode(value: Any) -> str | None:
    """The autoscale mode ``value`` means (YAML's bare on/off arrive as booleans)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value if value in AUTOSCALE_MODES else None


def param_problem(params: dict[str, Any]) -> str | None:
    """Why the parameters cannot work, before the cluster is asked, or None."""
    if autoscale_mode(params["pg_autoscale_mode"]) is None:
        return (
            f"pg_autoscale_mode {params['pg_autoscale_mode']!r}: choose one of "
            f"{', '.join(AUTOSCALE_MODES)}"
        )
    if not params["name"] or any(c.isspace() for c in params["name"]):
        return f"name {params['name']!r}: give a pool name without white space"
    for option in ("pg_num", "size", "min_size"):
        if params[option] is not None and params[option] < 1:
            return f"{option} {params[option]}: give a positive number"
    size, min_size = params["size"], params["min_size"]
    if size is not None and min_size is not None and min_size > size:
        return f"min_size {min_size} is larger than size {size}"
    return None


def read_pool(ceph: Ceph, name: str) -> Pool | None:
    return parse_pools(ceph.call(["osd", "pool", "ls", "detail"])).get(name)


def apply_step(ceph: Ceph, step: list[str]) -> None:
    program, args = step[0], step[1:]
    if program == "rbd":
        ceph.rbd(args)
        return
    if args[:3] == ["osd", "pool", "set"] and args[4:] == ["size", "1"]:
        args = [*args, "--yes-i-really-mean-it"]
    ceph.text(args)


def ensure_present(module: AnsibleModule, ceph: Ceph, before: Pool | None) -> dict[str, Any]:
    params = module.params
    wish = PoolWish(
        name=params["name"],
        pg_autoscale_mode=autoscale_mode(params["pg_autoscale_mode"]) or "on",
        size=params["size"],
        min_size=params["min_size"],
        application=params["application"],
        rbd_init=params["rbd_init"],
    )
    actions: list[str] = []
    base = before
    if base is None:
        actions.append("created")
        if module.check_mode:
            base = Pool(
                name=wish.name, pg_autoscale_mode=wish.pg_autoscale_mode, pg_num=params["pg_num"]
            )
        else:
            ceph.text(create_args(wish, params["pg_num"]))
            base = read_pool(ceph, wish.name) or Pool(name=wish.name)
    plan = pool_plan(base, wish)
    actions.extend(" ".join(step) for step in plan)
    if module.check_mode:
        after: Pool | None = planned_pool(base, plan)
    else:
        for step in plan:
            apply_step(ceph, step)
        after = read_pool(ceph, wish.name) if plan else base
    return {
        "changed": bool(actions),
        "actions": actions,
        "pool": after.to_dict() if after else None,
        "diff": {"before": describe_pool(before), "after": describe_pool(after)},
    }


#: How long a just-enabled mon_allow_pool_delete may take to reach the monitors.
DELETE_GRACE = 10.0


def delete_pool(module: AnsibleModule, ceph: Ceph, name: str) -> None:
    """Delete ``name``, turning mon_allow_pool_delete on for this only if it is off."""
    option = ["mon", "mon_allow_pool_delete"]
    try:
        allowed = str(ceph.text(["config", "get", *option])).strip() == "true"
        if not allowed:
            ceph.text(["config", "set", *option, "true"])
    except CephError as exc:
        module.fail_json(
            msg=(
                f"deleting pool {name} needs the monitors' mon_allow_pool_delete and turning "
                f"it on failed: {exc.message}"
            ),
            cmd=exc.command,
        )
    try:
        deadline = time.monotonic() + DELETE_GRACE
        while True:
            try:
                ceph.text(["osd", "pool", "delete", name, name, "--yes-i-really-really-mean-it"])
                return
            except CephError as exc:
                refused = exc.errno == 1 and "mon_allow_pool_delete" in exc.message
                if not refused:
                    raise
                if time.monotonic() > deadline:
                    module.fail_json(
                        msg=(
                            f"the monitors refuse to delete pool {name} although "
                            "mon_allow_pool_delete was set to true in their config database: a "
                            "ceph.conf on the monitor hosts probably sets it to false (a conf "
                            "file wins over `ceph config set`); remove that line there"
                        ),
                        cmd=exc.command,
                    )
                time.sleep(0.5)
    finally:
        if not allowed:
            ceph.text(["config", "set", *option, "false"])


def ensure_absent(module: AnsibleModule, ceph: Ceph, before: Pool | None) -> dict[str, Any]:
    name = module.params["name"]
    if before is None:
        return {"changed": False, "actions": [], "pool": None}
    if not module.check_mode:
        delete_pool(module, ceph, name)
    return {
        "changed": True,
        "actions": ["deleted"],
        "pool": None,
        "diff": {"before": describe_pool(before), "after": ""},
    }


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    problem = param_problem(params)
    if problem:
        module.fail_json(msg=problem)
    if params["state"] == "absent" and not params["allow_delete"]:
        module.fail_json(
            msg=(
                f"state=absent deletes pool {params['name']} and every object in it: "
                "set allow_delete: true to allow that"
            )
        )
    ceph = Ceph(module)
    try:
        before = read_pool(ceph, params["name"])
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
