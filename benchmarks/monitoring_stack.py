#!/usr/bin/env python3
"""Print what the monitoring stack costs: memory and CPU of each of its processes on the
lab hosts at rest, Prometheus' series, and the lab bundle build time the stack adds.
Prints numbers; never passes or fails on them.

    .venv/bin/python benchmarks/monitoring_stack.py -i inventories/lab [--seconds 60]

Per host (podman exec, no SSH): the resident memory and the CPU time used during
--seconds of each unit's main process (prometheus, alertmanager, blackbox_exporter,
node_exporter); kube-state-metrics' container from crictl on the node it runs on. CPU is
in millicores averaged over the window. The build time is the sum of the stack's Go
programs' first builds as .airlock/cache/lab/build-times.json recorded them (Prometheus'
includes its web UI); builds share Go's compile cache, so the figure depends on what was
built before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airlock.inventory.load import load_inventory  # noqa: E402
from airlock.lab.bundle.gobuild import build_times  # noqa: E402
from airlock.paths import state_dir  # noqa: E402

UNITS = ("prometheus", "alertmanager", "blackbox_exporter", "node_exporter")
PROGRAMS = (
    "prometheus",
    "promtool",
    "alertmanager",
    "amtool",
    "node_exporter",
    "blackbox_exporter",
    "kube-state-metrics",
)


def podman(lab: str, host: str, *argv: str) -> str:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    return subprocess.run(
        ["podman", "exec", f"airlock-{lab}-{host}", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout


def unit_sample(lab: str, host: str) -> dict[str, tuple[int, int]]:
    """{unit: (resident bytes, CPU ns so far)} of the stack's units running on `host`.

    Read from /proc of each unit's main process: systemd inside the lab's containers has no
    memory accounting (MemoryCurrent is "[not set]").
    """
    script = (
        "for u in " + " ".join(UNITS) + "; do "
        "pid=$(systemctl show -p MainPID --value $u.service 2>/dev/null); "
        '[ -n "$pid" ] && [ "$pid" != 0 ] || continue; '
        "echo \"$u $(awk '/VmRSS/ {print $2}' /proc/$pid/status) "
        "$(awk '{print $14 + $15}' /proc/$pid/stat)\"; done"
    )
    found: dict[str, tuple[int, int]] = {}
    for line in podman(lab, host, "sh", "-c", script).splitlines():
        unit, rss_kib, ticks = line.split()
        found[unit] = (int(rss_kib) * 1024, int(ticks) * 10_000_000)  # USER_HZ = 100
    return found


def ksm_sample(lab: str, first_cp: str) -> tuple[str, tuple[int, int]] | None:
    """(node, (working set bytes, CPU ns so far)) of kube-state-metrics' container."""
    pods = json.loads(
        podman(
            lab,
            first_cp,
            "kubectl",
            "--kubeconfig",
            "/etc/kubernetes/admin.conf",
            "--namespace",
            "airlock-monitoring",
            "get",
            "pods",
            "--selector",
            "app.kubernetes.io/name=kube-state-metrics",
            "--output",
            "json",
        )
    )["items"]
    if not pods:
        return None
    node = pods[0]["spec"]["nodeName"]
    stats = json.loads(podman(lab, node, "crictl", "stats", "--output", "json"))["stats"]
    for entry in stats:
        if entry["attributes"]["metadata"]["name"] == "kube-state-metrics":
            return node, (
                int(entry["memory"]["workingSetBytes"]["value"]),
                int(entry["cpu"]["usageCoreNanoSeconds"]["value"]),
            )
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--inventory", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    inv = load_inventory(args.inventory)
    lab = str(inv.settings.get("airlock_cluster_name", "lab"))
    hosts = list(inv.hosts)
    first_cp = inv.members("kube_control_plane")[0]

    before = {h: unit_sample(lab, h) for h in hosts}
    ksm_before = ksm_sample(lab, first_cp)
    time.sleep(args.seconds)
    after = {h: unit_sample(lab, h) for h in hosts}
    ksm_after = ksm_sample(lab, first_cp)

    print(f"monitoring stack at rest on lab {lab}, CPU over {args.seconds:.0f}s")
    print(f"{'host':<6} {'process':<20} {'memory MiB':>10} {'CPU mcores':>10}")
    rows = []
    for host in hosts:
        for unit, (memory, cpu) in sorted(after[host].items()):
            start = before[host].get(unit, (0, cpu))[1]
            rows.append((host, unit, memory, (cpu - start) / args.seconds / 1e6))
    if ksm_before and ksm_after and ksm_before[0] == ksm_after[0]:
        node, (memory, cpu) = ksm_after
        rows.append(
            (node, "kube-state-metrics", memory, (cpu - ksm_before[1][1]) / args.seconds / 1e6)
        )
    for host, process, memory, mcores in rows:
        print(f"{host:<6} {process:<20} {memory / 2**20:>10.1f} {mcores:>10.1f}")
    total_memory = sum(r[2] for r in rows)
    total_cpu = sum(r[3] for r in rows)
    print(f"{'all':<6} {'':<20} {total_memory / 2**20:>10.1f} {total_cpu:>10.1f}")

    times = build_times(state_dir() / "cache" / "lab")
    stack = {k: v for k, v in times.items() if k.split("@")[0] in PROGRAMS}
    print("\nlab bundle build time of the stack's programs (first builds, recorded):")
    for key, seconds in sorted(stack.items()):
        print(f"  {key:<40} {seconds:>7.1f}s")
    print(f"  {'total':<40} {sum(stack.values()):>7.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
