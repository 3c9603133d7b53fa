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
problems:
  description: One line per problem, "what is wrong; how to fix it". Empty when the host is fit.
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


def port_problems(ports: list[dict[str, Any]]) -> list[str]:
    problems = []
    listening = listening_inodes()
    for entry in ports:
        inodes = listening.get(entry["port"])
        if not inodes:
            continue
        owners = socket_owners(inodes)
        allowed = set(entry.get("owners") or [])
        if owners and all(o.split(" (pid")[0] in allowed for o in owners):
            continue
        who = ", ".join(sorted(owners)) or "an unknown process"
        problems.append(
            f"port {entry['port']}/tcp is in use by {who}; stop it or move it to another port"
        )
    return problems


def disk_problems(min_free_gb: dict[str, Any]) -> list[str]:
    problems = []
    for path, minimum in sorted(min_free_gb.items()):
        probe = path
        while not os.path.exists(probe) and probe not in ("/", ""):
            probe = os.path.dirname(probe)
        stats = os.statvfs(probe or "/")
        free_gb = stats.f_bavail * stats.f_frsize / 2**30
        if free_gb < float(minimum):
            problems.append(
                f"{path} has {free_gb:.1f} GiB free, needs {float(minimum):.0f} GiB; "
                "free space or grow the filesystem"
            )
    return problems


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


def network_problems(module: AnsibleModule, ip: str | None, vip: str | None) -> list[str]:
    if not ip:
        return []
    net = interface_network(module, ip)
    if net is None:
        return [
            f"ip {ip} is not assigned to any interface of this host; "
            "set `ip` to one of the host's own addresses"
        ]
    if vip and ipaddress.IPv4Address(vip) not in net:
        return [
            f"airlock_api_vip {vip} is outside this host's network {net}; "
            f"choose a free address in {net}"
        ]
    return []


def preflight(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    problems: list[str] = []
    release = os_release()
    if release not in params["supported_os"]:
        problems.append(
            f"OS {release} is not supported; use one of {', '.join(params['supported_os'])}"
        )
    swap = swap_kb()
    if swap and not params["swap_allowed"]:
        problems.append(
            f"swap is on ({swap // 1024} MiB); turn it off (swapoff -a and remove it "
            "from /etc/fstab) or let airlock do it (airlock_disable_swap: true)"
        )
    problems += port_problems(params["ports"])
    problems += disk_problems(params["min_free_gb"])
    problems += network_problems(module, params["ip"], params["vip"])
    return {"problems": problems, "os": release, "swap_kb": swap, "host_time": time.time()}


def main() -> None:
    module = build_module()
    module.exit_json(changed=False, **preflight(module))


if __name__ == "__main__":
    main()
