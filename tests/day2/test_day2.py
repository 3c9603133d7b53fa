"""`make e2e-day2`: day-2 operations on a deployed --internal 3+2 lab.

One lab, deployed from the lab bundle without w2, then in order (each step leaves the
cluster whole for the next):
0. `airlock node add w2` with 100 further workers in the inventory that do not exist: w2
   joins, and the run touches w2 and the first control plane only (timed);
1. `airlock certs status` lists every certificate and exits 0;
2. m2's apiserver certificate is re-issued by kubeadm to expire in 5 days: `certs status`
   exits 1 and names it; `airlock certs renew` renews it while a probe asks the API's
   /readyz through the VIP every 0.5 s (failed probes are printed and must be zero), then
   `certs status` exits 0, m2's apiserver serves the new certificate, and a second renew
   changes nothing; `certs renew --all` then re-issues every leaf certificate (etcd's too,
   members restarted one at a time) with the API probed the same way, and no CA;
3. a ConfigMap is written, `airlock backup` makes one 0600 archive, a second ConfigMap is
   written, etcd is wiped on every member (stopped, data removed), and
   `airlock restore --yes` brings back the first ConfigMap and not the second, with every
   node Ready;
4. `airlock reset --limit w2 --yes` leaves w2 without Kubernetes, containerd, the pod
   network's interfaces and iptables chains, and its Node object gone; a second reset
   changes nothing; `airlock node add w2` joins it again;
5. a fourth control plane m4 (a new lab host; not an etcd member, etcd keeps 3) is added
   with `airlock node add m4`, then removed with `airlock node remove m4`, with the API
   probed through the VIP throughout (no failed probe): m4 becomes a Node and a backend of
   every haproxy, and afterwards neither, m4 itself reset;
6. m3's container is destroyed: `node remove m3` refuses (unreachable), `node remove
   --dead m2` refuses (etcd would lose quorum), `node remove --dead m3` removes its Node
   and etcd member, a new m3 host joins with `node add m3` with new etcd certificates;
7. w1's container is stopped and `node remove --dead w1` deletes its Node;
8. `airlock reset --yes` (no --limit) takes a final backup and leaves every host without
   Kubernetes, etcd, haproxy, keepalived, containerd and the bundle server; a second reset
   changes nothing, and `airlock deploy` makes a working cluster on the hosts again.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, lab_hosts, run_airlock
from tests.e2e.conftest import _bundle, _program_from
from tests.faults.test_interrupted_deploy import _changed_tasks
from tests.probes import api_context, watching

pytestmark = pytest.mark.e2e
LAB = "day2"
SUBNET = "10.77.47.0/24"
INVENTORY = ROOT / ".airlock" / "labs" / LAB / "inventory"
KUBECONFIG = INVENTORY / ".credentials" / "kubernetes" / "admin.conf"


def _exec(host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    proc = subprocess.run(
        ["podman", "exec", f"airlock-{LAB}-{host}", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.stderr}"
    return proc


def _kubectl(kubectl: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(kubectl), "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def _serving_not_after(ip: str, context: ssl.SSLContext) -> str:
    """notAfter of the certificate an apiserver serves (verified against the cluster CA)."""
    with (
        socket.create_connection((ip, 6443), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=ip) as tls,
    ):
        return str(tls.getpeercert()["notAfter"])


def _expiries(table: str) -> dict[tuple[str, str], str]:
    """(host, certificate) -> not-after, from the table `airlock certs` prints."""
    found = {}
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 6 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells[4]):
            found[(cells[0], cells[1])] = cells[4]
    assert found, f"no certificate rows in:\n{table[-2000:]}"
    return found


def _newest_run(playbook: str) -> Path:
    runs = sorted((ROOT / ".airlock" / "runs").glob(f"*-{playbook}"), key=lambda p: p.name)
    for run in reversed(runs):
        # summary.json's reproduce command names the inventory (events may not: reset's)
        summary = run / "summary.json"
        if summary.is_file() and f"labs/{LAB}/inventory" in summary.read_text(errors="replace"):
            return run
    raise AssertionError(f"no {playbook} run of this lab in .airlock/runs")


def _wait_nodes_ready(kubectl: Path, timeout: float = 600, count: int = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = _kubectl(kubectl, "get", "nodes", "-o", "json", check=False)
        if proc.returncode == 0:
            nodes = json.loads(proc.stdout)["items"]
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n["status"]["conditions"]
                )
            ]
            if len(nodes) == count and len(ready) == count:
                return
        time.sleep(5)
    raise AssertionError(f"not {count} nodes Ready within {timeout}s")


def _hosts_of_run(run: Path) -> set[str]:
    hosts = set()
    for line in (run / "events.jsonl").read_text().splitlines():
        host = (json.loads(line).get("event_data") or {}).get("host")
        if host:
            hosts.add(host)
    return hosts


def _node_add(kubectl: Path) -> None:
    phantoms = INVENTORY / "phantoms.yml"
    prefix = SUBNET.rsplit(".", 1)[0]
    hosts = {
        f"p{i:03d}": {"ansible_host": f"{prefix}.{100 + i}", "ip": f"{prefix}.{100 + i}"}
        for i in range(100)
    }
    phantoms.write_text(json.dumps({"all": {"children": {"kube_node": {"hosts": hosts}}}}))
    try:
        started = time.monotonic()
        add = run_airlock("node", "add", "-i", str(INVENTORY), "w2", timeout=1800)
        elapsed = time.monotonic() - started
    finally:
        phantoms.unlink()
    assert add.returncode == 0, add.stdout[-6000:] + add.stderr
    touched = _hosts_of_run(_newest_run("site"))
    print(
        f"\n--- airlock node add w2 (105 hosts in the inventory): {elapsed:.0f}s, "
        f"hosts touched: {sorted(touched)}"
    )
    assert touched == {"w2", "m1"}, touched
    _wait_nodes_ready(kubectl)


def _certs(kubectl: Path, vip: str, context: ssl.SSLContext) -> None:
    status = run_airlock("certs", "status", "-i", str(INVENTORY), timeout=600)
    print(f"\n--- airlock certs status\n{status.stdout}")
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr
    assert "none expires within 30 days" in status.stdout

    short = (
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
        "certificateValidityPeriod: 120h\n"
    )
    _exec("m2", "sh", "-c", f"printf '%s' '{short}' > /root/short.yaml")
    _exec("m2", "kubeadm", "certs", "renew", "apiserver", "--config", "/root/short.yaml")
    expiring = run_airlock("certs", "status", "-i", str(INVENTORY), timeout=600)
    print("\n--- airlock certs status, m2's apiserver certificate made to expire in 5 days")
    print(expiring.stdout)
    assert expiring.returncode == 1, expiring.stdout[-3000:] + expiring.stderr
    flagged = [line for line in expiring.stdout.splitlines() if "<-- expiring" in line]
    assert len(flagged) == 1 and flagged[0].startswith("m2 ") and "apiserver.crt" in flagged[0]

    with watching(_readyz(vip), 0.5, context, "airlock certs renew, the API") as api:
        renew = run_airlock("certs", "renew", "-i", str(INVENTORY), timeout=1800)
    assert renew.returncode == 0, renew.stdout[-6000:] + renew.stderr
    assert "none expires within 30 days" in renew.stdout
    assert api.failed == 0, api.failures
    m2_ip = SUBNET.rsplit(".", 1)[0] + ".12"
    days = (ssl.cert_time_to_seconds(_serving_not_after(m2_ip, context)) - time.time()) / 86400
    assert days > 300, f"m2's apiserver serves a certificate with {days:.0f} days left"
    again = run_airlock("certs", "renew", "-i", str(INVENTORY), timeout=1800)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = _changed_tasks(_newest_run("certs-renew"))
    assert changed == [], f"a second renew changed: {changed}"

    before = _expiries(again.stdout)
    with watching(_readyz(vip), 0.5, context, "airlock certs renew --all, the API") as api:
        everything = run_airlock("certs", "renew", "-i", str(INVENTORY), "--all", timeout=2400)
    assert everything.returncode == 0, everything.stdout[-6000:] + everything.stderr
    after = _expiries(everything.stdout)
    # Every leaf certificate was re-issued (CAs never; the kubelet's client certificate
    # rotates itself), so each expires later than before.
    stale = [
        key
        for key, not_after in before.items()
        if "(CA)" not in key[1]
        and "kubelet-client-current" not in key[1]
        and after.get(key, "") <= not_after
    ]
    assert not stale, f"not renewed by --all: {stale}"
    assert all(after[key] == not_after for key, not_after in before.items() if "(CA)" in key[1])
    assert api.failed == 0, api.failures
    _wait_nodes_ready(kubectl)


def _backup_and_restore(kubectl: Path) -> None:
    _kubectl(kubectl, "create", "configmap", "before-backup", "--from-literal=kept=yes")
    backup = run_airlock("backup", "-i", str(INVENTORY), timeout=1200)
    assert backup.returncode == 0, backup.stdout[-4000:] + backup.stderr
    archives = sorted((INVENTORY / ".backups").glob("airlock-backup-*.tar.gz"))
    assert len(archives) == 1, archives
    assert archives[0].stat().st_mode & 0o777 == 0o600
    _kubectl(kubectl, "create", "configmap", "after-backup", "--from-literal=lost=yes")

    for host in ("m1", "m2", "m3"):
        _exec(host, "systemctl", "stop", "airlock-etcd")
    for host in ("m1", "m2", "m3"):
        _exec(host, "rm", "-rf", "/var/lib/airlock-etcd")
    refused = run_airlock("restore", "-i", str(INVENTORY), str(archives[0]), timeout=60)
    assert refused.returncode == 2 and "--yes" in refused.stderr

    restore = run_airlock("restore", "-i", str(INVENTORY), str(archives[0]), "--yes", timeout=1800)
    assert restore.returncode == 0, restore.stdout[-6000:] + restore.stderr
    _wait_nodes_ready(kubectl)
    kept = _kubectl(kubectl, "get", "configmap", "before-backup", "-o", "json")
    assert json.loads(kept.stdout)["data"] == {"kept": "yes"}
    lost = _kubectl(kubectl, "get", "configmap", "after-backup", check=False)
    assert lost.returncode != 0 and "NotFound" in lost.stderr


def _reset_and_add_again(kubectl: Path) -> None:
    refused = run_airlock("reset", "-i", str(INVENTORY), "--limit", "m2", "--yes")
    assert refused.returncode == 1 and "is not only a worker" in refused.stderr
    assert "airlock node remove" in refused.stderr
    reset = run_airlock("reset", "-i", str(INVENTORY), "--limit", "w2", "--yes", timeout=1200)
    assert reset.returncode == 0, reset.stdout[-6000:] + reset.stderr
    nodes = json.loads(_kubectl(kubectl, "get", "nodes", "-o", "json").stdout)["items"]
    assert "w2" not in [n["metadata"]["name"] for n in nodes]
    for path in (
        "/etc/kubernetes",
        "/etc/containerd",
        "/usr/local/bin/kubelet",
        "/usr/local/bin/containerd",
        "/opt/airlock/artifacts",
    ):
        assert _exec("w2", "test", "-e", path, check=False).returncode == 1, f"w2 still has {path}"
    # state directories may be mount points (they are in the lab): emptied
    for path in ("/var/lib/kubelet", "/var/lib/containerd"):
        left = _exec("w2", "find", path, "-mindepth", "1", "-maxdepth", "1", check=False).stdout
        assert left.strip() == "", f"w2's {path} still holds {left.split()[:5]}"
    links = _exec("w2", "ip", "-o", "link", "show").stdout
    assert "cni0" not in links and "flannel.1" not in links, links
    rules = _exec("w2", "iptables-save").stdout + _exec("w2", "ip6tables-save").stdout
    assert "KUBE-" not in rules and "FLANNEL-" not in rules and "CNI-" not in rules, rules
    assert _exec("w2", "systemctl", "is-active", "kubelet", check=False).stdout.strip() != "active"
    again = run_airlock("reset", "-i", str(INVENTORY), "--limit", "w2", "--yes", timeout=1200)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = _changed_tasks(_newest_run("reset"))
    assert changed == [], f"a second reset changed: {changed}"

    add = run_airlock("node", "add", "-i", str(INVENTORY), "w2", timeout=1800)
    assert add.returncode == 0, add.stdout[-6000:] + add.stderr
    _wait_nodes_ready(kubectl)


def _readyz(vip: str) -> str:
    return f"https://{vip}:8443/readyz"


def _lab_up(masters: int) -> None:
    run_airlock(
        "lab",
        "up",
        "--name",
        LAB,
        "--internal",
        "--masters",
        str(masters),
        "--workers",
        "2",
        "--subnet",
        SUBNET,
        check=True,
        timeout=1800,
    )


def _ip(host: str) -> str:
    prefix = SUBNET.rsplit(".", 1)[0]
    return f"{prefix}.{10 + int(host[1:])}" if host[0] == "m" else f"{prefix}.{20 + int(host[1:])}"


def _etcd_members(via: str = "m1") -> dict[str, bool]:
    """name -> is a learner, read with etcdctl on a member."""
    pki = "/etc/airlock/etcd/pki"
    proc = _exec(
        via,
        "etcdctl",
        f"--endpoints=https://{_ip(via)}:2379",
        f"--cacert={pki}/ca.crt",
        f"--cert={pki}/healthcheck-client.crt",
        f"--key={pki}/healthcheck-client.key",
        "member",
        "list",
        "-w",
        "json",
    )
    return {m.get("name", ""): bool(m.get("isLearner")) for m in json.loads(proc.stdout)["members"]}


def _node_names(kubectl: Path) -> set[str]:
    nodes = json.loads(_kubectl(kubectl, "get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"] for n in nodes}


def _backends(host: str) -> str:
    return _exec(host, "cat", "/etc/haproxy/haproxy.cfg").stdout


def _control_plane_in_and_out(kubectl: Path, vip: str, context: ssl.SSLContext) -> None:
    _lab_up(4)
    with watching(_readyz(vip), 0.5, context, "m4 in and out, the API through the VIP") as api:
        started = time.monotonic()
        add = run_airlock("node", "add", "-i", str(INVENTORY), "m4", timeout=2400)
        print(
            f"\n--- airlock node add m4 (control plane and lb): {time.monotonic() - started:.0f}s"
        )
        assert add.returncode == 0, add.stdout[-6000:] + add.stderr
        _wait_nodes_ready(kubectl, count=6)
        assert _etcd_members() == {"m1": False, "m2": False, "m3": False}
        for lb in ("m1", "m2", "m3", "m4"):
            assert f"server m4 {_ip('m4')}:6443" in _backends(lb), f"{lb}'s haproxy lacks m4"
        _serving_not_after(_ip("m4"), context)  # m4's apiserver serves a verifiable certificate

        refused = run_airlock("node", "remove", "-i", str(INVENTORY), "m1", "--yes")
        assert refused.returncode == 1 and "first control plane" in refused.stderr
        started = time.monotonic()
        remove = run_airlock("node", "remove", "-i", str(INVENTORY), "m4", "--yes", timeout=2400)
        print(f"--- airlock node remove m4: {time.monotonic() - started:.0f}s")
        assert remove.returncode == 0, remove.stdout[-6000:] + remove.stderr
    assert "m4" not in _node_names(kubectl)
    assert _etcd_members() == {"m1": False, "m2": False, "m3": False}
    for lb in ("m1", "m2", "m3"):
        assert "server m4 " not in _backends(lb), f"{lb}'s haproxy still lists m4"
    for path in ("/etc/kubernetes", "/etc/haproxy/haproxy.cfg", "/etc/airlock/etcd"):
        assert _exec("m4", "test", "-e", path, check=False).returncode == 1, f"m4 still has {path}"
    assert api.failed == 0, api.failures
    again = run_airlock("node", "remove", "-i", str(INVENTORY), "m4", "--yes", timeout=1200)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = _changed_tasks(_newest_run("node-remove"))
    assert changed == [], f"a second node remove changed: {changed}"
    _lab_up(3)  # m4's container goes, the inventory lists m1..m3 again
    _wait_nodes_ready(kubectl)


def _replace_etcd_member(kubectl: Path, vip: str, context: ssl.SSLContext) -> None:
    peer = INVENTORY / ".credentials" / "etcd" / "peer-m3.crt"
    old_peer = peer.read_bytes()
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    for argv in (
        ["podman", "rm", "-f", "-t", "0", f"airlock-{LAB}-m3"],
        ["podman", "volume", "rm", "-f", f"airlock-{LAB}-m3-containerd"],
    ):
        subprocess.run(argv, check=True, capture_output=True, env=env, timeout=300)
    unreachable = run_airlock("node", "remove", "-i", str(INVENTORY), "m3", "--yes", timeout=600)
    said = unreachable.stdout + unreachable.stderr
    assert unreachable.returncode != 0 and "m3 cannot be reached over SSH" in said, said[-3000:]
    assert "airlock node remove --dead" in said, said[-3000:]
    no_quorum = run_airlock(
        "node", "remove", "-i", str(INVENTORY), "m2", "--dead", "--yes", timeout=600
    )
    said = no_quorum.stdout + no_quorum.stderr
    # the task's name says "quorum" too: assert the refusal itself
    assert no_quorum.returncode != 0 and "but quorum needs 2" in said, said[-3000:]
    assert {"m2", "m3"} <= _node_names(kubectl), "a refused removal changed the cluster"

    with watching(_readyz(vip), 0.5, context, "m3 replaced, the API through the VIP") as api:
        dead = run_airlock(
            "node", "remove", "-i", str(INVENTORY), "m3", "--dead", "--yes", timeout=1200
        )
        assert dead.returncode == 0, dead.stdout[-6000:] + dead.stderr
        assert "m3" not in _node_names(kubectl)
        assert _etcd_members() == {"m1": False, "m2": False}
        _lab_up(3)  # a new, empty m3 in its place
        started = time.monotonic()
        add = run_airlock("node", "add", "-i", str(INVENTORY), "m3", timeout=2400)
        print(f"\n--- etcd member m3 replaced, node add m3: {time.monotonic() - started:.0f}s")
        assert add.returncode == 0, add.stdout[-6000:] + add.stderr
    assert api.failed == 0, api.failures
    _wait_nodes_ready(kubectl)
    assert _etcd_members() == {"m1": False, "m2": False, "m3": False}
    assert peer.read_bytes() != old_peer, "m3 joined with the old member's certificate"


def _remove_dead_worker(kubectl: Path) -> None:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    subprocess.run(
        ["podman", "stop", "-t", "0", f"airlock-{LAB}-w1"],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    dead = run_airlock(
        "node", "remove", "-i", str(INVENTORY), "w1", "--dead", "--yes", timeout=1200
    )
    assert dead.returncode == 0, dead.stdout[-6000:] + dead.stderr
    assert "w1" not in _node_names(kubectl)
    _wait_nodes_ready(kubectl, count=4)


def _reset_cluster() -> None:
    """The whole cluster (w1, removed --dead, started again) is reset after a backup."""
    backups = set((INVENTORY / ".backups").glob("airlock-backup-*.tar.gz"))
    refused = run_airlock("reset", "-i", str(INVENTORY))
    assert refused.returncode == 2 and "every host" in refused.stderr
    # w1 (removed --dead) comes back: its kubelet registers it again; the reset takes it too
    _lab_up(3)
    reset = run_airlock("reset", "-i", str(INVENTORY), "--yes", timeout=2400)
    assert reset.returncode == 0, reset.stdout[-6000:] + reset.stderr
    assert len(set((INVENTORY / ".backups").glob("airlock-backup-*.tar.gz")) - backups) == 1
    for host in ("m1", "m2", "m3", "w1", "w2"):
        for path in (
            "/etc/kubernetes",
            "/etc/airlock/etcd",
            "/usr/local/bin/etcd",
            "/etc/haproxy/haproxy.cfg",
            "/etc/keepalived/keepalived.conf",
            "/usr/local/bin/containerd",
            "/opt/airlock/bundle",
        ):
            assert _exec(host, "test", "-e", path, check=False).returncode == 1, (
                f"{host} still has {path}"
            )
        if host.startswith("m"):  # etcd's data directory is emptied (it may be a mount point)
            left = _exec(host, "find", "/var/lib/airlock-etcd", "-mindepth", "1").stdout
            assert left.strip() == "", f"{host} keeps etcd data: {left[:200]}"
        addresses = _exec(host, "ip", "-o", "addr").stdout
        assert f" {_ip('m1').rsplit('.', 1)[0]}.250/" not in addresses, f"{host} keeps the VIP"
    again = run_airlock("reset", "-i", str(INVENTORY), "--yes", "--no-backup", timeout=1200)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = _changed_tasks(_newest_run("reset"))
    assert changed == [], f"a second reset changed: {changed}"


def test_day2_operations_on_a_running_cluster(tmp_path: Path) -> None:
    bundle = _bundle()
    kubectl = _program_from(bundle, "kubectl", tmp_path / "kubectl")
    up = ("--internal", "--masters", "3", "--workers", "2", "--subnet", SUBNET)
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    with lab_hosts(LAB, *up, timeout=1800, keep=keep):
        run_airlock("check", "-i", str(INVENTORY), check=True, timeout=600)
        deploy = run_airlock("deploy", "-i", str(INVENTORY), "--limit", "all:!w2", timeout=3600)
        assert deploy.returncode == 0, deploy.stdout[-6000:]
        _node_add(kubectl)
        vip = next(
            line.split(":", 1)[1].strip()
            for line in (INVENTORY / "group_vars" / "all" / "lab.yml").read_text().splitlines()
            if line.startswith("airlock_api_vip:")
        )
        _certs(kubectl, vip, api_context(KUBECONFIG))
        _backup_and_restore(kubectl)
        _reset_and_add_again(kubectl)
        context = api_context(KUBECONFIG)
        _control_plane_in_and_out(kubectl, vip, context)
        _replace_etcd_member(kubectl, vip, context)
        _remove_dead_worker(kubectl)
        _reset_cluster()
        again = run_airlock("deploy", "-i", str(INVENTORY), timeout=3600)
        assert again.returncode == 0, again.stdout[-6000:]
        _wait_nodes_ready(kubectl)
