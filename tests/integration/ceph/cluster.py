"""A real, throwaway Ceph cluster on loopback: one mon, one mgr, one bluestore OSD on a file.

Debian 12's Ceph 16 (Pacific) daemons, bootstrapped by hand as the Ceph docs' "manual
deployment" does: keyrings with ceph-authtool, a monmap with monmaptool, ``ceph-mon
--mkfs``, ``ceph osd new`` + ``ceph-osd --mkfs`` on a file (``bluestore block create``).
Everything lives in one directory: the conf, keyrings, data, sockets, logs, pid files;
the cluster has its own name and fsid and a random msgr2 port for its monitor, so it never
reads or touches /etc/ceph or /var/lib/ceph. Daemons run in the foreground (``-f``) as
children of the test process and are killed by ``stop()``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port

#: Programs the cluster needs and the Debian package of each (scripts/apt-packages).
PROGRAMS = {
    "ceph-mon": "ceph-mon",
    "ceph-mgr": "ceph-mgr",
    "ceph-osd": "ceph-osd",
    "ceph-authtool": "ceph-common",
    "monmaptool": "ceph-common",
    "ceph": "ceph-common",
    "rbd": "ceph-common",
}
READY_DEADLINE = 120.0

CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{port}]
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = {root}/run
admin socket = {root}/run/$cluster-$name.asok
pid file = {root}/run/$cluster-$name.pid
log file = {root}/log/$cluster-$name.log
crash dir = {root}/crash
mon data = {root}/mon/$cluster-$id
mgr data = {root}/mgr/$cluster-$id
osd data = {root}/osd/$cluster-$id
mon data avail warn = 1
mon data avail crit = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 1073741824
osd memory target = 939524096

[client]
keyring = {root}/keyrings/$cluster.$name.keyring

[mgr]
keyring = {root}/keyrings/$cluster.$name.keyring

[osd]
keyring = {root}/keyrings/$cluster.$name.keyring
"""


def missing_programs() -> list[str]:
    return [f"{p} ({pkg})" for p, pkg in PROGRAMS.items() if shutil.which(p) is None]


@dataclass
class CephCluster:
    root: Path
    name: str = field(default_factory=lambda: f"airlock{uuid.uuid4().hex[:8]}")
    fsid: str = field(default_factory=lambda: str(uuid.uuid4()))
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    # --- paths ----------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.root / f"{self.name}.conf"

    def keyring(self, entity: str) -> Path:
        return self.root / "keyrings" / f"{self.name}.{entity}.keyring"

    @property
    def admin_keyring(self) -> Path:
        return self.keyring("client.admin")

    def connection(self, **extra: Any) -> dict[str, Any]:
        """The ceph_* modules' connection options for this cluster as client.admin."""
        return {
            "cluster": self.name,
            "conf": str(self.conf),
            "keyring": str(self.admin_keyring),
            "connect_timeout": 10,
            **extra,
        }

    # --- running programs -----------------------------------------------------------
    def cli_args(self) -> list[str]:
        return ["--cluster", self.name, "--conf", str(self.conf)]

    def run(
        self, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "LC_ALL": "C"}
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, check=False, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr[-1500:]}"
                f"\n{self.logs()}"
            )
        return proc

    def ceph(
        self,
        *args: str,
        user: str = "client.admin",
        keyring: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """``ceph`` as ``user`` (admin by default) against this cluster."""
        key = keyring or self.keyring(user)
        return self.run(
            "ceph",
            *self.cli_args(),
            "--name",
            user,
            f"--keyring={key}",
            "--connect-timeout",
            "10",
            *args,
            check=check,
        )

    def ceph_json(self, *args: str) -> Any:
        return json.loads(self.ceph(*args, "--format", "json").stdout)

    def rbd(
        self,
        *args: str,
        user: str = "client.admin",
        keyring: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        key = keyring or self.keyring(user)
        return self.run(
            "rbd",
            *self.cli_args(),
            "--name",
            user,
            f"--keyring={key}",
            "--client_mount_timeout=10",
            *args,
            check=check,
        )

    def daemon(self, program: str, ident: str, *extra: str) -> None:
        log = open(self.root / "log" / f"{program}.{ident}.out", "ab")  # noqa: SIM115
        self.processes[f"{program}.{ident}"] = subprocess.Popen(
            [program, *self.cli_args(), "-i", ident, "-f", *extra],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LC_ALL": "C"},
        )

    # --- bootstrap ------------------------------------------------------------------
    def write_conf(self) -> None:
        for sub in ("run", "log", "crash", "mon", "mgr", "osd", "keyrings"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(fsid=self.fsid, port=self.port, root=self.root))

    def make_keyrings(self) -> Path:
        """The mon's keyring, holding every bootstrap key (admin, mgr.x, osd.0) and caps."""
        entities = {
            "client.admin": {
                "mon": "allow *",
                "osd": "allow *",
                "mds": "allow *",
                "mgr": "allow *",
            },
            "mgr.x": {"mon": "allow profile mgr", "osd": "allow *", "mds": "allow *"},
            "osd.0": {"mon": "allow profile osd", "mgr": "allow profile osd", "osd": "allow *"},
        }
        mon_keyring = self.root / "keyrings" / "mon.keyring"
        self.run(
            "ceph-authtool",
            "--create-keyring",
            str(mon_keyring),
            "--gen-key",
            "-n",
            "mon.",
            "--cap",
            "mon",
            "allow *",
        )
        for entity, caps in entities.items():
            path = self.keyring(entity)
            cap_args = [a for daemon, cap in caps.items() for a in ("--cap", daemon, cap)]
            self.run(
                "ceph-authtool", "--create-keyring", str(path), "--gen-key", "-n", entity, *cap_args
            )
            self.run("ceph-authtool", str(mon_keyring), "--import-keyring", str(path))
        return mon_keyring

    def start_mon(self, mon_keyring: Path) -> None:
        monmap = self.root / "monmap"
        self.run(
            "monmaptool",
            "--create",
            "--enable-all-features",
            "--fsid",
            self.fsid,
            "--addv",
            "a",
            f"[v2:127.0.0.1:{self.port}]",
            str(monmap),
        )
        self.run(
            "ceph-mon",
            *self.cli_args(),
            "--mkfs",
            "-i",
            "a",
            "--monmap",
            str(monmap),
            "--keyring",
            str(mon_keyring),
        )
        self.daemon("ceph-mon", "a")
        self.wait(
            "the monitor answers", lambda: self.ceph("mon", "stat", check=False).returncode == 0
        )

    def start_osd(self) -> None:
        osd_uuid = str(uuid.uuid4())
        self.ceph("osd", "new", osd_uuid, "0")
        (self.root / "osd" / f"{self.name}-0").mkdir(exist_ok=True)
        self.run(
            "ceph-osd", *self.cli_args(), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, timeout=120
        )
        self.daemon("ceph-osd", "0")

    def start_mgr(self) -> None:
        (self.root / "mgr" / f"{self.name}-x").mkdir(exist_ok=True)
        self.daemon("ceph-mgr", "x")

    def bootstrap(self) -> None:
        self.write_conf()
        self.start_mon(self.make_keyrings())
        self.start_mgr()
        self.start_osd()
        self.wait("HEALTH_OK with the OSD up and in", self.healthy)

    # --- readiness and teardown ---------------------------------------------------------
    def healthy(self) -> bool:
        proc = self.ceph("status", "--format", "json", check=False)
        if proc.returncode != 0:
            return False
        status = json.loads(proc.stdout)
        osdmap = status.get("osdmap", {})
        osdmap = osdmap.get("osdmap", osdmap)
        return (
            status.get("health", {}).get("status") == "HEALTH_OK"
            and osdmap.get("num_up_osds") == 1
            and osdmap.get("num_in_osds") == 1
        )

    def wait(self, what: str, ready: Any, deadline: float = READY_DEADLINE) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise AssertionError(
                        f"{name} exited ({proc.returncode}) while waiting for "
                        f"{what}:\n{self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.5)
        health = self.ceph("health", "detail", check=False)
        raise AssertionError(
            f"no {what} after {deadline:.0f}s: {health.stdout or health.stderr}\n{self.logs()}"
        )

    def logs(self, tail: int = 1500) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {path.name}\n{text[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Kill every daemon, whatever state it is in."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + 10
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
