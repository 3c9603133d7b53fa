"""The managers' prometheus module on a real Ceph 16 cluster, as roles/monitoring scrapes it.

- every metric airlock's Ceph alerts use (roles/monitoring/files/rules/ceph.rules.yml) is
  exported by the active manager, with the labels the rules rely on, and
  ceph_pool_percent_used is a fraction (0-1), not a percentage;
- a standby manager answers /metrics with an empty 200 (so the `ceph` job scrapes every
  manager and a standby never shows as a target down), and after a failover the new active
  one serves the metrics while the former answers empty.

The module is configured as roles/ceph does it: mgr/prometheus/<id>/server_addr per manager
(here 127.0.0.1) and a port (here one per manager, both on loopback).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ports import free_port

from .cluster import CephCluster

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "monitoring" / "files" / "rules" / "ceph.rules.yml"
# The labels the rules select, join or print, by metric.
LABELS = {
    "ceph_mon_quorum_status": {"ceph_daemon"},
    "ceph_osd_up": {"ceph_daemon"},
    "ceph_osd_in": {"ceph_daemon"},
    "ceph_osd_stat_bytes": {"ceph_daemon"},
    "ceph_osd_stat_bytes_used": {"ceph_daemon"},
    "ceph_pg_total": {"pool_id"},
    "ceph_pg_active": {"pool_id"},
    "ceph_pool_percent_used": {"pool_id"},
    "ceph_pool_metadata": {"pool_id", "name"},
}
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Sample = tuple[str, dict[str, str], float]


def rule_metrics() -> set[str]:
    """Every ceph_* metric named in an expression of ceph.rules.yml."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in doc["groups"] for r in g["rules"]]
    return {m for e in exprs for m in re.findall(r"\bceph_[a-z0-9_]+\b", e)}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


def parse(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


class Managers:
    """The prometheus module on the fixture's manager x and a second manager y."""

    def __init__(self, cluster: CephCluster) -> None:
        self.cluster = cluster
        self.ports = {"x": free_port(), "y": free_port()}

    def url(self, mgr: str) -> str:
        return f"http://127.0.0.1:{self.ports[mgr]}/metrics"

    def active(self) -> str:
        return self.cluster.ceph_json("mgr", "dump")["active_name"]

    def standbys(self) -> list[str]:
        return [s["name"] for s in self.cluster.ceph_json("mgr", "dump")["standbys"]]

    def serving(
        self, mgr: str, names: frozenset[str] = frozenset({"ceph_health_status"})
    ) -> list[Sample]:
        """Wait until `mgr` serves the cluster's metrics, `names` among them; return them.

        The OSDs' perf counters (ceph_osd_stat_bytes, ...) come with their next report to the
        manager, seconds after the module's first collection. A name still missing at the
        deadline fails the test, named."""
        found: list[Sample] = []

        def ready() -> bool:
            status, body = get(self.url(mgr))
            found[:] = parse(body) if status == 200 else []
            return names <= {name for name, _, _ in found}

        try:
            self.cluster.wait(f"mgr.{mgr} serving its metrics", ready, deadline=90)
        except AssertionError as err:
            missing = sorted(names - {name for name, _, _ in found})
            raise AssertionError(f"mgr.{mgr} does not export {missing}: {err}") from None
        return found

    def start_y(self) -> None:
        c = self.cluster
        keyring = c.keyring("mgr.y")
        caps = ["mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"]
        c.ceph("auth", "get-or-create", "mgr.y", *caps, "-o", str(keyring))
        (c.root / "mgr" / f"{c.name}-y").mkdir(exist_ok=True)
        c.daemon("ceph-mgr", "y")
        c.wait("mgr.y standing by", lambda: "y" in self.standbys())

    def stop_y(self) -> None:
        proc = self.cluster.processes.pop("ceph-mgr.y", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def managers(ceph_cluster: CephCluster) -> Iterator[Managers]:
    mgrs = Managers(ceph_cluster)
    for mgr, port in mgrs.ports.items():
        ceph_cluster.ceph("config", "set", "mgr", f"mgr/prometheus/{mgr}/server_addr", "127.0.0.1")
        ceph_cluster.ceph("config", "set", "mgr", f"mgr/prometheus/{mgr}/server_port", str(port))
    ceph_cluster.ceph("mgr", "module", "enable", "prometheus")
    try:
        yield mgrs
    finally:
        # Leave the session's cluster as it was: x active, no y.
        if "ceph-mgr.y" in ceph_cluster.processes and mgrs.active() == "y":
            ceph_cluster.ceph("mgr", "fail", "y")
            ceph_cluster.wait("mgr.x active again", lambda: mgrs.active() == "x")
        mgrs.stop_y()


def test_the_active_manager_exports_every_metric_the_alerts_use(
    ceph_cluster: CephCluster, managers: Managers
) -> None:
    used = rule_metrics()
    assert {"ceph_health_status", "ceph_osd_up", "ceph_pool_percent_used"} <= used
    assert set(LABELS) <= used, "LABELS names a metric the rules no longer use"
    # Fails naming every metric of ceph.rules.yml the manager does not export.
    samples = managers.serving(managers.active(), frozenset(used))
    for metric, labels in LABELS.items():
        seen = [lbls for name, lbls, _ in samples if name == metric]
        assert all(labels <= set(lbls) for lbls in seen), f"{metric}: {seen}"
    assert [v for name, _, v in samples if name == "ceph_osd_up"] == [1.0]

    # ceph_health_status is 0/1/2 for HEALTH_OK/WARN/ERR, as `ceph health` says (the module
    # answers from a cache of up to 15 s).
    levels = {"HEALTH_OK": 0.0, "HEALTH_WARN": 1.0, "HEALTH_ERR": 2.0}

    def agrees() -> bool:
        own = levels[ceph_cluster.ceph_json("health")["status"]]
        _, body = get(managers.url(managers.active()))
        return [v for name, _, v in parse(body) if name == "ceph_health_status"] == [own]

    ceph_cluster.wait("ceph_health_status agreeing with `ceph health`", agrees, deadline=60)


def test_pool_percent_used_is_a_fraction(
    ceph_cluster: CephCluster, managers: Managers, tmp_path: Path
) -> None:
    """128 MiB in a pool of size 1 on the fixture's 1 GiB OSD: about 0.13, not 13."""
    pool = "airlock-metrics"
    ceph_cluster.ceph("osd", "pool", "create", pool, "8")
    ceph_cluster.ceph("osd", "pool", "application", "enable", pool, "rados")
    pools = ceph_cluster.ceph_json("osd", "dump")["pools"]
    pool_id = str(next(p["pool"] for p in pools if p["pool_name"] == pool))
    data = tmp_path / "data"
    data.write_bytes(b"\xa5" * (128 << 20))
    rados = ["rados", *ceph_cluster.cli_args(), "--name", "client.admin"]
    rados += [f"--keyring={ceph_cluster.admin_keyring}", "-p", pool]
    ceph_cluster.run(*rados, "put", "blob", str(data), timeout=120)
    try:
        used: list[float] = []

        def reported() -> bool:
            status, body = get(managers.url(managers.active()))
            used[:] = [
                v
                for name, lbls, v in parse(body if status == 200 else "")
                if name == "ceph_pool_percent_used" and lbls.get("pool_id") == pool_id
            ]
            return bool(used) and used[0] > 0.01

        ceph_cluster.wait(f"the manager reporting pool {pool}'s 128 MiB", reported)
        assert 0.05 < used[0] < 0.5, used
        df = ceph_cluster.ceph_json("df")
        assert any(p["name"] == pool and p["stats"]["stored"] >= 128 << 20 for p in df["pools"])
    finally:
        ceph_cluster.run(*rados, "rm", "blob")


def test_a_standby_answers_empty_and_a_failover_moves_the_metrics(
    ceph_cluster: CephCluster, managers: Managers
) -> None:
    managers.serving("x")
    managers.start_y()
    assert get(managers.url("y")) == (200, ""), "a standby must answer /metrics with no data"

    ceph_cluster.ceph("mgr", "fail", "x")
    ceph_cluster.wait("mgr.y active", lambda: managers.active() == "y")
    assert "ceph_health_status" in {name for name, _, _ in managers.serving("y")}
    # x comes back as a standby (it re-executes itself) and answers empty again.
    ceph_cluster.wait("mgr.x standing by", lambda: "x" in managers.standbys())
    ceph_cluster.wait("mgr.x answering empty", lambda: get(managers.url("x")) == (200, ""))
