"""Prints how `airlock check` and the host-preparation stage scale with the number of hosts.

    python benchmarks/fleet.py [--sizes 10,50,100] [--stages check,node] [--forks N]
                               [--strategy free] [--env KEY=VALUE ...] [--keep]

Hosts. For each size N it starts N fleet hosts: containers of the fleet image with
systemd as PID 1 and `--privileged`, like lab hosts, but running only journald and sshd
(dbus, logind and the timers are masked) and no containerd volume, so 100 fit beside a
lab. They sit on a podman network of their own (10.78.0.0/16) and are reached over SSH
with a key made for the run; the inventory (in .airlock/fleet/) makes the first host etcd
member, control plane, load balancer and bundle host, the others workers.

The fleet image (localhost/airlock-fleet:HASH, built once, with --network=none) is the
lab image (airlock.lab.image) plus the packages os_prep installs
(roles/os_prep/vars/Debian-12.yml) and what they depend on, installed from the .debs
the lab bundle build cached (`airlock bundle build --profile lab`), resolved against
that build's apt index. On a real site os_prep installs them from the bundle's apt
repository, which needs the bundle stage and a bundle host running nginx; here they are
already there, so os_prep's install task only finds them present: the first run is the
whole stage but the packages' download and unpack.

Stages, each run twice (first, then again as a no-op):
- check: `airlock check -i INV` (static rules, then the per-host checks over SSH).
- node: `airlock deploy -i INV --playbook playbooks/node.yml --tags os_prep`, the part of
  the node stage that makes sense on these hosts: role os_prep (kernel modules and
  sysctls, swap, /etc/hosts, the OS packages, chrony with the first host serving time).
  Its other role, containerd, needs the bundle's release files and is left out (only
  its argument check, tagged `always`, runs). The inventory sets nothing for os_prep:
  airlock_install_source keeps its default (bundle) and NTP its default (the first
  control-plane host serves time). A no-op reporting changed > 0 on any host is printed
  as a finding.
- prep: `airlock deploy -i INV --playbook benchmarks/fleet_prep.yml`: the same os_prep as a
  re-deploy runs the node stage, with node.yml's gate and record (docs/DEVELOPING.md,
  "Skipping converged stages"): its no-op is the gate finding every host as the first run
  left it. Run it without `node` before it (`--stages check,prep`) for a first run on fresh
  hosts; after `node` its first run finds os_prep's work done.

A stage's first run starts cold (no SSH master connections, an empty fact cache); the
second finds what the first left (ControlPersist masters, the fact cache), as a re-run on
the same controller would. The node table's `facts` counts the hosts whose facts a run
gathered rather than read from the cache. --forks, --strategy and --env set Ansible's
settings through its environment (ANSIBLE_FORKS, ANSIBLE_STRATEGY, any ANSIBLE_*), so
settings can be compared without editing ansible.cfg.

Columns: wall seconds; controller CPU seconds (the CLI, ansible-playbook, its forks and
their ssh clients from wait4, i.e. RUSAGE_CHILDREN of that one command, plus what the
detached SSH master processes spent during the run, read from /proc); peak MiB: the
highest sum of PSS over all those processes (sampled every 0.5 s) and the largest
single process (max RSS); host MiB: one host's memory from its cgroup after the stages,
mean over the hosts: what it holds (anonymous + shmem) / with the page cache charged to
it (reclaimable). The hosts are removed after each size unless --keep (then the last
size's stay, with their inventory). Numbers only: it never passes or fails on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AIRLOCK_HOME", str(ROOT))

from airlock.arch import host_arch  # noqa: E402
from airlock.bundle.build.download import Cache  # noqa: E402
from airlock.bundle.pin.aptroot import AptRoot  # noqa: E402
from airlock.lab.bundle.profile import LAB_DISTRO  # noqa: E402
from airlock.lab.hosts import KERNEL_LIMITS, ssh_until_up  # noqa: E402
from airlock.lab.image import ensure_image  # noqa: E402
from airlock.lab.spec import BOOT_DEADLINE_S  # noqa: E402
from airlock.paths import state_dir  # noqa: E402
from airlock.podman import podman, podman_ok  # noqa: E402
from airlock.runner import RUN_DIR_LINE, facts_dir  # noqa: E402

AIRLOCK = str(Path(sys.executable).parent / "airlock")
NETWORK = "airlock-fleet"
SUBNET = "10.78.0.0/16"
PREFIX = "airlock-fleet-"
FLEET_REPO = "localhost/airlock-fleet"
OS_PREP_VARS = ROOT / "roles" / "os_prep" / "vars" / "Debian-12.yml"
STAGES: dict[str, list[str]] = {
    "check": ["check"],
    "node": ["deploy", "--playbook", "playbooks/node.yml", "--tags", "os_prep"],
    "prep": ["deploy", "--playbook", "benchmarks/fleet_prep.yml"],
}
PREP_STAGES = ("node", "prep")
# What the lab image starts besides journald and sshd; none of it is needed to be a host
# Ansible manages (systemctl reaches systemd over its private socket, without dbus).
MASKED = (
    "dbus.service",
    "dbus.socket",
    "systemd-logind.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "systemd-tmpfiles-clean.timer",
)
# Runs in the image build with the .debs bound at /debs: installs each one the lab image
# lacks or has older (apt resolves among the files: no index, no network), checks that
# every os_prep package is installed, masks MASKED and leaves apt's binary cache built
# (apt-get update leaves it on a real host): otherwise os_prep's apt task builds a 69 MiB
# one in every host's upper layer (page cache charged to each host).
INSTALL = """\
set -eu
want=""
for deb in /debs/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  new=$(dpkg-deb -f "$deb" Version)
  old=$(dpkg-query -W -f '${{Version}}' "$pkg" 2>/dev/null || true)
  if [ -z "$old" ] || dpkg --compare-versions "$new" gt "$old"; then want="$want $deb"; fi
done
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $want
for pkg in {packages}; do
  status=$(dpkg-query -W -f '${{db:Status-Abbrev}}' "$pkg")
  case "$status" in ii*) ;; *) echo "$pkg is not installed"; exit 1 ;; esac
done
for unit in {masked}; do ln -sf /dev/null "/etc/systemd/system/$unit"; done
apt-get clean
apt-cache gencaches
"""
CONTAINERFILE = "FROM {base}\nRUN --mount=type=bind,target=/debs sh /debs/install.sh\n"
# inotify instances one fleet host's systemd and journald hold (7 measured with dbus and
# logind), on top of what the lab asks for the machine (KERNEL_LIMITS).
INOTIFY_PER_HOST = 8
TICKS = os.sysconf("SC_CLK_TCK")
Log = Callable[[str], None]


# ---- the fleet image -----------------------------------------------------------------
def os_prep_packages() -> list[str]:
    """The packages os_prep installs on Debian 12, read from the role itself."""
    return list(yaml.safe_load(OS_PREP_VARS.read_text())["_os_prep_packages"])


def cached_debs(packages: Sequence[str]) -> dict[str, Path]:
    """`packages` and their dependencies: .debs in the bundle build's download cache.

    Resolved (offline) by the apt root the lab bundle build resolved its packages with
    (airlock/lab/bundle/profile.py `_resolve_debs`), so they are the bundle's versions."""
    arch = host_arch()
    root = AptRoot(state_dir() / "cache" / "lab" / "apt" / f"{LAB_DISTRO}-{arch}", arch, "lab")
    cache = Cache(state_dir() / "cache" / "bundle")
    fix = "build the lab bundle first: airlock bundle build --profile lab"
    if not root.config.is_file():
        raise SystemExit(f"fleet: no lab apt index in {root.root}; {fix}")
    debs = root.resolve(packages)
    missing = [d.filename for d in debs if not cache.has(d.sha256)]
    if missing:
        raise SystemExit(f"fleet: {', '.join(missing)} not in {cache.root}; {fix}")
    return {d.filename: cache.path_for(d.sha256) for d in debs}


def fleet_image(log: Log) -> str:
    """The lab image with os_prep's packages installed and the extra units masked."""
    base = ensure_image(log)
    packages = os_prep_packages()
    debs = cached_debs(packages)
    script = INSTALL.format(packages=" ".join(packages), masked=" ".join(MASKED))
    recipe = "\n".join([base, CONTAINERFILE, script, *sorted(p.name for p in debs.values())])
    tag = f"{FLEET_REPO}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    if podman_ok("image", "exists", tag):
        return tag
    started = time.monotonic()
    log(f"building {tag}: {len(debs)} .debs from the lab bundle's cache, offline")
    with tempfile.TemporaryDirectory(dir=state_dir() / "cache", prefix="fleet-") as tmp:
        context = Path(tmp)
        for filename, path in debs.items():
            _link(path, context / filename)
        (context / "install.sh").write_text(script)
        (context / "Containerfile").write_text(CONTAINERFILE.format(base=base))
        podman(
            "build", "--network=none", "--layers=false", "-t", tag,
            "-f", str(context / "Containerfile"), str(context),
        )  # fmt: skip
    log(f"fleet image built in {time.monotonic() - started:.0f}s")
    return tag


def _link(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


# ---- hosts ---------------------------------------------------------------------------
def address(index: int) -> str:
    return f"10.78.{index // 250 + 1}.{index % 250 + 1}"


def ensure_inotify(count: int) -> None:
    """Every host's systemd holds inotify instances, counted per user machine-wide."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    wanted = KERNEL_LIMITS["fs.inotify.max_user_instances"] + INOTIFY_PER_HOST * count
    if int(path.read_text()) >= wanted:
        return
    try:
        path.write_text(f"{wanted}\n")
    except OSError as exc:
        raise SystemExit(
            f"fleet: fs.inotify.max_user_instances is below {wanted} ({exc}); as root run "
            f"`sysctl -w fs.inotify.max_user_instances={wanted}`"
        ) from exc
    print(f"raised fs.inotify.max_user_instances to {wanted}", flush=True)


def start_hosts(count: int, image: str, pubkey: Path) -> list[str]:
    names = [f"h{i:03d}" for i in range(1, count + 1)]
    for index, name in enumerate(names):
        podman(
            "run", "-d", "--name", PREFIX + name, "--hostname", name, "--network", NETWORK,
            "--ip", address(index), "--privileged", "--systemd=always",
            "-v", f"{pubkey}:/root/.ssh/authorized_keys:ro", image, "/sbin/init",
        )  # fmt: skip
    return names


def ssh_argv(key: Path, known_hosts: Path, ip: str) -> list[str]:
    return [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", f"root@{ip}",
    ]  # fmt: skip


def wait_for_ssh(count: int, key: Path, known_hosts: Path) -> None:
    """Until every host answers over SSH (systemd boots, then sshd); records host keys."""

    def attempt(index: int) -> subprocess.CompletedProcess:
        cmd = [*ssh_argv(key, known_hosts, address(index)), "true"]
        return ssh_until_up(cmd, deadline_s=BOOT_DEADLINE_S, pause_s=1.0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(count)))
    failed = [(address(i), p.stderr.strip()) for i, p in enumerate(results) if p.returncode]
    if failed:
        raise SystemExit(f"fleet: SSH failed to {len(failed)} hosts, first {failed[0]}")


def remove_hosts() -> None:
    listed = podman("ps", "-aq", "--filter", f"name=^{PREFIX}", check=False).split()
    if listed:
        podman("rm", "-f", "-t", "0", *listed, check=False)


def host_memory_mib() -> tuple[float, float]:
    """One fleet host's memory, mean over the hosts, from its cgroup: what it holds that
    cannot be reclaimed (anonymous + shmem, e.g. the journal on tmpfs) and all it is
    charged for (with the page cache of what it read and wrote)."""
    ids = podman("ps", "-q", "--no-trunc", "--filter", f"name=^{PREFIX}", check=False).split()
    paths = podman("inspect", "--format", "{{.State.CgroupPath}}", *ids).split() if ids else []
    held = [_cgroup_memory(path) for path in paths]
    if not held:
        return 0.0, 0.0
    return (
        sum(h[0] for h in held) / len(held) / 2**20,
        sum(h[1] for h in held) / len(held) / 2**20,
    )


def _cgroup_memory(path: str) -> tuple[int, int]:
    """(anonymous + shmem, total) bytes of one cgroup, cgroup v1 or v2."""
    v1 = Path("/sys/fs/cgroup/memory")
    base = (v1 if v1.is_dir() else Path("/sys/fs/cgroup")) / path.lstrip("/")
    try:
        stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
        if v1.is_dir():
            total = int((base / "memory.usage_in_bytes").read_text())
            return int(stat["total_rss"]) + int(stat["total_shmem"]), total
        return int(stat["anon"]) + int(stat["shmem"]), int((base / "memory.current").read_text())
    except (OSError, KeyError, ValueError):
        return 0, 0


def inventory(directory: Path, names: list[str], key: Path, known_hosts: Path) -> Path:
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
    # SSH multiplexing is left to ansible.cfg (ControlPersist), as for any inventory.
    (directory / "group_vars" / "all" / "fleet.yml").write_text(
        "---\n"
        "airlock_cluster_name: fleet\n"
        f"airlock_host_cidr: {SUBNET}\n"
        "airlock_min_free_gb: 1\n"
        "ansible_user: root\n"
        f"ansible_ssh_private_key_file: {key}\n"
        f"ansible_ssh_common_args: -o UserKnownHostsFile={known_hosts} "
        "-o StrictHostKeyChecking=accept-new\n"
    )
    return directory


# ---- measuring one command -----------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cpu: float
    cmdline: bytes


def processes() -> list[Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        found.append(Proc(int(entry.name), int(fields[1]), cpu, cmdline))
    return found


def ssh_masters(procs: list[Proc], control_dir: Path) -> list[Proc]:
    """OpenSSH's ControlPersist masters for `control_dir`: they detach from Ansible, so
    neither wait4 nor the process tree sees them ("ssh: DIR/HASH [mux]")."""
    mark = str(control_dir).encode()
    return [p for p in procs if p.cmdline.startswith(b"ssh: ") and mark in p.cmdline]


def masters_cpu(control_dir: Path) -> float:
    return sum(p.cpu for p in ssh_masters(processes(), control_dir))


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pss_mib(root: int, control_dir: Path) -> float:
    procs = processes()
    children: dict[int, list[int]] = defaultdict(list)
    for proc in procs:
        children[proc.ppid].append(proc.pid)
    pids, todo = set(), [root]
    while todo:
        pid = todo.pop()
        pids.add(pid)
        todo.extend(children[pid])
    pids |= {p.pid for p in ssh_masters(procs, control_dir)}
    return sum(_pss_kib(pid) for pid in pids) / 1024


class PeakPss(threading.Thread):
    """Samples the summed PSS of a process tree (and the SSH masters) until stopped."""

    def __init__(self, root: int, control_dir: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.control_dir = root, control_dir
        self.peak = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_pss_mib(self.root, self.control_dir))
            if self.done.wait(0.5):
                return


@dataclass
class Run:
    wall: float
    cpu: float
    pss_mib: float
    rss_mib: float
    rc: int
    output: str
    changed: dict[str, int] = field(default_factory=dict)  # node: host -> changed tasks
    failed: list[str] = field(default_factory=list)  # node: failed or unreachable hosts
    changed_tasks: list[str] = field(default_factory=list)
    gathered: int = 0  # node: hosts whose facts were gathered (not read from the cache)


def measured(argv: list[str], env: dict[str, str], control_dir: Path) -> Run:
    """Run `argv`; its wall time, CPU (with the SSH masters'), peak PSS and max RSS."""
    masters_before = masters_cpu(control_dir)
    with tempfile.TemporaryFile("w+") as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        sampler = PeakPss(proc.pid, control_dir)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
        out.seek(0)
        output = out.read()
    cpu = usage.ru_utime + usage.ru_stime + masters_cpu(control_dir) - masters_before
    return Run(wall, cpu, sampler.peak, usage.ru_maxrss / 1024, proc.returncode, output)


def close_masters(control_dir: Path) -> None:
    for socket in control_dir.glob("*"):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "fleet"],
            capture_output=True, check=False,
        )  # fmt: skip


# ---- stages --------------------------------------------------------------------------
def run_stage(stage: str, inv: Path, env: dict[str, str], control_dir: Path) -> Run:
    verb, *rest = STAGES[stage]
    run = measured([AIRLOCK, verb, "-i", str(inv), *rest], env, control_dir)
    if stage in PREP_STAGES:
        _read_node_results(run)
    expected = (0,) if stage in PREP_STAGES else (0, 1)
    if run.rc not in expected or os.environ.get("FLEET_DEBUG"):
        print(run.output[-3000:], file=sys.stderr)
    return run


def _read_node_results(run: Run) -> None:
    """Per-host changed counts and the changed tasks, from the run's directory."""
    lines = [line for line in run.output.splitlines() if RUN_DIR_LINE in line]
    if not lines:
        return
    run_dir = Path(lines[-1].split(RUN_DIR_LINE, 1)[1].strip())
    stats = json.loads((run_dir / "summary.json").read_text())["stats"]
    run.changed = {host: s["changed"] for host, s in stats.items()}
    run.failed = [host for host, s in stats.items() if s["failures"] or s["dark"]]
    tasks = set()
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok":
            continue
        if (data.get("res") or {}).get("changed"):
            tasks.add(data.get("task", "?"))
        run.gathered += data.get("task") == "Gathering Facts"
    run.changed_tasks = sorted(tasks)


@dataclass
class SizeResult:
    size: int
    up: float
    host_mib: tuple[float, float]  # (held, with page cache)
    runs: dict[str, tuple[Run, Run]]


def measure_size(
    size: int, image: str, work: Path, env: dict[str, str], stages: list[str]
) -> SizeResult:
    key, known_hosts = work / "id_ed25519", work / f"known_hosts-{size}"
    control_dir = Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"])
    started = time.monotonic()
    names = start_hosts(size, image, key.with_suffix(".pub"))
    wait_for_ssh(size, key, known_hosts)
    up = time.monotonic() - started
    inv = inventory(work / f"inv-{size}", names, key, known_hosts)
    runs = {}
    for stage in stages:
        close_masters(control_dir)
        shutil.rmtree(facts_dir(inv), ignore_errors=True)
        first = run_stage(stage, inv, env, control_dir)
        again = run_stage(stage, inv, env, control_dir)
        runs[stage] = (first, again)
        print(f"{size} hosts: {stage} {_brief(first)}; again {_brief(again)}", flush=True)
    result = SizeResult(size, up, host_memory_mib(), runs)
    close_masters(control_dir)
    shutil.rmtree(facts_dir(inv), ignore_errors=True)
    return result


def _brief(run: Run) -> str:
    text = f"{run.wall:.1f}s, CPU {run.cpu:.1f}s, exit {run.rc}"
    if run.changed:
        text += f", changed {sum(run.changed.values())} on {_changed_hosts(run)} hosts"
    return text


def _changed_hosts(run: Run) -> int:
    return sum(1 for count in run.changed.values() if count)


# ---- report --------------------------------------------------------------------------
def print_report(results: list[SizeResult], stages: list[str], settings: str) -> None:
    print(f"\nfleet on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, {settings}")
    print("first run cold (no SSH masters, no cached facts); again = the no-op right after;")
    print("node, prep: chg/hosts = changed tasks / hosts with any; facts = hosts gathering facts")
    head = "  wall(s) CPU(s) PSS MiB RSS MiB"
    for stage in stages:
        extra = "  chg/hosts fail facts" if stage in PREP_STAGES else "  exit"
        print(f"\n{stage}: {' '.join(STAGES[stage])}")
        print(f"hosts  up(s)  host MiB  |{head}{extra} |{head}{extra}")
        for res in results:
            first, again = res.runs[stage]
            print(
                f"{res.size:>5}  {res.up:>5.0f}  {res.host_mib[0]:>4.0f}/{res.host_mib[1]:<4.0f} |"
                f"{_columns(first, stage)} |{_columns(again, stage)}"
            )
    _print_findings(results)


def _columns(run: Run, stage: str) -> str:
    text = f"  {run.wall:>7.1f} {run.cpu:>6.1f} {run.pss_mib:>7.0f} {run.rss_mib:>7.0f}"
    if stage in PREP_STAGES:
        changed = f"{sum(run.changed.values())}/{_changed_hosts(run)}"
        return text + f"  {changed:>9} {len(run.failed):>4} {run.gathered:>5}"
    return text + f"  {run.rc:>4}"


def _print_findings(results: list[SizeResult]) -> None:
    for res in results:
        for stage in PREP_STAGES:
            if stage in res.runs:
                _print_stage_findings(res.size, stage, *res.runs[stage])


def _print_stage_findings(size: int, stage: str, first: Run, again: Run) -> None:
    print(f"{size} hosts: {stage} first run changed: {'; '.join(first.changed_tasks)}")
    if first.rc or first.failed:
        print(f"FINDING: {size} hosts: {stage} first run exit {first.rc}, "
              f"failed on {', '.join(first.failed) or '?'}")  # fmt: skip
    if again.rc or _changed_hosts(again) or again.failed or not again.changed:
        hosts = sorted(h for h, n in again.changed.items() if n)
        print(
            f"FINDING: {size} hosts: {stage} no-op exit {again.rc}, changed on "
            f"{len(hosts)} hosts ({', '.join(hosts[:5])}), tasks: "
            f"{'; '.join(again.changed_tasks) or '-'}"
        )


# ---- main ----------------------------------------------------------------------------
def ansible_env(args: argparse.Namespace, control_dir: Path) -> dict[str, str]:
    env = dict(os.environ, AIRLOCK_HOME=str(ROOT), ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir))
    if args.forks:
        env["ANSIBLE_FORKS"] = str(args.forks)
    if args.strategy:
        env["ANSIBLE_STRATEGY"] = args.strategy
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"fleet: --env {item}: give KEY=VALUE")
        env[name] = value
    return env


def settings_line(env: dict[str, str], args: argparse.Namespace) -> str:
    forks = env.get("ANSIBLE_FORKS", "ansible.cfg's")
    parts = [f"forks {forks}", f"strategy {env.get('ANSIBLE_STRATEGY', 'linear')}"]
    return ", ".join(parts + list(args.env))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100", help="host counts, e.g. 10,50,100")
    parser.add_argument("--stages", default="check,node,prep", help="of: check, node, prep")
    parser.add_argument("--forks", type=int, default=0, help="ANSIBLE_FORKS (ansible.cfg: 20)")
    parser.add_argument("--strategy", default="", help="ANSIBLE_STRATEGY: linear, free, ...")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="another environment variable for the runs (e.g. ANSIBLE_SSH_ARGS=...)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the last size's hosts")
    args = parser.parse_args()
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown or not args.stages:
        parser.error(f"--stages: one or more of {', '.join(STAGES)}")
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


def main() -> int:
    args = parse_args()
    image = fleet_image(print)
    print(f"fleet image {image}: os_prep's packages are preinstalled (from the lab "
          "bundle's .debs), so the node stage's first run is all of os_prep but the "
          "package download and unpack", flush=True)  # fmt: skip
    ensure_inotify(max(args.sizes))
    work = state_dir() / "fleet"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    control_dir = work / "cp"
    control_dir.mkdir()
    env = ansible_env(args, control_dir)
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    remove_hosts()
    podman("network", "rm", "-f", NETWORK, check=False)
    podman("network", "create", "--subnet", SUBNET, NETWORK)
    results = []
    try:
        for size in args.sizes:
            results.append(measure_size(size, image, work, env, args.stages))
            if not (args.keep and size == args.sizes[-1]):
                remove_hosts()
    finally:
        if not args.keep:
            remove_hosts()
            podman("network", "rm", "-f", NETWORK, check=False)
            shutil.rmtree(work, ignore_errors=True)
    print_report(results, args.stages, settings_line(env, args))
    if args.keep:
        print(f"\nkept: {args.sizes[-1]} hosts, inventory {work / f'inv-{args.sizes[-1]}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
