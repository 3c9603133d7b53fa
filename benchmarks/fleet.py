"""Prints how `airlock check` scales with the number of hosts, from one controller.

    python benchmarks/fleet.py [--sizes 10,50,100] [--keep]

For each size N it starts N light hosts: containers of the lab image running only sshd
(no systemd, no services: about 5 MiB each, so 100 fit beside a lab), on a podman network
of their own (10.78.0.0/16), reachable from this machine over SSH with a key made for the
run; it writes an inventory (the first host is etcd member, control plane, load balancer
and bundle host; the others workers) and times `airlock check -i INV` twice: wall time,
the CPU seconds and peak memory of the controller's processes (the CLI, ansible-playbook
and its forks: RUSAGE_CHILDREN). The hosts are removed after each size unless --keep.
Numbers only; it never passes or fails on time. Not yet measured here: the host
preparation stage on such hosts (os_prep needs systemd and kernel settings these hosts
do not have).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airlock.lab.image import ensure_image  # noqa: E402
from airlock.podman import podman_env  # noqa: E402

AIRLOCK = str(Path(sys.executable).parent / "airlock")
NETWORK = "airlock-fleet"
SUBNET = "10.78.0.0/16"
PREFIX = "airlock-fleet-"
SSHD = "ssh-keygen -A >/dev/null && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), check=check
    )


def address(index: int) -> str:
    return f"10.78.{index // 250 + 1}.{index % 250 + 1}"


def start(count: int, image: str, pubkey: Path) -> list[str]:
    names = [f"h{i:03d}" for i in range(1, count + 1)]
    for index, name in enumerate(names):
        podman(
            "run", "-d", "--name", PREFIX + name, "--hostname", name, "--network", NETWORK,
            "--ip", address(index), "-v", f"{pubkey}:/root/.ssh/authorized_keys:ro",
            "--entrypoint", "/bin/sh", image, "-c", SSHD,
        )  # fmt: skip
    return names


def remove_all() -> None:
    listed = podman("ps", "-aq", "--filter", f"name=^{PREFIX}", check=False).stdout.split()
    if listed:
        podman("rm", "-f", "-t", "0", *listed, check=False)


def inventory(directory: Path, names: list[str], key: Path) -> Path:
    hosts = ["---", "all:", "  hosts:"]
    hosts += [
        f"    {n}: {{ip: {address(i)}, ansible_host: {address(i)}}}" for i, n in enumerate(names)
    ]
    hosts += ["  children:"]
    for group in ("etcd", "kube_control_plane", "lb", "bundle_host"):
        hosts += [f"    {group}:", "      hosts:", f"        {names[0]}: {{}}"]
    hosts += ["    kube_node:", "      hosts:"] + [f"        {n}: {{}}" for n in names[1:]]
    (directory / "group_vars" / "all").mkdir(parents=True)
    (directory / "hosts.yml").write_text("\n".join(hosts) + "\n")
    (directory / "group_vars" / "all" / "fleet.yml").write_text(
        "---\n"
        "airlock_cluster_name: fleet\n"
        f"airlock_host_cidr: {SUBNET}\n"
        "airlock_min_free_gb: 1\n"
        "ansible_user: root\n"
        f"ansible_ssh_private_key_file: {key}\n"
        f"ansible_ssh_common_args: -o UserKnownHostsFile={directory}.known_hosts "
        "-o StrictHostKeyChecking=accept-new -o ControlMaster=auto -o ControlPersist=60s\n"
    )
    return directory


def timed_check(inv: Path) -> tuple[float, float, float, int]:
    """(wall s, controller CPU s, peak MiB of one controller process, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [AIRLOCK, "check", "-i", str(inv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, AIRLOCK_HOME=str(ROOT)),
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1) or os.environ.get("FLEET_DEBUG"):
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return wall, cpu, after.ru_maxrss / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--keep", action="store_true", help="leave the last size's hosts")
    args = parser.parse_args()
    image = ensure_image(print)
    remove_all()
    podman("network", "rm", "-f", NETWORK, check=False)
    podman("network", "create", "--subnet", SUBNET, NETWORK)
    rows = []
    with tempfile.TemporaryDirectory(prefix="airlock-fleet-") as tmp:
        key = Path(tmp) / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        for size in [int(s) for s in args.sizes.split(",")]:
            started = time.monotonic()
            names = start(size, image, key.with_suffix(".pub"))
            up = time.monotonic() - started
            time.sleep(2)  # sshd's host keys
            inv = inventory(Path(tmp) / f"inv-{size}", names, key)
            first = timed_check(inv)
            second = timed_check(inv)
            rows.append((size, up, first, second))
            print(f"{size} hosts: up in {up:.0f}s; check {first[0]:.1f}s then {second[0]:.1f}s",
                  flush=True)  # fmt: skip
            if not (args.keep and size == rows[-1][0]):
                remove_all()
    if not args.keep:
        podman("network", "rm", "-f", NETWORK, check=False)
    print(f"\nairlock check over SSH, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    print("hosts  up(s)  check wall(s)  CPU(s)  peak MiB  exit   again wall(s)  CPU(s)  exit")
    for size, up, first, second in rows:
        print(
            f"{size:>5}  {up:>5.0f}  {first[0]:>13.1f}  {first[1]:>6.1f}  {first[2]:>8.0f}"
            f"  {first[3]:>4}   {second[0]:>13.1f}  {second[1]:>6.1f}  {second[3]:>4}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
