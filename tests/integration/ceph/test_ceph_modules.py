"""airlock.cluster ceph_pool and ceph_auth against a real Ceph cluster on loopback.

Every assertion about the cluster asks the cluster itself (``ceph ... --format json`` as
client.admin), never the module's own answer.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.modules import ceph_auth, ceph_pool

from tests.module_harness import ModuleFailed, run_module
from tests.ports import free_port

from .cluster import CephCluster

CSI_CAPS = {
    "mon": "profile rbd",
    "osd": "profile rbd pool=kubernetes",
    "mgr": "profile rbd pool=kubernetes",
}


def pool_detail(cluster: CephCluster, name: str) -> dict[str, Any] | None:
    pools = cluster.ceph_json("osd", "pool", "ls", "detail")
    return next((p for p in pools if p["pool_name"] == name), None)


def managed(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """What ceph_pool manages of a pool (Ceph itself changes flags, epochs, ...)."""
    keys = ("size", "min_size", "pg_autoscale_mode", "application_metadata")
    return {k: detail[k] for k in keys} if detail else None


def auth_get(cluster: CephCluster, name: str) -> dict[str, Any] | None:
    proc = cluster.ceph("auth", "get", name, "--format", "json", check=False)
    if proc.returncode == 2:
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]


def pool(cluster: CephCluster, check_mode: bool = False, **params: Any) -> dict[str, Any]:
    return run_module(ceph_pool, cluster.connection(**params), check_mode=check_mode)


def auth(cluster: CephCluster, check_mode: bool = False, **params: Any) -> dict[str, Any]:
    return run_module(ceph_auth, cluster.connection(**params), check_mode=check_mode)


@pytest.fixture(scope="module")
def kubernetes_pool(ceph_cluster: CephCluster) -> str:
    """The pool ceph-csi would use, made by the module (the first test checks that run)."""
    if pool_detail(ceph_cluster, "kubernetes") is None:
        pool(ceph_cluster, name="kubernetes", application="rbd", rbd_init=True)
    return "kubernetes"


# --- ceph_pool ---------------------------------------------------------------------------
def test_pool_created_with_rbd_application_and_initialised_then_unchanged(ceph_cluster):
    first = pool(ceph_cluster, name="kubernetes", application="rbd", rbd_init=True)
    assert first["changed"] is True
    assert first["actions"] == ["created", "rbd pool init kubernetes"]
    real = pool_detail(ceph_cluster, "kubernetes")
    assert real is not None and set(real["application_metadata"]) == {"rbd"}
    assert real["pg_autoscale_mode"] == "on" and real["size"] == 1
    assert first["pool"]["applications"] == ["rbd"] and first["pool"]["size"] == 1
    assert first["diff"]["before"] == "" and "applications = rbd" in first["diff"]["after"]
    # rbd pool init wrote the pool's rbd metadata: an image can be made and listed.
    ceph_cluster.rbd("create", "--size", "8M", "kubernetes/probe")
    assert "probe" in ceph_cluster.rbd("ls", "-p", "kubernetes").stdout.split()

    second = pool(ceph_cluster, name="kubernetes", application="rbd", rbd_init=True)
    assert second["changed"] is False and second["actions"] == []
    assert second["diff"]["before"] == second["diff"]["after"]
    assert "probe" in ceph_cluster.rbd("ls", "-p", "kubernetes").stdout.split()


# (pool, options of the second run, expected diff line after, pool_detail field -> value)
CHANGES = [
    ("p-size", {"size": 2}, "size = 2", {"size": 2}),
    ("p-sizes", {"size": 3, "min_size": 2}, "min_size = 2", {"size": 3, "min_size": 2}),
    (
        "p-autoscale",
        {"pg_autoscale_mode": "warn"},
        "pg_autoscale_mode = warn",
        {"pg_autoscale_mode": "warn"},
    ),
    (
        "p-yaml-off",
        {"pg_autoscale_mode": False},
        "pg_autoscale_mode = off",
        {"pg_autoscale_mode": "off"},
    ),
    ("p-app", {"application": "rgw"}, "applications = rgw", {"application_metadata": {"rgw": {}}}),
]


@pytest.mark.parametrize(
    ("name", "change", "diff_line", "expected"), CHANGES, ids=[c[0] for c in CHANGES]
)
def test_pool_change_is_applied_and_shown_in_the_diff(
    ceph_cluster, name, change, diff_line, expected
):
    pool(ceph_cluster, name=name)
    before = pool_detail(ceph_cluster, name)
    # Check mode first: reported, and the real pool is exactly as it was.
    checked = pool(ceph_cluster, check_mode=True, name=name, **change)
    assert checked["changed"] is True and diff_line in checked["diff"]["after"]
    assert managed(pool_detail(ceph_cluster, name)) == managed(before)

    result = pool(ceph_cluster, name=name, **change)
    assert result["changed"] is True
    assert diff_line in result["diff"]["after"] and diff_line not in result["diff"]["before"]
    real = pool_detail(ceph_cluster, name)
    assert {k: real[k] for k in expected} == expected
    assert pool(ceph_cluster, name=name, **change)["changed"] is False


def test_pool_size_one_is_confirmed_for_ceph(ceph_cluster):
    # Ceph wants --yes-i-really-mean-it for size 1 (mon_allow_pool_size_one is on here).
    pool(ceph_cluster, name="p-one", size=2)
    assert pool_detail(ceph_cluster, "p-one")["size"] == 2
    result = pool(ceph_cluster, name="p-one", size=1, min_size=1)
    assert result["changed"] is True and result["pool"]["size"] == 1
    assert managed(pool_detail(ceph_cluster, "p-one"))["size"] == 1


def test_pool_check_mode_creates_nothing(ceph_cluster):
    result = pool(
        ceph_cluster, check_mode=True, name="p-never", application="rbd", rbd_init=True, size=2
    )
    assert result["changed"] is True
    assert result["actions"][0] == "created"
    assert result["pool"]["applications"] == ["rbd"] and result["pool"]["size"] == 2
    assert pool_detail(ceph_cluster, "p-never") is None


def test_pool_absent_needs_allow_delete_then_deletes_and_restores_the_mon_option(ceph_cluster):
    pool(ceph_cluster, name="p-doomed")
    with pytest.raises(ModuleFailed, match="set allow_delete: true"):
        pool(ceph_cluster, name="p-doomed", state="absent")
    assert pool_detail(ceph_cluster, "p-doomed") is not None

    checked = pool(
        ceph_cluster, check_mode=True, name="p-doomed", state="absent", allow_delete=True
    )
    assert checked["changed"] is True and pool_detail(ceph_cluster, "p-doomed") is not None

    result = pool(ceph_cluster, name="p-doomed", state="absent", allow_delete=True)
    assert result["changed"] is True and result["diff"]["after"] == ""
    assert pool_detail(ceph_cluster, "p-doomed") is None
    option = ceph_cluster.ceph("config", "get", "mon", "mon_allow_pool_delete").stdout.strip()
    assert option == "false"
    again = pool(ceph_cluster, name="p-doomed", state="absent", allow_delete=True)
    assert again["changed"] is False


# --- ceph_auth ---------------------------------------------------------------------------
def test_auth_created_with_exactly_the_csi_caps_and_a_keyring_that_works(
    ceph_cluster, kubernetes_pool, tmp_path
):
    keyring = tmp_path / "ceph.client.kubernetes.keyring"
    first = auth(ceph_cluster, name="client.kubernetes", caps=CSI_CAPS, keyring_dest=str(keyring))
    real = auth_get(ceph_cluster, "client.kubernetes")
    assert real is not None and real["caps"] == CSI_CAPS
    assert first["changed"] is True and first["actions"] == ["created", "wrote keyring_dest"]
    assert first["key"] == real["key"] and first["caps"] == CSI_CAPS
    assert "mon = profile rbd" in first["diff"]["after"]
    assert real["key"] not in json.dumps({k: v for k, v in first.items() if k != "key"})

    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    # The file works for what ceph-csi does, and only that: rbd in its pool, not admin work.
    as_kubernetes = {"user": "client.kubernetes", "keyring": keyring}
    ceph_cluster.rbd("create", "--size", "8M", f"{kubernetes_pool}/csi-probe", **as_kubernetes)
    listed = ceph_cluster.rbd("ls", "-p", kubernetes_pool, **as_kubernetes)
    assert "csi-probe" in listed.stdout.split()
    for denied in (["auth", "ls"], ["osd", "pool", "create", "p-not-allowed"]):
        proc = ceph_cluster.ceph(*denied, check=False, **as_kubernetes)
        assert proc.returncode == 13 and "access denied" in proc.stderr, proc.stderr
    assert pool_detail(ceph_cluster, "p-not-allowed") is None

    mtime = keyring.stat().st_mtime_ns
    second = auth(ceph_cluster, name="client.kubernetes", caps=CSI_CAPS, keyring_dest=str(keyring))
    assert second["changed"] is False and second["key"] == real["key"]
    assert second["diff"]["before"] == second["diff"]["after"]
    assert keyring.stat().st_mtime_ns == mtime

    keyring.chmod(0o644)
    fixed = auth(ceph_cluster, name="client.kubernetes", caps=CSI_CAPS, keyring_dest=str(keyring))
    assert fixed["changed"] is True and stat.S_IMODE(keyring.stat().st_mode) == 0o600


# (entity, caps it has before, caps the module is given)
CAPS_CHANGES = [
    ("client.extra", {**CSI_CAPS, "mds": "allow rw"}, CSI_CAPS),
    ("client.changed", {"mon": "allow *", "osd": "allow *"}, CSI_CAPS),
    ("client.fewer", CSI_CAPS, {"mon": "profile rbd"}),
]


@pytest.mark.parametrize(("name", "had", "wanted"), CAPS_CHANGES, ids=[c[0] for c in CAPS_CHANGES])
def test_auth_caps_are_set_exactly_and_the_key_is_kept(ceph_cluster, name, had, wanted):
    cap_args = [a for daemon, cap in had.items() for a in (daemon, cap)]
    ceph_cluster.ceph("auth", "get-or-create", name, *cap_args)
    key = auth_get(ceph_cluster, name)["key"]

    checked = auth(ceph_cluster, check_mode=True, name=name, caps=wanted)
    assert checked["changed"] is True and checked["caps"] == wanted
    assert auth_get(ceph_cluster, name)["caps"] == had

    result = auth(ceph_cluster, name=name, caps=wanted)
    real = auth_get(ceph_cluster, name)
    assert result["changed"] is True and result["actions"] == ["set caps"]
    assert real["caps"] == wanted and result["caps"] == wanted
    assert real["key"] == key == result["key"]
    assert key not in json.dumps(result["diff"]) and key not in str(result.get("msg", ""))
    assert auth(ceph_cluster, name=name, caps=wanted)["changed"] is False


def test_auth_check_mode_creates_nothing_and_absent_deletes(ceph_cluster, tmp_path):
    keyring = tmp_path / "gone.keyring"
    checked = auth(
        ceph_cluster, check_mode=True, name="client.gone", caps=CSI_CAPS, keyring_dest=str(keyring)
    )
    assert checked["changed"] is True and checked["key"] is None
    assert auth_get(ceph_cluster, "client.gone") is None and not keyring.exists()

    auth(ceph_cluster, name="client.gone", caps=CSI_CAPS, keyring_dest=str(keyring))
    assert keyring.exists()
    removed = auth(ceph_cluster, name="client.gone", state="absent", keyring_dest=str(keyring))
    assert removed["changed"] is True and removed["actions"] == ["deleted", "removed keyring_dest"]
    assert auth_get(ceph_cluster, "client.gone") is None and not keyring.exists()
    assert auth(ceph_cluster, name="client.gone", state="absent")["changed"] is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "kubernetes"}, "not a Ceph entity name: give TYPE.ID"),
        ({"name": "client.x", "caps": {"rgw": "allow"}}, "unknown daemon rgw"),
        ({"name": "client.x", "caps": {"mon": ""}}, "caps.mon must be a non-empty string"),
        ({"name": "client.x", "caps": {}}, "caps is empty: give at least one cap"),
    ],
    ids=["no-type", "unknown-daemon", "empty-cap", "no-caps"],
)
def test_auth_refuses_bad_parameters(ceph_cluster, params, message):
    with pytest.raises(ModuleFailed, match=message):
        auth(ceph_cluster, **params)


# --- errors a user can act on --------------------------------------------------------------
def one_line(failed: pytest.ExceptionInfo) -> str:
    msg = failed.value.result["msg"]
    assert "\n" not in msg, msg
    return msg


def test_unreachable_monitors_name_the_conf_and_the_monitors(ceph_cluster, tmp_path):
    conf = tmp_path / "dead.conf"
    dead = f"[v2:127.0.0.1:{free_port()}]"
    conf.write_text(
        ceph_cluster.conf.read_text().replace(f"[v2:127.0.0.1:{ceph_cluster.port}]", dead)
    )
    with pytest.raises(ModuleFailed) as failed:
        pool(ceph_cluster, name="kubernetes", conf=str(conf), connect_timeout=2)
    msg = one_line(failed)
    assert msg.startswith("ceph osd pool ls detail: no answer from the monitors")
    assert f"within 2s (conf {conf}, mon host {dead})" in msg


def test_denied_user_is_told_to_use_the_admin_keyring(ceph_cluster, kubernetes_pool, tmp_path):
    keyring = tmp_path / "k.keyring"
    auth(ceph_cluster, name="client.kubernetes", caps=CSI_CAPS, keyring_dest=str(keyring))
    with pytest.raises(ModuleFailed) as failed:
        auth(ceph_cluster, name="client.other", user="client.kubernetes", keyring=str(keyring))
    msg = one_line(failed)
    assert msg.startswith(
        "ceph auth get client.other: (13) Permission denied as client.kubernetes"
    ), msg
    assert (
        f"use the admin keyring (user=client.admin, keyring=/etc/ceph/{ceph_cluster.name}." in msg
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"keyring": "/nonexistent/admin.keyring"},
            "keyring /nonexistent/admin.keyring does not exist: set keyring to the keyring of "
            "client.admin",
        ),
        (
            {"keyring": None, "user": "client.nobody"},
            "ceph osd pool ls detail: no keyring for client.nobody (Ceph looked in ",
        ),
        ({"conf": "/nonexistent/ceph.conf"}, "conf /nonexistent/ceph.conf does not exist"),
    ],
    ids=["given-keyring-missing", "looked-up-keyring-missing", "conf-missing"],
)
def test_missing_files_are_named(ceph_cluster, params, message):
    with pytest.raises(ModuleFailed) as failed:
        pool(ceph_cluster, name="kubernetes", **params)
    assert one_line(failed).startswith(message)


def test_default_keyring_lookup_finds_the_admin_keyring(ceph_cluster, kubernetes_pool):
    # The test conf's [client] keyring setting points at the admin keyring's place.
    result = pool(ceph_cluster, name=kubernetes_pool, keyring=None)
    assert result["changed"] is False


def test_missing_ceph_program_says_which_package(ceph_cluster, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModuleFailed) as failed:
        pool(ceph_cluster, name="kubernetes")
    assert one_line(failed) == "ceph not found on PATH: install ceph-common"
