#!/usr/bin/python
"""Ansible module airlock.cluster.host_preflight: is this host fit for airlock?"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_preflight
short_description: Check that a host is fit for an airlock install, changing nothing
description:
  - Reads the host's OS release, swap, clock, listening sockets, free disk and the network
    of the interface that holds its cluster address, and returns every problem found as
    one line that says what is wrong and how to fix it.
  - It only reads; it never changes the host. C(airlock check) runs it on every host
    before anything is installed.
  - Ports in use by the very program airlock installs there (for example etcd on 2379
    during a re-run) are not problems.
version_added: "0.1.0"
author: airlock developers
options:
  supported_os:
    description: OS releases accepted, as C(ID-VERSION_ID) from /etc/os-release.
    type: list
    elements: str
    default: [debian-12, ubuntu-22.04, ubuntu-24.04]
  ports:
    description: TCP ports that must be free, each with the process names allowed to hold it.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description: TCP port number.
        type: int
        required: true
      owners:
        description: Process names (as in /proc/PID/comm) that may already listen there.
        type: list
        elements: str
        default: []
  min_free_gb:
    description: Minimum free space in GiB per path; the nearest existing parent is measured.
    type: dict
    default: {}
  swap_allowed:
    description:
      - Whether active swap is acceptable. True when airlock turns swap off itself
        (C(airlock_disable_swap), the default); false makes active swap a problem.
    type: bool
    default: true
  ip:
    description: The host's cluster address; it must be assigned to one of its interfaces.
    type: str
  vip:
    description: When set, it must lie in the network of the interface that holds O(ip).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the host before installing
  airlock.cluster.host_preflight:
    ip: "{{ ip }}"
    vip: "{{ airlock_api_vip }}"
    ports:
      - port: 2379
        owners: [etcd]
    min_free_gb:
      /var/lib: 10
  register: _preflight
"""

RETURN = r"""
checks:
  description:
    - Every check made, in this order - C(os), C(swap), C(cgroup), one C(port) per port, one
      C(disk) per path, C(ip) and C(vip) - each with its result. C(airlock check) reads
      these, and prints the ones with C(warning) as notes.
  type: list
  elements: dict
  returned: always
  contains:
    check:
      description: Which check - V(os), V(swap), V(cgroup), V(port), V(disk), V(ip) or V(vip).
      type: str
    ok:
      description: Whether the host passed it.
      type: bool
    message:
      description: What was found, for example "port 2380/tcp is in use by python3 (pid 7)".
      type: str
    fix:
      description: How to fix it; empty when the check passed.
      type: str
    warning:
      description: Passed, but worth a note (cgroup v1).
      type: bool
    port:
      description: The port (C(port) checks only).
      type: int
    path:
      description: The path (C(disk) checks only).
      type: str
  sample:
    - {check: os, ok: true, message: OS debian-12 is supported, fix: ""}
problems:
  description:
    - The failed checks, one line each, "what is wrong; how to fix it". Empty when the host
      is fit.
  type: list
  elements: str
  returned: always
os:
  description: C(ID-VERSION_ID) of the host.
  type: str
  returned: always
  sample: debian-12
host_time:
  description: The host's clock (seconds since the epoch) when the module ran.
  type: float
  returned: always
swap_kb:
  description: Active swap in KiB.
  type: int
  returned: always
"""

import ipaddress
import json
import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command, find_program

LISTEN = "0A"


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "supported_os": {
                "type": "list",
                "elements": "str",
                "default": ["debian-12", "ubuntu-22.04", "ubuntu-24.04"],
            },
            "ports": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "port": {"type": "int", "required": True},
                    "owners": {"type": "list", "elements": "str", "default": []},
                },
            },
            "min_free_gb": {"type": "dict", "default": {}},
            "swap_allowed": {"type": "bool", "default": True},
            "ip": {"type": "str"},
            "vip": {"type": "str"},
        },
        supports_check_mode=True,
    )


def os_release(path: str = "/etc/os-release") -> str:
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except OSError:
        return "unknown"
    return f"{fields.get('ID', 'unknown')}-{fields.get('VERSION_ID', '')}"


def swap_kb(path: str = "/proc/swaps") -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return 0
    return sum(int(row.split()[2]) for row in rows if len(row.split()) >= 3)


def listening_inodes() -> dict[int, set[str]]:
    """TCP port -> socket inodes listening on it (IPv4 and IPv6)."""
    ports: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="utf-8") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == LISTEN:
                port = int(cols[1].rsplit(":", 1)[1], 16)
                ports.setdefault(port, set()).add(cols[9])
    return ports


def socket_owners(inodes: set[str]) -> set[str]:
    """Names of the processes holding any of these socket inodes."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: set[str] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = f"/proc/{pid}/fd"
        try:
            links = {os.readlink(os.path.join(fd_dir, fd)) for fd in os.listdir(fd_dir)}
        except OSError:
            continue
        if links & wanted:
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
                    owners.add(f"{handle.read().strip()} (pid {pid})")
            except OSError:
                owners.add(f"pid {pid}")
    return owners


def check(name: str, ok: bool, message: str, fix: str = "", **extra: Any) -> dict[str, Any]:
    """One result: which check, whether it passed, what was found and, when not, the fix."""
    return {"check": name, "ok": ok, "message": message, "fix": "" if ok else fix, **extra}


def cgroup_check(root: str = "/sys/fs/cgroup") -> dict[str, Any]:
    """cgroup v2 passes quietly; cgroup v1 passes with a warning (deprecated upstream)."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return check("cgroup", True, "cgroup v2", cgroup_version=2)
    return check(
        "cgroup",
        True,
        "cgroup v1, which Kubernetes deprecates: from 1.35 the kubelet runs here only with "
        "failCgroupV1: false and kubeadm's SystemVerification check skipped (airlock sets "
        "both for this host); plan a move to cgroup v2 (systemd.unified_cgroup_hierarchy=1)",
        cgroup_version=1,
        warning=True,
    )


def port_checks(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    listening = listening_inodes()
    for entry in ports:
        port = entry["port"]
        inodes = listening.get(port)
        if not inodes:
            checks.append(check("port", True, f"port {port}/tcp is free", port=port))
            continue
        owners = socket_owners(inodes)
        allowed = set(entry.get("owners") or [])
        who = ", ".join(sorted(owners)) or "an unknown process"
        if owners and all(o.split(" (pid")[0] in allowed for o in owners):
            message = f"port {port}/tcp is held by {who}, which airlock runs there"
            checks.append(check("port", True, message, port=port))
            continue
        checks.append(
            check(
                "port",
                False,
                f"port {port}/tcp is in use by {who}",
                "stop it or move it to another port",
                port=port,
            )
        )
    return checks


def disk_checks(min_free_gb: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for path, minimum in sorted(min_free_gb.items()):
        probe = path
        while not os.path.exists(probe) and probe not in ("/", ""):
            probe = os.path.dirname(probe)
        stats = os.statvfs(probe or "/")
        free_gb = stats.f_bavail * stats.f_frsize / 2**30
        message = f"{path} has {free_gb:.1f} GiB free, needs {float(minimum):.0f} GiB"
        ok = free_gb >= float(minimum)
        checks.append(check("disk", ok, message, "free space or grow the filesystem", path=path))
    return checks


def interface_network(module: AnsibleModule, ip: str) -> ipaddress.IPv4Network | None:
    ip_bin = find_program(module, "ip", required=False)
    if ip_bin is None:
        return None
    rc, out, _ = Command(module, ip_bin).run(["-j", "-4", "addr", "show"])
    if rc != 0:
        return None
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info") or []:
            if addr.get("local") == ip:
                return ipaddress.IPv4Network(f"{ip}/{addr['prefixlen']}", strict=False)
    return None


def network_checks(module: AnsibleModule, ip: str | None, vip: str | None) -> list[dict[str, Any]]:
    if not ip:
        return []
    net = interface_network(module, ip)
    if net is None:
        return [
            check(
                "ip",
                False,
                f"ip {ip} is not assigned to any interface of this host",
                "set `ip` to one of the host's own addresses",
            )
        ]
    checks = [check("ip", True, f"ip {ip} is on this host, in the network {net}")]
    if vip:
        inside = ipaddress.IPv4Address(vip) in net
        where = "inside" if inside else "outside"
        message = f"airlock_api_vip {vip} is {where} this host's network {net}"
        checks.append(check("vip", inside, message, f"choose a free address in {net}"))
    return checks


def preflight(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    release = os_release()
    supported = params["supported_os"]
    checks = [
        check(
            "os",
            release in supported,
            f"OS {release} is {'' if release in supported else 'not '}supported",
            f"use one of {', '.join(supported)}",
        )
    ]
    swap = swap_kb()
    if not swap:
        checks.append(check("swap", True, "swap is off"))
    elif params["swap_allowed"]:
        checks.append(check("swap", True, f"swap is on ({swap // 1024} MiB); airlock turns it off"))
    else:
        checks.append(
            check(
                "swap",
                False,
                f"swap is on ({swap // 1024} MiB)",
                "turn it off (swapoff -a and remove it from /etc/fstab) or let airlock do it "
                "(airlock_disable_swap: true)",
            )
        )
    checks.append(cgroup_check())
    checks += port_checks(params["ports"])
    checks += disk_checks(params["min_free_gb"])
    checks += network_checks(module, params["ip"], params["vip"])
    problems = [f"{c['message']}; {c['fix']}" for c in checks if not c["ok"]]
    return {
        "checks": checks,
        "problems": problems,
        "os": release,
        "swap_kb": swap,
        "host_time": time.time(),
    }


def run_module(module: AnsibleModule) -> dict[str, Any]:
    return {"changed": False, **preflight(module)}


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
