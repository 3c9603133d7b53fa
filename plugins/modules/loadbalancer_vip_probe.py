#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module airlock.cluster.loadbalancer_vip_probe: does a VIP fit here, does anyone hold it?

Read-only: where a host's address lives, whether a VIP fits its subnet, who answers ARP.
The loadbalancer role's preflight and configure phases call it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import socket
import struct
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command

DOCUMENTATION = r"""
---
module: loadbalancer_vip_probe
short_description: Check that a virtual IP fits a host's network and that nobody answers for it
description:
  - Finds the interface and prefix that carry O(address) on the managed host (C(ip -j addr)).
  - Reports whether O(vip) lies inside that network and whether the host already holds it.
  - Unless the host holds the VIP itself or the VIP lies outside that network, sends ARP
    requests for O(vip) on that interface from O(address) and reports whether any machine
    answered (an address already in use).
  - Never changes anything; it is safe in check mode.
version_added: "0.1.0"
author: airlock developers
options:
  address:
    description: The host's own IPv4 address on the network the VIP belongs to.
    type: str
    required: true
  vip:
    description: The virtual IPv4 address to check.
    type: str
    required: true
  arp:
    description: Send ARP requests for O(vip). Off, the module only reports addressing.
    type: bool
    default: true
  count:
    description: Number of ARP requests to send.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for an ARP reply in total.
    type: float
    default: 2.0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Probe the API VIP from the first load balancer
  airlock.cluster.loadbalancer_vip_probe:
    address: "{{ ip }}"
    vip: "{{ loadbalancer_vip }}"
  register: _probe
"""

RETURN = r"""
interface:
  description: Interface that carries O(address).
  returned: success
  type: str
  sample: eth0
network:
  description: The network of O(address), in CIDR notation.
  returned: success
  type: str
  sample: 10.77.12.0/24
vip_in_network:
  description: O(vip) is a usable host address of RV(network) (not network or broadcast).
  returned: success
  type: bool
vip_is_local:
  description: O(vip) is configured on one of this host's interfaces.
  returned: success
  type: bool
answered:
  description: Some machine answered an ARP request for O(vip) (always false when not probed).
  returned: success
  type: bool
answered_by:
  description: MAC address that answered, or an empty string.
  returned: success
  type: str
"""

ETH_P_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST = b"\xff" * 6


def build_arp_request(src_mac: bytes, src_ip: str, target_ip: str) -> bytes:
    """Ethernet frame carrying an ARP request 'who has target_ip, tell src_ip'."""
    ether = BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,  # hardware type: Ethernet
        0x0800,  # protocol type: IPv4
        6,
        4,
        ARP_REQUEST,
        src_mac,
        socket.inet_aton(src_ip),
        b"\x00" * 6,
        socket.inet_aton(target_ip),
    )
    return ether + arp


def parse_arp_reply(frame: bytes, target_ip: str) -> str | None:
    """MAC (aa:bb:..) of the sender if frame is an ARP reply from target_ip, else None."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    _, _, _, _, op, sha, spa, _, _ = struct.unpack("!HHBBH6s4s6s4s", frame[14:42])
    if op != ARP_REPLY or spa != socket.inet_aton(target_ip):
        return None
    return ":".join(f"{b:02x}" for b in sha)


def find_address(addr_json: list[dict[str, Any]], address: str) -> tuple[str, int, str] | None:
    """(interface, prefixlen, mac) of the interface carrying address in `ip -j addr` output."""
    for link in addr_json:
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("local") == address:
                return link["ifname"], int(info["prefixlen"]), link.get("address", "")
    return None


def local_addresses(addr_json: list[dict[str, Any]]) -> set[str]:
    """Every IPv4 address configured on the host."""
    return {
        info["local"]
        for link in addr_json
        for info in link.get("addr_info", [])
        if info.get("family") == "inet" and "local" in info
    }


def vip_in_network(address: str, prefixlen: int, vip: str) -> tuple[str, bool]:
    """(network in CIDR, whether vip is a usable host address of it)."""
    network = ipaddress.ip_interface(f"{address}/{prefixlen}").network
    candidate = ipaddress.ip_address(vip)
    usable = candidate in network
    if usable and network.prefixlen < 31:
        usable = candidate not in (network.network_address, network.broadcast_address)
    return str(network), usable


def arp_probe(
    interface: str, mac: str, address: str, vip: str, *, count: int, timeout: float
) -> str:
    """Send ARP requests for vip; return the MAC that answered or ''."""
    src_mac = bytes.fromhex(mac.replace(":", ""))
    frame = build_arp_request(src_mac, address, vip)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((interface, ETH_P_ARP))
        deadline = time.monotonic() + timeout
        interval = timeout / max(count, 1)
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                sock.send(frame)
                next_send = now + interval
            ready, _, _ = select.select([sock], [], [], max(0.0, min(next_send, deadline) - now))
            if ready:
                answer = parse_arp_reply(sock.recv(2048), vip)
                if answer:
                    return answer
    return ""


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "address": {"type": "str", "required": True},
            "vip": {"type": "str", "required": True},
            "arp": {"type": "bool", "default": True},
            "count": {"type": "int", "default": 3},
            "timeout": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )


def run_module(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    for key in ("address", "vip"):
        try:
            ipaddress.IPv4Address(p[key])
        except ValueError:
            module.fail_json(msg=f"{key}: {p[key]!r} is not an IPv4 address")
    _rc, out, _err = Command(module, "ip").run(["-j", "addr", "show"], what="ip -j addr show")
    addr_json = json.loads(out)
    found = find_address(addr_json, p["address"])
    if found is None:
        module.fail_json(
            msg=f"address {p['address']} is not configured on any interface of this host; "
            "check the host's 'ip' variable"
        )
    interface, prefixlen, mac = found  # type: ignore[misc]
    network, in_network = vip_in_network(p["address"], prefixlen, p["vip"])
    is_local = p["vip"] in local_addresses(addr_json)
    answered_by = ""
    # Outside the network ARP cannot reach it (and the preflight fails on that anyway).
    if p["arp"] and in_network and not is_local:
        if os.geteuid() != 0:
            module.fail_json(msg="the ARP probe needs root (become: true)")
        answered_by = arp_probe(
            interface, mac, p["address"], p["vip"], count=p["count"], timeout=p["timeout"]
        )
    return {
        "changed": False,
        "interface": interface,
        "network": network,
        "vip_in_network": in_network,
        "vip_is_local": is_local,
        "answered": bool(answered_by),
        "answered_by": answered_by,
    }


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
