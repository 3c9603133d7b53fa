"""The lab's hosts: systemd containers made by podman (`Lab.up`, `down`, `status`, `ssh_argv`).

Every host boots systemd as PID 1, runs sshd with this lab's own key, has a fixed
address on the lab's podman network and a non-overlay volume at /var/lib/containerd.
`up` converges to the requested shape (a second run changes nothing); `down` removes
every container, volume and network the lab made, and its keys and inventory.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from airlock.errors import AirlockError
from airlock.lab.image import ensure_image
from airlock.lab.inventory import LAB_EVICTION_GIB, write_inventory
from airlock.lab.spec import BOOT_DEADLINE_S, LABEL, SSH_DEADLINE_S, LabHost, LabSpec, lab_dir
from airlock.lab.ssh import ssh_command
from airlock.paths import project_root, state_dir
from airlock.podman import (
    NETWORK_BACKEND,
    inspect,
    list_json,
    network_backend,
    podman,
    remove_container,
)

Log = Callable[[str], None]
# Machine-wide limits a multi-host Kubernetes lab needs (see Lab._ensure_kernel_limits).
KERNEL_LIMITS = {"fs.inotify.max_user_instances": 1024, "fs.inotify.max_user_watches": 524288}


#: Where podman keeps the lab hosts' file systems (and so their containerd images).
STORAGE = Path("/var/lib/containers")
#: What a lab host writes there once deployed, with some room: make lab's 3+2 lab with
#: registry, Ceph and monitoring wrote 12 GiB (2026-12-04).
HOST_GROWTH_GIB = 3


def require_disk_headroom(path: Path, hosts: int = 5) -> None:
    """Refuse to start a lab of `hosts` hosts on a file system that cannot hold what they
    write and still leave their kubelets' eviction threshold free (the lab's kubelets
    count it in GiB, LAB_EVICTION_GIB, not in percent of the machine's disk)."""
    probe = path if path.exists() else Path("/")
    usage = shutil.disk_usage(probe)
    growth = HOST_GROWTH_GIB * hosts
    needed = (growth + LAB_EVICTION_GIB) * 2**30
    if usage.free < needed:
        raise AirlockError(
            f"{probe} has {usage.free / 2**30:.0f} GiB free; a lab of {hosts} host(s) needs "
            f"{needed / 2**30:.0f} GiB: the ~{growth} GiB they write and {LAB_EVICTION_GIB} GiB "
            "left free (below that their kubelets mark DiskPressure and evict pods): free "
            "space (old labs: airlock lab down --name NAME; Go's build cache: go clean -cache) "
            "and run again"
        )


#: What ssh prints when the network, not the host's answer, failed: worth another try.
TRANSIENT_SSH = ("Connection timed out", "Connection refused", "No route to host")


def ssh_until_up(
    cmd: list[str], deadline_s: float = SSH_DEADLINE_S, pause_s: float = 2.0
) -> subprocess.CompletedProcess:
    """Run `cmd` (an ssh command) until it succeeds, fails for a reason other than the
    network, or `deadline_s` has passed; return the last attempt."""
    end = time.monotonic() + deadline_s
    while True:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        transient = any(words in proc.stderr for words in TRANSIENT_SSH)
        if proc.returncode == 0 or not transient or time.monotonic() + pause_s > end:
            return proc
        time.sleep(pause_s)


class Lab:
    """Converges podman containers, network and volumes to a LabSpec."""

    def __init__(self, spec: LabSpec, log: Log = print) -> None:
        self.spec = spec
        self.log = log
        self.changed: list[str] = []

    # ---- up -------------------------------------------------------------------------
    def up(self) -> list[str]:
        """Bring the lab to the spec; return what changed (empty when nothing did)."""
        require_disk_headroom(STORAGE, len(self.spec.hosts))
        self._ensure_kernel_limits()
        key = self._ensure_key()
        image = ensure_image(self.log)
        created = self._ensure_network()
        self._check_reachable(created)
        self._remove_extra_hosts()
        for host in self.spec.hosts:
            self._ensure_host(host, image, key)
        self._wait_booted()
        self._check_route()
        known_hosts = self._write_known_hosts()
        self._check_ssh(key, known_hosts)
        assert self.spec.inventory_dir is not None
        if write_inventory(self.spec, key, known_hosts):
            self.changed.append(f"inventory {self.spec.inventory_dir}")
        return self.changed

    def _ensure_kernel_limits(self) -> None:
        """Raise machine-wide kernel limits that every lab host shares.

        inotify instances are counted per user across the whole machine, and every lab
        host's systemd, containerd and kubelet are root: with the default of 128, a
        cluster's containerd fails to start its CRI plugin ("failed to create fsnotify
        watcher: too many open files") and nodes go NotReady.
        """
        for name, wanted in KERNEL_LIMITS.items():
            path = Path("/proc/sys") / name.replace(".", "/")
            try:
                if int(path.read_text()) >= wanted:
                    continue
                path.write_text(f"{wanted}\n")
            except OSError as exc:
                raise AirlockError(
                    f"{name} is below {wanted} and cannot be raised ({exc}); as root run "
                    f"`sysctl -w {name}={wanted}`, then `airlock lab up` again"
                ) from exc
            self.changed.append(f"{name}={wanted}")

    def _ensure_key(self) -> Path:
        key = lab_dir(self.spec.name) / "id_ed25519"
        if not key.is_file():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"airlock-lab-{self.spec.name}",
                    "-f",
                    str(key),
                ],
                check=True,
                capture_output=True,
            )
            self.changed.append(f"ssh key {key}")
        key.chmod(0o600)
        return key

    def _ensure_network(self) -> bool:
        """Create the lab's network unless it exists; True when it was created now."""
        net = inspect("network", self.spec.network)
        if net is not None:
            subnets = [s.get("subnet") for s in net.get("subnets") or []]
            internal = bool(net.get("internal"))
            if self.spec.subnet not in subnets or internal != self.spec.internal:
                raise AirlockError(
                    f"lab network {self.spec.network} exists with subnet {subnets} "
                    f"internal={internal}, not {self.spec.subnet} internal={self.spec.internal}; "
                    f"run `airlock lab down --name {self.spec.name}` first"
                )
            return False
        self._check_subnet_free()
        args = [
            "network",
            "create",
            "--subnet",
            self.spec.subnet,
            "--label",
            f"{LABEL}={self.spec.name}",
        ]
        if self.spec.internal:
            args.append("--internal")
        podman(*args, self.spec.network)
        self.changed.append(f"network {self.spec.network} ({self.spec.subnet})")
        return True

    def _check_reachable(self, created: bool) -> None:
        """Before any host exists: prove this machine will have a route to the lab hosts.

        The controller reaches its lab hosts through its own address on the lab's bridge
        (the network's gateway). podman's CNI backend gives an `--internal` network no
        such address: SSH would then leave by the default route and time out. A route
        that already covers the subnet through another interface has the same effect.
        Nothing is left behind: a network made by this run is removed again.
        """
        try:
            problem = self._reachability_problem()
        except AirlockError:
            if created:
                podman("network", "rm", "-f", self.spec.network, check=False)
            raise
        if problem:
            if created:
                podman("network", "rm", "-f", self.spec.network, check=False)
                self.changed.remove(f"network {self.spec.network} ({self.spec.subnet})")
            raise AirlockError(problem)

    def _reachability_problem(self) -> str:
        spec = self.spec
        backend = network_backend()
        net = inspect("network", spec.network) or {}
        gateways = [s["gateway"] for s in net.get("subnets") or [] if s.get("gateway")]
        kind = "--internal network" if spec.internal else "network"
        if not gateways:
            fix = (
                f"run scripts/bootstrap (it installs {NETWORK_BACKEND} and aardvark-dns and "
                f"selects them in {state_dir() / 'containers.conf'}), then `airlock lab down "
                f"--name {spec.name}` and `lab up` again"
                if backend != NETWORK_BACKEND
                else f"run `airlock lab down --name {spec.name}` and `lab up` again"
            )
            return (
                f"lab network {spec.network} ({spec.subnet}): podman's {backend} backend gives "
                f"this machine no address on a {kind}, so the controller could not reach the "
                f"lab hosts; {fix}"
            )
        wanted = ipaddress.IPv4Network(spec.subnet)
        bridge = net.get("network_interface", "")
        for route in _routes():
            dst, dev = route.get("dst", ""), route.get("dev", "")
            if dst == "default" or dev == bridge:
                continue
            try:
                covered = ipaddress.ip_network(dst, strict=False).overlaps(wanted)
            except ValueError:
                continue
            if covered:
                return (
                    f"lab network {spec.network} ({spec.subnet}): this machine already routes "
                    f"{dst} through {dev}, so the lab hosts would be unreachable; choose "
                    f"another --subnet or remove that route"
                )
        return ""

    def _check_route(self) -> None:
        """With the hosts up: the route to the first host must leave by the lab's bridge."""
        net = inspect("network", self.spec.network) or {}
        bridge = net.get("network_interface", "")
        host = self.spec.hosts[0]
        out = subprocess.run(
            ["ip", "-j", "route", "get", host.ip], capture_output=True, text=True, check=False
        )
        route = (json.loads(out.stdout or "[]") or [{}])[0] if out.returncode == 0 else {}
        if route.get("dev") != bridge:
            raise AirlockError(
                f"lab host {host.name} ({host.ip}): this machine routes to it through "
                f"{route.get('dev') or 'nothing'}, not the lab bridge {bridge or '?'}; run "
                f"`airlock lab down --name {self.spec.name}`, check `ip route`, then `lab up`"
            )

    def _check_subnet_free(self) -> None:
        wanted = ipaddress.IPv4Network(self.spec.subnet)
        for net in list_json("network"):
            for sub in net.get("subnets") or []:
                if ipaddress.ip_network(sub["subnet"]).overlaps(wanted):
                    raise AirlockError(
                        f"subnet {self.spec.subnet} overlaps podman network {net['name']} "
                        f"({sub['subnet']}); choose another with --subnet"
                    )

    def _lab_containers(self) -> dict[str, dict]:
        found = list_json("ps", f"label={LABEL}={self.spec.name}")
        return {c["Names"][0]: c for c in found}

    def _remove_extra_hosts(self) -> None:
        wanted = {self.spec.container(h) for h in self.spec.hosts}
        for name in sorted(set(self._lab_containers()) - wanted):
            remove_container(name)
            podman("volume", "rm", "-f", f"{name}-containerd", check=False)
            self.changed.append(f"removed host {name}")

    def _ensure_host(self, host: LabHost, image: str, key: Path) -> None:
        name = self.spec.container(host)
        info = inspect("container", name)
        if info is not None:
            self._check_same(host, info, image)
            if not info["State"]["Running"]:
                podman("start", name)
                self.changed.append(f"started {host.name}")
            return
        if inspect("volume", self.spec.volume(host)) is None:
            podman(
                "volume", "create", "--label", f"{LABEL}={self.spec.name}", self.spec.volume(host)
            )
        podman(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            host.name,
            "--network",
            self.spec.network,
            "--ip",
            host.ip,
            "--privileged",
            "--systemd=always",
            "--label",
            f"{LABEL}={self.spec.name}",
            "--label",
            f"io.airlock.role={host.role}",
            "--label",
            f"io.airlock.ip={host.ip}",
            "--label",
            f"io.airlock.home={project_root()}",
            "-v",
            f"{self.spec.volume(host)}:/var/lib/containerd",
            "-v",
            f"{key}.pub:/root/.ssh/authorized_keys:ro,Z",
            image,
            "/sbin/init",
        )
        self.changed.append(f"created {host.name} ({host.ip})")

    def _check_same(self, host: LabHost, info: dict, image: str) -> None:
        labels = info.get("Config", {}).get("Labels") or {}
        fix = f"run `airlock lab down --name {self.spec.name}`, then `lab up` again"
        home = labels.get("io.airlock.home")
        if home is not None and home != str(project_root()):
            raise AirlockError(
                f"lab host {host.name} ({self.spec.container(host)}) was made by the airlock "
                f"checkout at {home}, not this one; {fix}"
            )
        if labels.get("io.airlock.ip") != host.ip or info.get("ImageName") != image:
            raise AirlockError(
                f"lab host {host.name} exists with another address or image "
                f"({labels.get('io.airlock.ip')}, {info.get('ImageName')}); {fix}"
            )

    def _wait_booted(self) -> None:
        def ssh_active(name: str) -> bool:
            out = podman("exec", name, "systemctl", "is-active", "ssh", check=False)
            return out.strip() == "active"

        deadline = time.monotonic() + BOOT_DEADLINE_S
        pending = sorted(self.spec.container(h) for h in self.spec.hosts)
        with ThreadPoolExecutor(max_workers=8) as pool:
            while pending:
                states = pool.map(ssh_active, pending)
                pending = [n for n, up in zip(pending, states, strict=True) if not up]
                if pending and time.monotonic() > deadline:
                    raise AirlockError(
                        f"lab hosts {', '.join(pending)} did not start sshd within "
                        f"{BOOT_DEADLINE_S:.0f}s; inspect with `podman logs NAME` "
                        f"(CONTAINERS_CONF={state_dir() / 'containers.conf'})"
                    )
                if pending:
                    time.sleep(0.5)

    def _write_known_hosts(self) -> Path:
        def host_key(host: LabHost) -> str:
            pub = podman(
                "exec", self.spec.container(host), "cat", "/etc/ssh/ssh_host_ed25519_key.pub"
            )
            keytype, keydata = pub.split()[:2]
            return f"{host.ip} {keytype} {keydata}\n"

        with ThreadPoolExecutor(max_workers=8) as pool:
            content = "".join(pool.map(host_key, self.spec.hosts))
        path = lab_dir(self.spec.name) / "known_hosts"
        if not path.is_file() or path.read_text() != content:
            path.write_text(content)
        return path

    def _check_ssh(self, key: Path, known_hosts: Path) -> None:
        def attempt(host: LabHost) -> tuple[LabHost, subprocess.CompletedProcess]:
            cmd = [*ssh_command(key, known_hosts, host.ip), "true"]
            return host, ssh_until_up(cmd)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(attempt, self.spec.hosts))
        for host, proc in results:
            if proc.returncode != 0:
                detail = (
                    proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode
                )
                raise AirlockError(
                    f"lab host {host.name}: SSH to root@{host.ip} failed: {detail}; "
                    f"try `airlock lab down --name {self.spec.name}` and `lab up` again"
                )

    # ---- down / status / ssh ----------------------------------------------------------
    def down(self) -> list[str]:
        removed = []
        for name in sorted(self._lab_containers()):
            remove_container(name)
            removed.append(f"container {name}")
        for vol in list_json("volume", f"label={LABEL}={self.spec.name}"):
            podman("volume", "rm", "-f", vol["Name"])
            removed.append(f"volume {vol['Name']}")
        if inspect("network", self.spec.network) is not None:
            podman("network", "rm", "-f", self.spec.network)
            removed.append(f"network {self.spec.network}")
        state = state_dir() / "labs" / self.spec.name
        if state.exists():
            shutil.rmtree(state)
            removed.append(f"state {state}")
        inv = self.spec.inventory_dir
        if inv is not None and inv.exists() and (inv / "hosts.yml").is_file():
            shutil.rmtree(inv)
            removed.append(f"inventory {inv}")
        return removed

    def status(self) -> list[tuple[str, str, str, str]]:
        """(host, role, ip, state) of every container of this lab."""
        rows = []
        for name, info in sorted(self._lab_containers().items()):
            labels = info.get("Labels") or {}
            host = name.removeprefix(f"airlock-{self.spec.name}-")
            rows.append(
                (
                    host,
                    labels.get("io.airlock.role", "?"),
                    labels.get("io.airlock.ip", "?"),
                    info.get("State", "?"),
                )
            )
        return rows

    def ssh_argv(self, host_name: str, command: list[str]) -> list[str]:
        info = self._lab_containers().get(self.spec.container(host_name))
        key = lab_dir(self.spec.name) / "id_ed25519"
        known = lab_dir(self.spec.name) / "known_hosts"
        if info is None:
            names = ", ".join(row[0] for row in self.status()) or "none (run `airlock lab up`)"
            raise AirlockError(f"lab {self.spec.name} has no host {host_name!r}; hosts: {names}")
        if not key.is_file() or not known.is_file():
            raise AirlockError(f"lab {self.spec.name} is not up; run `airlock lab up` first")
        return ssh_command(key, known, (info.get("Labels") or {})["io.airlock.ip"]) + command


def _routes() -> list[dict]:
    """This machine's IPv4 routes (`ip -j -4 route show table main`), unreadable as none."""
    proc = subprocess.run(
        ["ip", "-j", "-4", "route", "show", "table", "main"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    except json.JSONDecodeError:
        return []
