#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: remove the iptables chains and rules Kubernetes and its network left."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command
from ansible_collections.airlock.cluster.plugins.module_utils.iptables import strip_chains

DOCUMENTATION = r"""
---
module: iptables_cleanup
short_description: Remove the iptables chains (and rules into them) whose names have given prefixes
version_added: "0.2.0"
description:
  - Reads the rules with C(iptables-save) (and C(ip6tables-save)), drops every chain whose
    name starts with one of O(prefixes) and every rule in such a chain or jumping to one,
    and loads the result with C(iptables-restore) in one transaction per family. The
    host's own chains and rules are kept as they were.
  - For a node being reset, kube-proxy's C(KUBE-) chains, flannel's C(FLANNEL-) and the CNI
    plugins' C(CNI-) chains, which C(kubeadm reset) leaves behind.
  - Reports a change only when something was removed; a second run changes nothing.
options:
  prefixes:
    description: Chain name prefixes to remove.
    type: list
    elements: str
    default: [KUBE-, FLANNEL-, CNI-]
  families:
    description: Which tables to clean; a family whose tools are missing is skipped.
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4, ipv6]
attributes:
  check_mode:
    support: full
    details: Reports what would be removed and removes nothing.
  diff_mode:
    support: none
requirements:
  - iptables-save and iptables-restore (ip6tables-* for ipv6)
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Remove kube-proxy's, flannel's and the CNI plugins' chains
  airlock.cluster.iptables_cleanup:
    prefixes: [KUBE-, FLANNEL-, CNI-]
"""

RETURN = r"""
chains:
  description: Chains removed (or that would be), as C(family/table/CHAIN).
  returned: always
  type: list
  elements: str
rules:
  description: Number of rules removed (or that would be).
  returned: always
  type: int
"""

_TOOLS = {"ipv4": "iptables", "ipv6": "ip6tables"}


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "prefixes": {
                "type": "list",
                "elements": "str",
                "default": ["KUBE-", "FLANNEL-", "CNI-"],
            },
            "families": {
                "type": "list",
                "elements": "str",
                "choices": ["ipv4", "ipv6"],
                "default": ["ipv4", "ipv6"],
            },
        },
        supports_check_mode=True,
    )


def run_module(module: AnsibleModule) -> dict[str, Any]:
    prefixes = tuple(module.params["prefixes"])
    chains: list[str] = []
    rules = 0
    for family in module.params["families"]:
        tool = _TOOLS[family]
        if module.get_bin_path(f"{tool}-save") is None:
            continue
        save = Command(module, f"{tool}-save")
        _rc, dump, _err = save.run([], what=f"{tool}-save")
        stripped = strip_chains(dump, prefixes)
        chains += [f"{family}/{chain}" for chain in stripped.chains]
        rules += stripped.rules
        if (stripped.chains or stripped.rules) and not module.check_mode:
            restore = Command(module, f"{tool}-restore")
            rc, _out, err = module.run_command(
                restore.argv([]), data=stripped.text, environ_update=restore.env, check_rc=False
            )
            if rc != 0:
                module.fail_json(
                    msg=f"{tool}-restore refused the cleaned rules (nothing was changed in "
                    f"{family}): {err.strip()[-500:]}"
                )
    return {"changed": bool(chains or rules), "chains": chains, "rules": rules}


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
