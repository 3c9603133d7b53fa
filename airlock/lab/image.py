"""The lab host image: Debian 12 with systemd, sshd and python3, built offline here.

Built from Debian's archive with debootstrap (no registry pull), imported into podman,
and tagged with a hash of this recipe: a second `lab up` reuses it, and changing the
recipe builds a new one.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airlock.errors import AirlockError, CommandError
from airlock.paths import state_dir
from airlock.podman import podman_env, podman_ok, require_podman

SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
    "sudo",
    "ca-certificates",
    "curl",
    "kmod",
    "gnupg",
    "less",
)
APT_SOURCES = f"""\
deb http://deb.debian.org/debian {SUITE} main
deb http://deb.debian.org/debian {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""
# sshd host keys are made at first boot, so no two lab hosts share them.
HOSTKEY_UNIT = """\
[Unit]
Description=Generate this host's own SSH host keys (airlock lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""
# Podman gives a lab host a private cgroup namespace for every cgroup-v1 controller but
# not for the named systemd hierarchy nor the cgroup2 "unified" one (hybrid mode): there
# PID 1 sees its full host path (/libpod_parent/libpod-ID), so systemd creates
# kubepods.slice under that path while the kubelet, reading "/" from the other
# controllers, looks for /sys/fs/cgroup/systemd/kubepods.slice and refuses to start
# ("cgroup [kubepods] has some missing paths"), and runc >= 1.2 adds every exec'd process
# to /sys/fs/cgroup/unified/kubepods.slice/... as well (`kubectl exec` fails: "error adding
# pid to cgroups ... no such file or directory"). At boot, re-root each of the two mounts
# at the host's own cgroup and bind it below itself again at the full path, so both views
# name the same cgroups (the way kind prepares its nodes on cgroup v1). A lab-only fix:
# real hosts do not need it.
CGROUP_SCRIPT = """\
#!/bin/sh
set -eu
# $1: this hierarchy's prefix in /proc/1/cgroup; $2: where it is mounted.
reroot() {
  own=$(sed -n "s|^$1||p" /proc/1/cgroup)
  own=${own%/init.scope}
  case "$own" in ""|/) return 0 ;; esac
  [ -d "$2$own" ] || return 0
  mount --bind "$2$own" "$2"
  mkdir -p "$2$own"
  mount --bind "$2" "$2$own"
}
reroot '[0-9]*:name=systemd:' /sys/fs/cgroup/systemd
if [ -d /sys/fs/cgroup/unified ]; then reroot '0::' /sys/fs/cgroup/unified; fi
"""
CGROUP_UNIT = """\
[Unit]
Description=Re-root the named systemd and unified cgroup hierarchies (airlock lab)
DefaultDependencies=no
Before=sysinit.target
ConditionPathExists=!/run/airlock-lab-cgroups

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/airlock-lab-cgroups
ExecStartPost=/usr/bin/touch /run/airlock-lab-cgroups

[Install]
WantedBy=sysinit.target
"""
SSHD_CONFIG = "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
RECIPE_VERSION = "5"


def image_tag() -> str:
    parts = (APT_SOURCES, HOSTKEY_UNIT, SSHD_CONFIG, CGROUP_SCRIPT, CGROUP_UNIT)
    recipe = "\n".join([RECIPE_VERSION, SUITE, *PACKAGES, *parts])
    return f"localhost/airlock-lab:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_image(log: Callable[[str], None]) -> str:
    """Return the lab image tag, building it first when it is not in podman's store."""
    tag = image_tag()
    if podman_ok("image", "exists", tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise AirlockError(
            "debootstrap is not installed; run scripts/bootstrap (or apt-get install debootstrap)"
        )
    started = time.monotonic()
    log(f"building lab image {tag} from Debian {SUITE} packages (once; about a minute)")
    work = state_dir() / "cache"
    work.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(rootfs)
        _configure_rootfs(rootfs)
        _import(rootfs, tag)
    log(f"lab image built in {time.monotonic() - started:.0f}s")
    return tag


def _debootstrap(rootfs: Path) -> None:
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(rootfs),
        "http://deb.debian.org/debian",
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise CommandError(
            cmd,
            proc.returncode,
            proc.stdout.decode(errors="replace")[-2000:],
            hint="check that Debian's archive is reachable (apt-get update works)",
        )


def _configure_rootfs(rootfs: Path) -> None:
    (rootfs / "etc/apt/sources.list").write_text(APT_SOURCES)
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/ssh/sshd_config.d/airlock-lab.conf").write_text(SSHD_CONFIG)
    unit = rootfs / "etc/systemd/system/airlock-ssh-hostkeys.service"
    unit.write_text(HOSTKEY_UNIT)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
    script = rootfs / "usr/local/sbin/airlock-lab-cgroups"
    script.write_text(CGROUP_SCRIPT)
    script.chmod(0o755)
    cgroup_unit = rootfs / "etc/systemd/system/airlock-lab-cgroups.service"
    cgroup_unit.write_text(CGROUP_UNIT)
    sysinit = rootfs / "etc/systemd/system/sysinit.target.wants"
    sysinit.mkdir(parents=True, exist_ok=True)
    (sysinit / cgroup_unit.name).symlink_to(f"/etc/systemd/system/{cgroup_unit.name}")
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)


def _import(rootfs: Path, tag: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    cmd = [
        require_podman(),
        "import",
        "--change",
        'CMD ["/sbin/init"]',
        "--change",
        "STOPSIGNAL=SIGRTMIN+3",
        "-",
        tag,
    ]
    proc = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, env=podman_env(), check=False)
    if tar.stdout is not None:
        tar.stdout.close()
    tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stderr.decode(errors="replace"))
