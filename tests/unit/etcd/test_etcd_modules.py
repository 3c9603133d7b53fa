"""airlock.cluster etcd_* modules against a real etcd with TLS on loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.modules import (
    etcd_health,
    etcd_member,
    etcd_snapshot,
)

from tests.module_harness import ModuleFailed, run_module
from tests.ports import free_port

from .conftest import etcdctl, wait_ready


def params(pki, endpoints, **extra):
    return {
        "endpoints": endpoints,
        **pki.client_params(),
        "dial_timeout": 2,
        "command_timeout": 5,
        **extra,
    }


# --- etcd_health ----------------------------------------------------------------------
def test_health_reports_every_endpoint_and_one_leader(shared_cluster, pki):
    result = run_module(etcd_health, params(pki, shared_cluster.endpoints))
    assert result["healthy"] is True
    assert result["changed"] is False
    assert [e["endpoint"] for e in result["endpoints"]] == shared_cluster.endpoints
    assert sum(e["is_leader"] for e in result["endpoints"]) == 1
    leader_ids = {e["leader_id"] for e in result["endpoints"]}
    assert leader_ids == {result["leader"]}
    for entry in result["endpoints"]:
        assert entry["healthy"] and entry["reachable"] and not entry["is_learner"]
        assert entry["revision"] >= 1 and entry["raft_index"] > 0 and entry["raft_term"] > 0


@pytest.mark.parametrize(
    ("overrides", "scheme"),
    [
        # No client certificate: the server demands one (--client-cert-auth).
        ({"client_cert": None, "client_key": None}, "https"),
        # Plain HTTP to a TLS-only client port.
        ({}, "http"),
    ],
    ids=["no-client-cert", "plain-http"],
)
def test_health_is_false_when_the_client_is_refused(shared_cluster, pki, overrides, scheme):
    endpoint = shared_cluster.endpoints[0].replace("https://", f"{scheme}://")
    p = {**params(pki, [endpoint], command_timeout=2, dial_timeout=1), **overrides}
    result = run_module(etcd_health, p)
    assert result["healthy"] is False
    assert result["endpoints"][0]["reachable"] is False
    assert result["problems"] and endpoint in result["problems"][0]


def test_health_wait_fails_at_deadline_naming_the_dead_endpoint(shared_cluster, pki):
    dead = f"https://127.0.0.1:{free_port()}"
    endpoints = [*shared_cluster.endpoints, dead]
    with pytest.raises(ModuleFailed) as failed:
        run_module(
            etcd_health,
            params(
                pki, endpoints, wait=True, timeout=3, interval=1, command_timeout=1, dial_timeout=1
            ),
        )
    assert dead in failed.value.result["msg"]
    assert "not healthy after 3s" in failed.value.result["msg"]
    # Without wait it reports instead of failing, and min_healthy accepts a quorum.
    report = run_module(etcd_health, params(pki, endpoints, command_timeout=1, dial_timeout=1))
    assert report["healthy"] is False and report["healthy_count"] == 3
    quorum = run_module(
        etcd_health,
        params(
            pki, endpoints, wait=True, timeout=5, min_healthy=2, command_timeout=1, dial_timeout=1
        ),
    )
    assert quorum["healthy_count"] == 3


def test_health_fails_clearly_without_endpoints(pki):
    with pytest.raises(ModuleFailed) as failed:
        run_module(etcd_health, params(pki, []))
    assert "endpoints is empty" in failed.value.result["msg"]


# --- etcd_member ----------------------------------------------------------------------
def test_member_list_reports_names_and_urls(shared_cluster, pki):
    result = run_module(etcd_member, params(pki, shared_cluster.endpoints, state="list"))
    assert result["changed"] is False
    assert [m["name"] for m in result["members"]] == ["n1", "n2", "n3"]
    assert all(not m["is_learner"] for m in result["members"])
    n1 = shared_cluster.member("n1")
    assert result["members"][0]["peer_urls"] == [n1.peer_url]
    assert int(result["members"][0]["id"], 16) > 0


def test_member_add_learner_start_promote_is_idempotent(cluster_factory, pki):
    cluster = cluster_factory(1)
    new = cluster.new_member("n2")
    base = params(pki, cluster.endpoints[:1], name="n2", peer_urls=[new.peer_url])

    check = run_module(etcd_member, {**base, "promote": False}, check_mode=True)
    assert check["changed"] is True and check["actions"] == ["added"]
    listed = run_module(etcd_member, params(pki, cluster.endpoints[:1], state="list"))
    assert len(listed["members"]) == 1, "check mode must not add the member"

    added = run_module(etcd_member, {**base, "promote": False})
    assert added["actions"] == ["added"] and added["member"]["is_learner"] is True
    assert added["initial_cluster"] == (f"n1={cluster.member('n1').peer_url},n2={new.peer_url}")
    again = run_module(etcd_member, {**base, "promote": False})
    assert again["changed"] is False, "same peer URL must not be added twice"

    new.start(added["initial_cluster"], state="existing")
    wait_ready(new)
    promoted = run_module(etcd_member, {**base, "wait_timeout": 60})
    assert promoted["actions"] == ["promoted"]
    assert [m["is_learner"] for m in promoted["members"]] == [False, False]

    final = run_module(etcd_member, base)
    assert final["changed"] is False and final["actions"] == []
    health = run_module(etcd_health, params(pki, [m.client_url for m in cluster.members]))
    assert health["healthy"] is True


def test_member_add_refuses_a_name_taken_by_another_member(shared_cluster, pki):
    with pytest.raises(ModuleFailed) as failed:
        run_module(
            etcd_member,
            params(pki, shared_cluster.endpoints, name="n1", peer_urls=["https://127.0.0.1:1"]),
        )
    assert "already exists" in failed.value.result["msg"]


def test_promote_times_out_when_learner_never_starts(cluster_factory, pki):
    cluster = cluster_factory(1)
    p = params(
        pki,
        cluster.endpoints,
        name="ghost",
        peer_urls=[f"https://127.0.0.1:{free_port()}"],
        wait_timeout=3,
    )
    with pytest.raises(ModuleFailed) as failed:
        run_module(etcd_member, p)
    assert "did not succeed within 3s" in failed.value.result["msg"]


@pytest.mark.parametrize(
    ("stopped", "remove", "allowed"),
    [
        ([], "n3", True),  # healthy 3 -> healthy 2: fine
        (["n3"], "n3", True),  # removing the dead member keeps 2 of 2
        (["n3"], "n2", False),  # would leave 1 healthy of 2: no quorum
    ],
    ids=["healthy", "remove-dead", "lose-quorum"],
)
def test_member_remove_respects_quorum(cluster_factory, pki, stopped, remove, allowed):
    cluster = cluster_factory(3)
    for name in stopped:
        cluster.member(name).stop()
    alive = cluster.endpoints
    p = params(pki, alive, name=remove, state="absent", command_timeout=2, dial_timeout=1)
    if not allowed:
        with pytest.raises(ModuleFailed) as failed:
            run_module(etcd_member, p)
        assert "refusing to remove" in failed.value.result["msg"]
        assert "quorum" in failed.value.result["msg"]
        return
    check = run_module(etcd_member, p, check_mode=True)
    assert check["changed"] is True
    assert len(run_module(etcd_member, {**p, "state": "list"})["members"]) == 3
    result = run_module(etcd_member, p)
    assert result["actions"] == ["removed"]
    assert remove not in [m["name"] for m in result["members"]]
    assert run_module(etcd_member, p)["changed"] is False


def test_member_remove_refuses_last_member(cluster_factory, pki):
    cluster = cluster_factory(1)
    with pytest.raises(ModuleFailed) as failed:
        run_module(etcd_member, params(pki, cluster.endpoints, name="n1", state="absent"))
    assert "only voting member" in failed.value.result["msg"]


# --- etcd_snapshot --------------------------------------------------------------------
def test_snapshot_save_then_restore_into_fresh_data_dir(cluster_factory, pki, tmp_path):
    cluster = cluster_factory(1)
    etcdctl(pki, cluster.endpoints, "put", "airlock/test", "before-backup")
    target = tmp_path / "snap.db"
    base = params(pki, cluster.endpoints, path=str(target))

    check = run_module(etcd_snapshot, base, check_mode=True)
    assert check["changed"] is True and not target.exists()

    saved = run_module(etcd_snapshot, base)
    assert target.exists() and oct(target.stat().st_mode & 0o777) == "0o600"
    assert saved["total_keys"] >= 1 and saved["revision"] >= 2
    assert len(saved["sha256"]) == 64
    assert not list(tmp_path.glob("snap.db.airlock-partial*"))
    etcdctl(pki, cluster.endpoints, "put", "airlock/test", "after-backup")
    cluster.stop()

    member = cluster.new_member("r1")
    restore = {
        "state": "restored",
        "path": str(target),
        "checksum": saved["sha256"],
        "data_dir": str(member.data_dir),
        "name": "r1",
        "initial_cluster": f"r1={member.peer_url}",
        "initial_advertise_peer_urls": [member.peer_url],
        "initial_cluster_token": "restored",
    }
    assert run_module(etcd_snapshot, restore, check_mode=True)["changed"] is True
    assert not member.data_dir.exists()
    restored = run_module(etcd_snapshot, restore)
    assert restored["data_dir"] == str(member.data_dir)
    assert oct(member.data_dir.stat().st_mode & 0o777) == "0o700"

    member.start(f"r1={member.peer_url}", token="restored")
    wait_ready(member)
    got = etcdctl(pki, [member.client_url], "get", "airlock/test", "-w", "json")
    kvs = json.loads(got.stdout)["kvs"]
    assert len(kvs) == 1
    import base64

    assert base64.b64decode(kvs[0]["value"]) == b"before-backup"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("checksum", "expected"),
        ("nonempty", "is not empty"),
        ("corrupt", "integrity check"),
        ("missing", "does not exist"),
    ],
)
def test_snapshot_restore_refuses_bad_input(shared_cluster, pki, tmp_path, damage, message):
    target = tmp_path / "snap.db"
    saved = run_module(etcd_snapshot, params(pki, shared_cluster.endpoints, path=str(target)))
    data_dir = tmp_path / "data"
    restore = {
        "state": "restored",
        "path": str(target),
        "data_dir": str(data_dir),
        "name": "x",
        "initial_cluster": "x=https://127.0.0.1:2380",
        "initial_advertise_peer_urls": ["https://127.0.0.1:2380"],
        "checksum": saved["sha256"],
    }
    if damage == "checksum":
        restore["checksum"] = "0" * 64
    elif damage == "nonempty":
        data_dir.mkdir()
        (data_dir / "member").mkdir()
    elif damage == "corrupt":
        target.write_bytes(b"not a bolt database" * 100)
        restore.pop("checksum")
    elif damage == "missing":
        os.unlink(target)
    with pytest.raises(ModuleFailed) as failed:
        run_module(etcd_snapshot, restore)
    assert message in failed.value.result["msg"]
    assert not Path(f"{data_dir}.airlock-restore").exists()


def test_snapshot_save_fails_clearly_on_unreachable_endpoint(pki, tmp_path):
    dead = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(ModuleFailed) as failed:
        run_module(
            etcd_snapshot,
            params(pki, [dead], path=str(tmp_path / "s.db"), dial_timeout=1, command_timeout=2),
        )
    assert f"saving a snapshot from {dead} failed" in failed.value.result["msg"]
    assert not (tmp_path / "s.db").exists()
