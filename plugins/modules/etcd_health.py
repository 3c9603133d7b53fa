#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: per-endpoint etcd health, optionally waiting for a healthy cluster."""

from __future__ import annotations

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.etcd import (
    ClusterHealth,
    wait_until,
)
from ansible_collections.airlock.cluster.plugins.module_utils.etcd_run import (
    CONNECTION_ARGUMENT_SPEC,
    Etcdctl,
)

DOCUMENTATION = r"""
---
module: etcd_health
short_description: Report etcd health per endpoint and wait for a healthy cluster
version_added: "0.1.0"
description:
  - For each endpoint, reports whether it answers, whether a quorum read through it
    succeeds (healthy), whether it is the leader or a learner, its revision and its
    raft index and term.
  - The cluster is healthy when every endpoint is healthy and all endpoints agree on
    exactly one leader. A reachable learner counts as healthy (learners refuse client
    reads by design).
  - With O(wait=true), polls until the cluster is healthy and fails at the deadline
    with the problem of every endpoint that was still unhealthy.
  - Runs C(etcdctl endpoint status) and C(etcdctl endpoint health) (found on E(PATH))
    with C(ETCDCTL_API=3) and C(LC_ALL=C), never through a shell, and parses their JSON
    output (C(-w json)) because it is the stable, machine-readable form of etcd's responses,
    including per-endpoint errors, while the table output is meant for people.
  - Never changes anything.
options:
  wait:
    description: Poll until the cluster is healthy; fail after O(timeout) seconds.
    type: bool
    default: false
  timeout:
    description: Deadline in seconds for O(wait=true).
    type: int
    default: 120
  interval:
    description: Seconds between polls when O(wait=true).
    type: int
    default: 2
  min_healthy:
    description:
      - With O(wait=true), the number of healthy endpoints that is enough (for example
        a quorum while one member is down). Default is every endpoint.
    type: int
  endpoints:
    description: Client URLs to check, for example V(https://10.0.0.11:2379).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - airlock.cluster.etcd
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same checks in check mode.
  diff_mode:
    support: none
requirements:
  - etcdctl 3.4 or newer on the target host
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Wait up to two minutes for all three members to be healthy
  airlock.cluster.etcd_health:
    endpoints:
      - https://10.0.0.11:2379
      - https://10.0.0.12:2379
      - https://10.0.0.13:2379
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key
    wait: true
    timeout: 120

- name: Report health without failing
  airlock.cluster.etcd_health:
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key
  register: _health
"""

RETURN = r"""
healthy:
  description: Every endpoint healthy and exactly one leader.
  returned: always
  type: bool
healthy_count:
  description: Number of healthy endpoints.
  returned: always
  type: int
leader:
  description: Hex member ID of the leader, if an endpoint reports being it.
  returned: always
  type: str
leader_endpoint:
  description: Client URL of the leader, if it is among O(endpoints).
  returned: always
  type: str
problems:
  description: One line per unhealthy endpoint or leader disagreement.
  returned: always
  type: list
  elements: str
endpoints:
  description: One entry per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    endpoint:
      description: The client URL.
      type: str
    reachable:
      description: Its status could be read.
      type: bool
    healthy:
      description: A quorum read through it succeeded (or it is a reachable learner).
      type: bool
    error:
      description: Why it is not healthy.
      type: str
    member_id:
      description: Hex member ID.
      type: str
    leader_id:
      description: Hex ID of the leader it follows.
      type: str
    is_leader:
      description: It is the leader.
      type: bool
    is_learner:
      description: It is a non-voting learner.
      type: bool
    revision:
      description: Store revision.
      type: int
    raft_index:
      description: Raft index.
      type: int
    raft_term:
      description: Raft term.
      type: int
    db_size:
      description: Backend database size in bytes.
      type: int
    version:
      description: etcd server version.
      type: str
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        **CONNECTION_ARGUMENT_SPEC,
        "endpoints": {"type": "list", "elements": "str", "required": True},
        "wait": {"type": "bool", "default": False},
        "timeout": {"type": "int", "default": 120},
        "interval": {"type": "int", "default": 2},
        "min_healthy": {"type": "int"},
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def good_enough(health: ClusterHealth, min_healthy: int | None) -> bool:
    if min_healthy is None:
        return health.healthy
    healthy = [s for s in health.endpoints if s.healthy]
    return len(healthy) >= min_healthy and len(health.leaders) == 1


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    ctl = Etcdctl(module)
    started = time.monotonic()
    if params["wait"]:
        done, health = wait_until(
            ctl.cluster_health,
            lambda h: good_enough(h, params["min_healthy"]),
            params["timeout"],
            params["interval"],
        )
    else:
        health = ctl.cluster_health()
        done = True
    result = {"changed": False, **health.to_dict(), "waited": round(time.monotonic() - started, 1)}
    if not done:
        module.fail_json(
            msg=(
                f"etcd cluster not healthy after {params['timeout']}s: "
                + "; ".join(health.problems())
                + ". Check 'journalctl -u airlock-etcd' on the members named above."
            ),
            **result,
        )
    return result


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
