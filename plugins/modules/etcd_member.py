#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: list, add (as learner, then promote) and remove etcd members."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.etcd import (
    Member,
    find_member,
    initial_cluster,
    removal_blocker,
    wait_until,
)
from ansible_collections.airlock.cluster.plugins.module_utils.etcd_run import (
    CONNECTION_ARGUMENT_SPEC,
    Etcdctl,
    EtcdctlError,
    fail_etcdctl,
)

DOCUMENTATION = r"""
---
module: etcd_member
short_description: List, add and remove etcd cluster members
version_added: "0.1.0"
description:
  - Lists the members of an etcd v3 cluster, adds a member (by default as a learner
    that is promoted to a voting member once it has caught up with the leader) and
    removes a member.
  - Members are identified by their peer URLs, so adding the same member twice changes
    nothing. A member that exists but is still a learner is promoted.
  - Removal refuses to run when it would leave the cluster without a healthy quorum, or
    when the member is the only healthy one, unless O(force=true).
  - Runs C(etcdctl) (found on E(PATH)) with C(ETCDCTL_API=3) and C(LC_ALL=C), never
    through a shell, and parses its JSON output (C(-w json)). JSON is the stable,
    machine-readable form of etcd's gRPC responses; the default table output is meant
    for people and changes between releases.
options:
  state:
    description:
      - V(present) adds the member if no member has one of its O(peer_urls), then
        promotes it if it is a learner and O(promote=true).
      - V(absent) removes the member matched by O(peer_urls) or O(name).
      - V(list) only reports RV(members).
    type: str
    choices: [present, absent, list]
    default: present
  name:
    description:
      - Member name (etcd's C(--name)). Required to add a member.
      - Used to find the member to remove when O(peer_urls) is not given.
    type: str
  peer_urls:
    description: Peer URLs of the member, for example V(https://10.0.0.11:2380).
    type: list
    elements: str
    default: []
  learner:
    description: Add a new member as a non-voting learner (recommended; etcd 3.4+).
    type: bool
    default: true
  promote:
    description:
      - Promote the member to a voting member if it is a learner, waiting up to
        O(wait_timeout) seconds for it to catch up with the leader.
      - Set V(false) when adding a member whose etcd is not running yet.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to keep retrying what etcd refuses for now and accepts later - a
        promotion while the learner catches up, or an addition or removal in the first
        seconds after a member (re)started (etcd answers "unhealthy cluster" then).
    type: int
    default: 120
  force:
    description: Remove the member even if the cluster would lose its healthy quorum.
    type: bool
    default: false
  endpoints:
    description: Client URLs of current members, for example V(https://10.0.0.11:2379).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - airlock.cluster.etcd
attributes:
  check_mode:
    support: full
    details: Reports the member that would be added, promoted or removed without doing it.
  diff_mode:
    support: full
    details: Shows the member list before and after.
requirements:
  - etcdctl 3.4 or newer on the target host
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Add m4 as a learner; its etcd is started afterwards
  airlock.cluster.etcd_member:
    name: m4
    peer_urls: ["https://10.0.0.14:2380"]
    promote: false
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key
  register: _added

- name: Promote m4 once it has caught up
  airlock.cluster.etcd_member:
    name: m4
    peer_urls: ["https://10.0.0.14:2380"]
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key

- name: Remove m4 (refused if the cluster would lose quorum)
  airlock.cluster.etcd_member:
    name: m4
    state: absent
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key

- name: List members
  airlock.cluster.etcd_member:
    state: list
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key
  register: _members
"""

RETURN = r"""
member:
  description: The member added, promoted, found or removed (null if there was none).
  returned: when state is present or absent
  type: dict
  sample: {"id": "8e9e05c52164694d", "name": "m4", "peer_urls": ["https://10.0.0.14:2380"],
           "client_urls": [], "is_learner": true}
members:
  description: Members after the change (before it in check mode), sorted by name.
  returned: always
  type: list
  elements: dict
actions:
  description: What was done, in order (V(added), V(promoted), V(removed)).
  returned: always
  type: list
  elements: str
initial_cluster:
  description:
    - The C(--initial-cluster) value the member must start with to join
      (name=peer URL of every member, including itself).
  returned: when state is present
  type: str
  sample: m1=https://10.0.0.11:2380,m4=https://10.0.0.14:2380
"""


# etcd's answers while a learner is still catching up or an election is running.
_NOT_YET_PROMOTABLE = ("in sync with leader", "not ready", "leader changed", "no leader")
# etcd refuses membership changes until members have been connected for a few seconds.
_NOT_YET_RECONFIGURABLE = ("unhealthy cluster", "leader changed", "no leader")


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "state": {"type": "str", "choices": ["present", "absent", "list"], "default": "present"},
        "name": {"type": "str"},
        "peer_urls": {"type": "list", "elements": "str", "default": []},
        "learner": {"type": "bool", "default": True},
        "promote": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 120},
        "force": {"type": "bool", "default": False},
        **CONNECTION_ARGUMENT_SPEC,
    }
    return AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        required_if=[("state", "absent", ("name", "peer_urls"), True)],
    )


def describe(members: list[Member]) -> str:
    lines = [
        f"{m.name or '(not started)'} {','.join(m.peer_urls)}{' learner' if m.is_learner else ''}"
        for m in members
    ]
    return "\n".join(lines) + "\n"


def retrying(
    module: AnsibleModule, action: str, step: Callable[[], Any], hints: tuple[str, ...]
) -> None:
    """Run ``step`` until it succeeds, retrying only errors that contain one of ``hints``."""
    last: list[str] = []

    def attempt() -> bool:
        try:
            step()
        except EtcdctlError as exc:
            if not any(hint in exc.message for hint in hints):
                fail_etcdctl(module, action, exc)
            last[:] = [exc.message]
            return False
        return True

    timeout = module.params["wait_timeout"]
    done, _ = wait_until(attempt, bool, timeout, interval=2.0)
    if not done:
        module.fail_json(
            msg=(
                f"{action} did not succeed within {timeout}s: "
                f"{last[0] if last else 'unknown'}; check that every member's etcd is "
                "running and can reach the other members' peer URLs"
            )
        )


def promote(module: AnsibleModule, ctl: Etcdctl, member: Member) -> None:
    """Promote ``member``, retrying while etcd says the learner has not caught up."""
    retrying(
        module,
        f"promoting learner {member.name or member.hex_id}",
        lambda: ctl.member_promote(member),
        _NOT_YET_PROMOTABLE,
    )


def ensure_present(module: AnsibleModule, ctl: Etcdctl, members: list[Member]) -> dict[str, Any]:
    params = module.params
    name, peer_urls = params["name"], params["peer_urls"]
    if not peer_urls or not name:
        module.fail_json(msg="state=present needs both name and peer_urls")
    actions: list[str] = []
    member = find_member(members, peer_urls)
    by_name = find_member(members, name=name)
    if member is None and by_name is not None and by_name.started:
        module.fail_json(
            msg=(
                f"a member named {name} already exists with peer URLs {by_name.peer_urls}, "
                f"not {peer_urls}; remove it first (etcd-remove-member.yml -e member={name})"
            )
        )
    if member is None:
        actions.append("added")
        if module.check_mode:
            member = Member(0, "", list(peer_urls), [], params["learner"])
        else:
            added: list[Member] = []
            retrying(
                module,
                f"adding member {name}",
                lambda: added.append(ctl.member_add(name, peer_urls, params["learner"])[0]),
                _NOT_YET_RECONFIGURABLE,
            )
            member = added[0]
    if member.is_learner and params["promote"]:
        actions.append("promoted")
        if not module.check_mode:
            promote(module, ctl, member)
    after = members
    if actions and not module.check_mode:
        after = ctl.member_list()
        member = find_member(after, peer_urls) or member
    elif module.check_mode and "added" in actions:
        after = [*members, member]
    names = {member.id: name}
    return {
        "changed": bool(actions),
        "actions": actions,
        "member": member.to_dict() | ({"name": name} if not member.name else {}),
        "members": [m.to_dict() for m in after],
        "initial_cluster": initial_cluster(after, names),
        "diff": {"before": describe(members), "after": describe(after)},
    }


def healthy_member_ids(ctl: Etcdctl, members: list[Member]) -> set[int]:
    urls = [url for m in members for url in m.client_urls]
    if not urls:
        return set()
    health = ctl.cluster_health(urls)
    return {int(s.member_id, 16) for s in health.endpoints if s.healthy and s.member_id}


def ensure_absent(module: AnsibleModule, ctl: Etcdctl, members: list[Member]) -> dict[str, Any]:
    params = module.params
    member = find_member(members, params["peer_urls"], params["name"])
    if member is None:
        return {
            "changed": False,
            "actions": [],
            "member": None,
            "members": [m.to_dict() for m in members],
        }
    blocker = removal_blocker(members, healthy_member_ids(ctl, members), member)
    if blocker and not params["force"]:
        module.fail_json(
            msg=f"refusing to remove: {blocker}", members=[m.to_dict() for m in members]
        )
    if blocker:
        module.warn(f"forced removal: {blocker}")
    after = [m for m in members if m.id != member.id]
    if not module.check_mode:
        retrying(
            module,
            f"removing member {member.name or member.hex_id}",
            lambda: ctl.member_remove(member),
            _NOT_YET_RECONFIGURABLE,
        )
        after = ctl.member_list()
    return {
        "changed": True,
        "actions": ["removed"],
        "member": member.to_dict(),
        "members": [m.to_dict() for m in after],
        "diff": {"before": describe(members), "after": describe(after)},
    }


def run_module(module: AnsibleModule) -> dict[str, Any]:
    ctl = Etcdctl(module)
    try:
        members = ctl.member_list()
    except EtcdctlError as exc:
        fail_etcdctl(module, "listing etcd members", exc)
    state = module.params["state"]
    if state == "list":
        return {"changed": False, "actions": [], "members": [m.to_dict() for m in members]}
    if state == "absent":
        return ensure_absent(module, ctl, members)
    return ensure_present(module, ctl, members)


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
