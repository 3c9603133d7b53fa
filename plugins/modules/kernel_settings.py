#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: kernel modules and sysctls a node needs, now and at every boot, in one task."""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command

DOCUMENTATION = r"""
---
module: kernel_settings
short_description: Load kernel modules and set sysctls, now and at boot, as one task
version_added: "0.3.0"
description:
  - Writes O(modules_file) (one module per line, read by systemd-modules-load at boot) and
    O(sysctl_file) (C(key = value), read by systemd-sysctl at boot) whole, loads each module
    of O(modules) that is neither loaded nor built in (with C(modprobe)), and writes each
    sysctl of O(sysctls) whose running value differs to C(/proc/sys).
  - A module counts as there when its probe path exists (O(module_probes), default
    C(/sys/module/NAME)); a built-in br_netfilter has no C(/sys/module) entry, so its probe
    is C(/proc/sys/net/bridge). A container host shares its machine's kernel and cannot load
    modules, but sees what the machine has.
  - Fails, before writing any sysctl, when a setting does not exist in C(/proc/sys) after the
    modules are loaded (for instance C(net.bridge.*) without br_netfilter), naming the
    setting and the module that provides it.
  - One task instead of a loop per module and per sysctl (roles/os_prep); reports changed
    only when a file, a module or a running value changed, so a second run changes nothing.
options:
  modules:
    description: Kernel modules to load now and at boot.
    type: list
    elements: str
    default: []
  modules_file:
    description: The modules-load.d file the module writes (and owns).
    type: path
    required: true
  module_probes:
    description: Per module, a path that exists when it is loaded or built in.
    type: dict
    default: {}
  sysctls:
    description: Kernel settings (name - value) to apply now and at boot.
    type: dict
    default: {}
  sysctl_file:
    description: The sysctl.d file the module writes (and owns).
    type: path
    required: true
  header:
    description: The comment line each file starts with.
    type: str
    default: "Managed by airlock"
attributes:
  check_mode:
    support: full
    details: >-
      Reports what would change and changes nothing. A sysctl that exists only once a module
      is loaded (the module is not loaded yet) is reported as a change.
  diff_mode:
    support: none
requirements:
  - modprobe (only when a module must be loaded)
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Load the modules and set the kernel settings Kubernetes needs
  airlock.cluster.kernel_settings:
    modules: [overlay, br_netfilter]
    modules_file: /etc/modules-load.d/airlock-kubernetes.conf
    module_probes: {br_netfilter: /proc/sys/net/bridge}
    sysctls: {net.ipv4.ip_forward: "1", net.bridge.bridge-nf-call-iptables: "1"}
    sysctl_file: /etc/sysctl.d/90-airlock-kubernetes.conf
"""

RETURN = r"""
files:
  description: The files written (or that would be).
  returned: always
  type: list
  elements: str
loaded:
  description: The modules loaded (or that would be).
  returned: always
  type: list
  elements: str
set:
  description: The sysctls whose running value was changed (or would be), with the new value.
  returned: always
  type: dict
"""

PROC_SYS = "/proc/sys"
# Which module provides a family of settings (for the message when one is missing).
PROVIDERS = {"net.bridge.": "br_netfilter", "net.netfilter.": "nf_conntrack"}


@dataclass
class Outcome:
    files: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    set: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.files or self.loaded or self.set)


def modules_text(header: str, modules: list[str]) -> str:
    return "".join([f"# {header}\n", *(f"{name}\n" for name in modules)])


def sysctl_text(header: str, sysctls: dict[str, str]) -> str:
    return "".join([f"# {header}\n", *(f"{key} = {value}\n" for key, value in sysctls.items())])


def proc_path(key: str, root: str = PROC_SYS) -> str:
    return os.path.join(root, *key.split("."))


def normalized(value: str) -> str:
    """A sysctl's value as the kernel prints it: fields separated by single tabs."""
    return "\t".join(str(value).split())


def provider(key: str) -> str:
    for prefix, name in PROVIDERS.items():
        if key.startswith(prefix):
            return name
    return ""


def owned_as_wanted(path: str) -> bool:
    st = os.stat(path)
    return st.st_uid == 0 and st.st_gid == 0 and stat.S_IMODE(st.st_mode) == 0o644


def write_file(module: AnsibleModule, path: str, text: str) -> bool:
    """Write `path` (root:root 0644) when its content or mode differs; True when it would."""
    try:
        with open(path, encoding="utf-8") as f:
            same = f.read() == text
    except FileNotFoundError:
        same = False
    if same and owned_as_wanted(path):
        return False
    if module.check_mode:
        return True
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        module.fail_json(msg=f"{directory} does not exist on this host: cannot write {path}")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".airlock-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)
    return True


def load_modules(module: AnsibleModule, outcome: Outcome) -> None:
    probes: dict[str, str] = module.params["module_probes"]
    missing = [
        name
        for name in module.params["modules"]
        if not os.path.exists(probes.get(name) or f"/sys/module/{name}")
    ]
    outcome.loaded += missing
    if missing and not module.check_mode:
        modprobe = Command(module, "modprobe", opt_dirs=["/sbin", "/usr/sbin"])
        for name in missing:
            modprobe.run(["--", name], what=f"modprobe {name}")


def running_values(module: AnsibleModule, outcome: Outcome) -> dict[str, str]:
    """The running value of each sysctl; fails when one does not exist on this host."""
    values: dict[str, str] = {}
    for key in module.params["sysctls"]:
        path = proc_path(key)
        if not os.path.exists(path):
            from_module = provider(key)
            if module.check_mode and from_module in outcome.loaded:
                values[key] = ""  # exists once the module is loaded
                continue
            hint = (
                f"load {from_module} (modprobe {from_module}; on a container host, on the "
                "machine itself), then run again"
                if from_module
                else "remove it from the settings or load the module that provides it"
            )
            module.fail_json(msg=f"kernel setting {key} does not exist here ({path}); {hint}")
        with open(path, encoding="utf-8") as f:
            values[key] = f.read().strip()
    return values


def apply_sysctls(module: AnsibleModule, outcome: Outcome, values: dict[str, str]) -> None:
    for key, value in module.params["sysctls"].items():
        want = normalized(value)
        if normalized(values[key]) == want:
            continue
        outcome.set[key] = str(value)
        if module.check_mode:
            continue
        try:
            with open(proc_path(key), "w", encoding="utf-8") as f:
                f.write(f"{value}\n")
        except OSError as err:
            module.fail_json(msg=f"cannot set kernel setting {key} to {value!r}: {err.strerror}")


def run_module(module: AnsibleModule) -> Outcome:
    params = module.params
    params["sysctls"] = {str(k): str(v) for k, v in params["sysctls"].items()}
    outcome = Outcome()
    load_modules(module, outcome)
    values = running_values(module, outcome)  # every check before anything is written
    for path, text in (
        (params["modules_file"], modules_text(params["header"], params["modules"])),
        (params["sysctl_file"], sysctl_text(params["header"], params["sysctls"])),
    ):
        if write_file(module, path, text):
            outcome.files.append(path)
    apply_sysctls(module, outcome, values)
    return outcome


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "modules": {"type": "list", "elements": "str", "default": []},
            "modules_file": {"type": "path", "required": True},
            "module_probes": {"type": "dict", "default": {}},
            "sysctls": {"type": "dict", "default": {}},
            "sysctl_file": {"type": "path", "required": True},
            "header": {"type": "str", "default": "Managed by airlock"},
        },
        supports_check_mode=True,
    )


def main() -> None:
    module = build_module()
    outcome = run_module(module)
    module.exit_json(
        changed=outcome.changed, files=outcome.files, loaded=outcome.loaded, set=outcome.set
    )


if __name__ == "__main__":
    main()
