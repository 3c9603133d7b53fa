"""module_utils/ceph.py: the plans ceph_pool makes and the failures ceph_run explains.

The orders here are what the real cluster would refuse otherwise (min_size above size),
and the failure texts are what Ceph 16's CLIs print (copied from runs against the test
cluster of tests/integration/ceph).
"""

from __future__ import annotations

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.ceph import (
    Failure,
    Pool,
    PoolWish,
    caps_args,
    entity_name_problem,
    mon_host_from_conf,
    parse_failure,
    planned_pool,
    pool_plan,
)

SET = ["ceph", "osd", "pool", "set", "p"]

# (pool as it is, wish, commands in order)
PLANS = [
    (Pool("p", 3, 2, "on", ["rbd"]), PoolWish("p", application="rbd", rbd_init=True), []),
    # Growing: size first, so min_size 3 is never above size.
    (
        Pool("p", 1, 1, "on"),
        PoolWish("p", size=3, min_size=3),
        [[*SET, "size", "3"], [*SET, "min_size", "3"]],
    ),
    # Shrinking: min_size first.
    (
        Pool("p", 3, 3, "on"),
        PoolWish("p", size=2, min_size=1),
        [[*SET, "min_size", "1"], [*SET, "size", "2"]],
    ),
    (Pool("p", 3, 2, "warn"), PoolWish("p"), [[*SET, "pg_autoscale_mode", "on"]]),
    # rbd pool init enables the rbd application itself: no second command for it.
    (
        Pool("p", 1, 1, "on"),
        PoolWish("p", application="rbd", rbd_init=True),
        [["rbd", "pool", "init", "p"]],
    ),
    (
        Pool("p", 1, 1, "on", ["cephfs"]),
        PoolWish("p", application="rbd"),
        [["ceph", "osd", "pool", "application", "enable", "p", "rbd"]],
    ),
]


@pytest.mark.parametrize(("pool", "wish", "plan"), PLANS)
def test_pool_plan(pool: Pool, wish: PoolWish, plan: list[list[str]]) -> None:
    assert pool_plan(pool, wish) == plan
    after = planned_pool(pool, plan)
    assert pool_plan(after, wish) == []


@pytest.mark.parametrize(
    ("stderr", "errno", "text"),
    [
        ("Error EACCES: access denied\n", 13, "access denied"),
        (
            "Error ENOENT: failed to find client.x in keyring\n",
            2,
            "failed to find client.x in keyring",
        ),
        (
            "2026-12-03T08:00:00.000+0000 7f00 -1 monclient(hunting): authenticate timed out"
            " after 2\n[errno 110] RADOS timed out (error connecting to the cluster)\n",
            110,
            "RADOS timed out (error connecting to the cluster)",
        ),
        (
            "rbd: error opening pool 'x': (2) No such file or directory\n",
            2,
            "rbd: error opening pool 'x': (2) No such file or directory",
        ),
        ("", None, "no output"),
    ],
    ids=["eacces", "enoent", "timeout", "rbd", "empty"],
)
def test_parse_failure(stderr: str, errno: int | None, text: str) -> None:
    failure = parse_failure(stderr)
    assert (failure.errno, failure.text) == (errno, text)


def test_parse_failure_finds_where_ceph_looked_for_a_keyring() -> None:
    stderr = (
        "2026-12-03T08:00:00.000+0000 7f00 -1 auth: unable to find a keyring on "
        "/etc/ceph/ceph.client.x.keyring,/etc/ceph/ceph.keyring: (2) No such file or directory\n"
        "[errno 2] RADOS object not found (error connecting to the cluster)\n"
    )
    failure = parse_failure(stderr)
    assert failure.errno == 2
    assert failure.keyring_paths == "/etc/ceph/ceph.client.x.keyring,/etc/ceph/ceph.keyring"


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("[global]\n\tmon host = [v2:10.0.0.1:3300]\n", "[v2:10.0.0.1:3300]"),
        ("[global]\nmon_host=10.0.0.1,10.0.0.2 ; comment\n", "10.0.0.1,10.0.0.2"),
        ("[osd]\nmon host = 1.2.3.4\n", None),
        ("", None),
    ],
)
def test_mon_host_from_conf(text: str, hosts: str | None) -> None:
    assert mon_host_from_conf(text) == hosts


@pytest.mark.parametrize(
    ("name", "ok"),
    [("client.kubernetes", True), ("kubernetes", False), ("client.", False), ("user.x", False)],
)
def test_entity_names(name: str, ok: bool) -> None:
    assert (entity_name_problem(name) is None) is ok


def test_caps_args_in_ceph_order() -> None:
    caps = {"osd": "profile rbd pool=k", "mon": "profile rbd", "mgr": "profile rbd pool=k"}
    assert caps_args(caps) == [
        "mon",
        "profile rbd",
        "mgr",
        "profile rbd pool=k",
        "osd",
        "profile rbd pool=k",
    ]


@pytest.mark.parametrize(
    ("keyring", "failure", "starts"),
    [
        # Ceph's own line about the keyring it looked for.
        (None, Failure(2, "RADOS object not found (error connecting to the cluster)",
                       "/etc/ceph/ceph.client.nobody.keyring"),
         "ceph osd pool ls: no keyring for client.nobody (Ceph looked in /etc/ceph/ceph.client"),
        # The same failure when ceph exited before its log thread printed that line.
        (None, Failure(2, "RADOS object not found (error connecting to the cluster)"),
         "ceph osd pool ls: no keyring for client.nobody (Ceph looked in the conf's keyring"),
        # A keyring was given: ENOENT is something else, said as Ceph said it.
        ("/k", Failure(2, "RADOS object not found (error connecting to the cluster)"),
         "ceph osd pool ls: (2) RADOS object not found"),
    ],
)  # fmt: skip
def test_a_missing_keyring_is_named_with_or_without_cephs_log_line(
    keyring: str | None, failure: Failure, starts: str
) -> None:
    from ansible_collections.airlock.cluster.plugins.module_utils.ceph_run import Connection

    connection = Connection("ceph", "/etc/ceph/ceph.conf", "client.nobody", keyring, 10)
    assert connection.explain("ceph osd pool ls", failure).startswith(starts)
