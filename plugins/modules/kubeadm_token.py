#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: a kubeadm bootstrap token for joins, reused while it stays valid."""

from __future__ import annotations

import datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm import (
    TOKEN_RE,
    KubeadmConfigError,
    parse_duration,
    parse_token_list,
    reusable_token,
)
from ansible_collections.airlock.cluster.plugins.module_utils.kubeadm_run import Kubeadm

DOCUMENTATION = r"""
---
module: kubeadm_token
short_description: Create, reuse, list or delete kubeadm bootstrap tokens
version_added: "0.1.0"
description:
  - V(present) returns a bootstrap token with O(description) that stays valid at least
    O(min_valid); it reuses the longest-lived such token and creates one with O(ttl)
    only when none qualifies, so running it again changes nothing while joins proceed.
  - V(absent) deletes every token with O(description) (after joins, to leave none behind).
  - V(list) only reads; every token is returned without its secret part.
  - Reads C(kubeadm token list -o json) (one JSON object per token); never uses a shell.
attributes:
  check_mode:
    support: full
    details: Reports whether a token would be created or deleted; returns no new token.
  diff_mode:
    support: none
options:
  state:
    description: What to do.
    type: str
    choices: [present, absent, list]
    default: present
  description:
    description: Description that marks airlock's tokens.
    type: str
    default: airlock join
  ttl:
    description: Lifetime of a new token (Go duration, e.g. V(1h), V(30m)).
    type: str
    default: 1h
  min_valid:
    description: A token is reused only if it stays valid at least this long.
    type: str
    default: 15m
  kubeconfig:
    description: Admin kubeconfig used to reach the cluster.
    type: path
    default: /etc/kubernetes/admin.conf
  kubeadm:
    description: The kubeadm program.
    type: str
    default: kubeadm
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Get a join token
  airlock.cluster.kubeadm_token:
    ttl: 1h
  register: join_token
  no_log: true

- name: Remove airlock's join tokens
  airlock.cluster.kubeadm_token:
    state: absent
"""

RETURN = r"""
token:
  description: The bootstrap token (C(id.secret)); treat it as a secret.
  returned: with V(present), except in check mode when one would be created
  type: str
expires:
  description: When the returned token expires (RFC 3339), empty if never.
  returned: with V(present) when a token is returned
  type: str
created:
  description: Whether a new token was created.
  returned: with V(present)
  type: bool
deleted:
  description: IDs of the deleted tokens.
  returned: with V(absent)
  type: list
  elements: str
tokens:
  description: Every token's id, description, expiry and usages (no secrets).
  returned: with V(list)
  type: list
  elements: dict
"""


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "choices": ["present", "absent", "list"],
                "default": "present",
            },
            "description": {"type": "str", "default": "airlock join"},
            "ttl": {"type": "str", "default": "1h"},
            "min_valid": {"type": "str", "default": "15m"},
            "kubeconfig": {"type": "path", "default": "/etc/kubernetes/admin.conf"},
            "kubeadm": {"type": "str", "default": "kubeadm"},
        },
        supports_check_mode=True,
    )


def list_tokens(module: AnsibleModule, kubeadm: Kubeadm) -> list[dict[str, Any]]:
    _, out, _ = kubeadm.run(
        ["token", "list", "-o", "json", "--kubeconfig", module.params["kubeconfig"]],
        what="kubeadm token list",
        hint="is the control plane up? (kubectl --kubeconfig ... get --raw /readyz)",
    )
    try:
        return parse_token_list(out)
    except ValueError as exc:
        module.fail_json(msg=f"kubeadm token list printed something that is not JSON: {exc}")
        raise


def token_id(token: dict[str, Any]) -> str:
    return str(token.get("token", "")).split(".", 1)[0]


def present(module: AnsibleModule, kubeadm: Kubeadm) -> dict[str, Any]:
    params = module.params
    try:
        ttl_s = parse_duration(params["ttl"])
        min_valid_s = parse_duration(params["min_valid"])
    except KubeadmConfigError as exc:
        module.fail_json(msg=str(exc))
        raise
    if ttl_s <= min_valid_s:
        module.fail_json(
            msg=f"ttl {params['ttl']} must be longer than min_valid {params['min_valid']}"
        )
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - hosts may run Python 3.10
    found = reusable_token(list_tokens(module, kubeadm), params["description"], min_valid_s, now)
    if found:
        return {
            "changed": False,
            "created": False,
            "token": found["token"],
            "expires": found.get("expires", ""),
        }
    if module.check_mode:
        return {"changed": True, "created": True}
    _, out, _ = kubeadm.run(
        [
            "token",
            "create",
            "--ttl",
            params["ttl"],
            "--description",
            params["description"],
            "--kubeconfig",
            params["kubeconfig"],
        ],
        what="kubeadm token create",
    )
    token = out.strip().splitlines()[-1].strip() if out.strip() else ""
    if not TOKEN_RE.match(token):
        module.fail_json(msg="kubeadm token create did not print a token")
    expires = (now + datetime.timedelta(seconds=ttl_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"changed": True, "created": True, "token": token, "expires": expires}


def absent(module: AnsibleModule, kubeadm: Kubeadm) -> dict[str, Any]:
    doomed = [
        token_id(t)
        for t in list_tokens(module, kubeadm)
        if t.get("description") == module.params["description"]
    ]
    if doomed and not module.check_mode:
        kubeadm.run(
            ["token", "delete", *doomed, "--kubeconfig", module.params["kubeconfig"]],
            what="kubeadm token delete",
        )
    return {"changed": bool(doomed), "deleted": doomed}


def listed(module: AnsibleModule, kubeadm: Kubeadm) -> dict[str, Any]:
    tokens = [
        {
            "id": token_id(t),
            "description": t.get("description", ""),
            "expires": t.get("expires", ""),
            "usages": t.get("usages", []),
        }
        for t in list_tokens(module, kubeadm)
    ]
    return {"changed": False, "tokens": tokens}


def run_module(module: AnsibleModule) -> dict[str, Any]:
    kubeadm = Kubeadm(module, module.params["kubeadm"])
    actions = {"present": present, "absent": absent, "list": listed}
    return actions[module.params["state"]](module, kubeadm)


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
