"""airlock.cluster.loadbalancer_vip_probe: its pure functions (ARP frames, addressing), and
the module in-process against this machine's own `ip` on loopback (no ARP)."""

from __future__ import annotations

import shutil
import socket
import struct

import pytest
from ansible_collections.airlock.cluster.plugins.modules import loadbalancer_vip_probe as probe

from tests.module_harness import ModuleFailed, run_module

MAC = bytes.fromhex("0a0b0c0d0e0f")
IP_ADDR_JSON = [
    {"ifname": "lo", "address": "00:00:00:00:00:00",
     "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eth0", "address": "0a:0b:0c:0d:0e:0f",
     "addr_info": [{"family": "inet", "local": "10.77.12.11", "prefixlen": 24},
                   {"family": "inet", "local": "10.77.12.250", "prefixlen": 24},
                   {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
]  # fmt: skip


def test_arp_request_layout() -> None:
    frame = probe.build_arp_request(MAC, "10.77.12.11", "10.77.12.250")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == MAC
    assert frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 1)
    assert frame[28:32] == socket.inet_aton("10.77.12.11")
    assert frame[38:42] == socket.inet_aton("10.77.12.250")


def _reply(sender_ip: str, op: int = 2, ethertype: int = 0x0806) -> bytes:
    sha = bytes.fromhex("112233445566")
    return (
        MAC + sha + struct.pack("!H", ethertype)
        + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha,
                      socket.inet_aton(sender_ip), MAC, socket.inet_aton("10.77.12.11"))
    )  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (_reply("10.77.12.250"), "11:22:33:44:55:66"),
        (_reply("10.77.12.99"), None),  # a reply, but for another address
        (_reply("10.77.12.250", op=1), None),  # a request, not a reply
        (_reply("10.77.12.250", ethertype=0x0800), None),  # not ARP at all
        (b"\x00" * 20, None),  # truncated
    ],
)
def test_parse_arp_reply(frame: bytes, expected: str | None) -> None:
    assert probe.parse_arp_reply(frame, "10.77.12.250") == expected


def test_find_address_and_local_addresses() -> None:
    assert probe.find_address(IP_ADDR_JSON, "10.77.12.11") == ("eth0", 24, "0a:0b:0c:0d:0e:0f")
    assert probe.find_address(IP_ADDR_JSON, "10.9.9.9") is None
    assert probe.local_addresses(IP_ADDR_JSON) == {"127.0.0.1", "10.77.12.11", "10.77.12.250"}


@pytest.mark.parametrize(
    ("address", "prefix", "vip", "network", "usable"),
    [
        ("10.77.12.11", 24, "10.77.12.250", "10.77.12.0/24", True),
        ("10.77.12.11", 24, "10.77.13.250", "10.77.12.0/24", False),  # other subnet
        ("10.77.12.11", 24, "10.77.12.0", "10.77.12.0/24", False),  # network address
        ("10.77.12.11", 24, "10.77.12.255", "10.77.12.0/24", False),  # broadcast
        ("192.168.1.5", 31, "192.168.1.4", "192.168.1.4/31", True),  # /31 has no broadcast
    ],
)
def test_vip_in_network(address: str, prefix: int, vip: str, network: str, usable: bool) -> None:
    assert probe.vip_in_network(address, prefix, vip) == (network, usable)


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's ip")
@pytest.mark.parametrize(
    ("vip", "in_network", "is_local"),
    [("127.0.0.250", True, False), ("127.0.0.1", True, True), ("192.0.2.7", False, False)],
)
def test_module_reports_addressing_on_loopback(vip, in_network, is_local):
    result = run_module(probe, {"address": "127.0.0.1", "vip": vip, "arp": False})
    assert result["changed"] is False
    assert (result["interface"], result["network"]) == ("lo", "127.0.0.0/8")
    assert (result["vip_in_network"], result["vip_is_local"]) == (in_network, is_local)
    assert result["answered"] is False and result["answered_by"] == ""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"address": "127.0.0.1", "vip": "api.example"}, "vip: 'api.example' is not an IPv4"),
        ({"address": "192.0.2.1", "vip": "192.0.2.2"}, "192.0.2.1 is not configured on any"),
    ],
)
def test_module_fails_with_a_clear_message(params, message):
    with pytest.raises(ModuleFailed, match=message):
        run_module(probe, {**params, "arp": False})
