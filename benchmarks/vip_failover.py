#!/usr/bin/env python3
"""How long the API VIP is unusable when its holder fails, seen from a client.

Needs a lab that ran the loadbalancer stage (e.g. after `molecule converge -s loadbalancer`).
A client on the controller sends TLS `GET /readyz` through VIP:port every 20 ms (each with a
short timeout). For each round the script finds the VIP holder, then either stops haproxy on
it (graceful) or `podman kill`s its container (hard kill), and prints the time from the
disruption to the first successful request answered after the VIP moved (the controller's ARP
entry for the VIP changed). It restores the lab after each round. Goals: graceful < 2 s,
hard kill < 4 s. A benchmark prints numbers; it never fails on them.

    .venv/bin/python benchmarks/vip_failover.py --lab mol-loadbalancer --rounds 3
    .venv/bin/python benchmarks/vip_failover.py --lab mol-loadbalancer holders   # JSON
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 0.25
MOVE_DEADLINE_S = 30.0
STABLE_S = 4.0


@dataclass
class Lab:
    name: str
    hosts: dict[str, str]  # lb host -> ip
    all_hosts: dict[str, str]
    vip: str
    port: int

    @classmethod
    def load(cls, name: str, port: int) -> Lab:
        inv = ROOT / ".airlock" / "labs" / name / "inventory"
        if name == "lab":
            inv = ROOT / "inventories" / "lab"
        hosts_yml = yaml.safe_load((inv / "hosts.yml").read_text())["all"]
        lab_vars = yaml.safe_load((inv / "group_vars" / "all" / "lab.yml").read_text())
        all_hosts = {h: v["ip"] for h, v in hosts_yml["hosts"].items()}
        lb = hosts_yml["children"]["lb"]["hosts"] or {}
        return cls(
            name, {h: all_hosts[h] for h in lb}, all_hosts, lab_vars["airlock_api_vip"], port
        )

    def container(self, host: str) -> str:
        return f"airlock-{self.name}-{host}"


def podman(*args: str, check: bool = True) -> str:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / ".airlock" / "containers.conf"))
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def holders(lab: Lab, skip: frozenset[str] = frozenset()) -> list[str]:
    """Hosts that have the VIP configured right now (ask each running container)."""
    found = []
    for host in lab.hosts:
        if host in skip:
            continue
        out = podman(
            "exec", lab.container(host), "ip", "-o", "-4", "addr", "show", "to", f"{lab.vip}/32",
            check=False,
        )  # fmt: skip
        if lab.vip in out:
            found.append(host)
    return found


def arp_mac(ip: str) -> str:
    """The controller's ARP entry for ip (what clients on this machine will use)."""
    for line in Path("/proc/net/arp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[0] == ip and cols[2] != "0x0":
            return cols[3]
    return ""


@dataclass
class Prober:
    """Background client: one fresh TLS request through the VIP every PROBE_INTERVAL_S."""

    lab: Lab
    context: ssl.SSLContext
    samples: list[tuple[float, bool, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def request(self) -> bool:
        conn = http.client.HTTPSConnection(
            self.lab.vip, self.lab.port, timeout=PROBE_TIMEOUT_S, context=self.context
        )
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            ok = self.request()
            self.samples.append((time.monotonic(), ok, arp_mac(self.lab.vip)))
            self._stop.wait(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - started)))

    def __enter__(self) -> Prober:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_for(predicate: Callable[[], object], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {deadline_s:.0f}s waiting for {what}")


def restore(lab: Lab, host: str, killed: bool) -> None:
    if killed:
        workers = [h for h in lab.all_hosts if h.startswith("w")]
        subnet = ipaddress.ip_network(f"{next(iter(lab.all_hosts.values()))}/24", strict=False)
        subprocess.run(
            [str(Path(sys.executable).parent / "airlock"), "lab", "up", "--name", lab.name,
             "--masters", str(len(lab.all_hosts) - len(workers)),
             "--workers", str(len(workers)), "--subnet", str(subnet)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    else:
        podman("exec", lab.container(host), "systemctl", "start", "haproxy")
    wait_stable(lab, deadline_s=90)


def wait_stable(lab: Lab, deadline_s: float, quiet_s: float = STABLE_S) -> str:
    """Wait until one host has held the VIP for quiet_s (a returning host may preempt)."""
    deadline = time.monotonic() + deadline_s
    current: list[str] = []
    since = time.monotonic()
    while time.monotonic() < deadline:
        now = holders(lab)
        if now != current:
            current, since = now, time.monotonic()
        elif len(current) == 1 and time.monotonic() - since >= quiet_s:
            return current[0]
        time.sleep(0.3)
    raise RuntimeError(f"no stable single VIP holder within {deadline_s:.0f}s (last: {current})")


def one_round(lab: Lab, context: ssl.SSLContext, mode: str) -> tuple[float, float, str, str]:
    """(failover seconds, client outage seconds, old holder, new holder) of one disruption."""
    old = wait_stable(lab, deadline_s=60)
    wait_for(Prober(lab, context).request, 10, "a request through the VIP to succeed")
    old_mac = arp_mac(lab.vip)
    with Prober(lab, context) as prober:
        time.sleep(0.5)
        t0 = time.monotonic()
        if mode == "graceful":
            podman("exec", lab.container(old), "systemctl", "stop", "haproxy")
        else:
            podman("kill", lab.container(old))
        wait_for(
            lambda: any(t > t0 and ok and mac != old_mac for t, ok, mac in prober.samples),
            MOVE_DEADLINE_S, "the VIP to move and answer",
        )  # fmt: skip
    after = [(t, ok, mac) for t, ok, mac in prober.samples if t > t0]
    first_ok = next(t for t, ok, mac in after if ok and mac != old_mac)
    failures = [t for t, ok, _ in after if not ok and t < first_ok]
    outage = first_ok - failures[0] if failures else 0.0
    new = holders(lab, skip=frozenset({old}))
    restore(lab, old, killed=(mode == "kill"))
    return first_ok - t0, outage, old, ",".join(new) or "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--lab", default="mol-loadbalancer", help="lab name (airlock lab up --name)"
    )
    parser.add_argument("--port", type=int, default=8443, help="API port on the VIP")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per failure mode")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "holders"])
    args = parser.parse_args()
    lab = Lab.load(args.lab, args.port)
    if args.command == "holders":
        print(json.dumps({"vip": lab.vip, "holders": holders(lab)}))
        return
    # The cluster CA the load balancers verify against also verifies the stand-in servers.
    ca_pem = podman(
        "exec", lab.container(next(iter(lab.hosts))), "cat", "/etc/kubernetes/pki/ca.crt"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".crt") as ca:
        ca.write(ca_pem)
        ca.flush()
        context = ssl.create_default_context(cafile=ca.name)
    print(f"lab {lab.name}: VIP {lab.vip}:{lab.port}, load balancers {', '.join(lab.hosts)}")
    print(
        f"client: TLS GET /readyz every {PROBE_INTERVAL_S * 1000:.0f} ms, "
        f"timeout {PROBE_TIMEOUT_S * 1000:.0f} ms"
    )
    for mode, goal in (("graceful", 2.0), ("kill", 4.0)):
        label = "haproxy stopped" if mode == "graceful" else "container killed"
        times = []
        for i in range(1, args.rounds + 1):
            failover, outage, old, new = one_round(lab, context, mode)
            times.append(failover)
            print(f"{label:17} round {i}: VIP {old} -> {new}: failover {failover:.2f} s "
                  f"(client saw errors for {outage:.2f} s)", flush=True)  # fmt: skip
        print(f"{label:17} median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"(goal < {goal:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
