"""Pure logic of module_utils/etcd.py as tables of cases, and etcd_run's offline-tool choice."""

from __future__ import annotations

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.etcd import (
    ClusterHealth,
    EndpointState,
    Member,
    error_text,
    find_member,
    initial_cluster,
    json_list,
    parse_members,
    parse_status,
    parse_version,
    removal_blocker,
    status_failures,
)
from ansible_collections.airlock.cluster.plugins.module_utils.etcd_run import (
    Etcdctl,
    EtcdctlError,
)


def members(*specs: str) -> list[Member]:
    """'m1' is a voter, 'm4~' a learner; ids are 1, 2, ..."""
    return [
        Member(
            i,
            s.rstrip("~"),
            [f"https://10.0.0.{i}:2380"],
            [f"https://10.0.0.{i}:2379"],
            s.endswith("~"),
        )
        for i, s in enumerate(specs, start=1)
    ]


@pytest.mark.parametrize(
    ("specs", "healthy", "target", "expected"),
    [
        (["m1", "m2", "m3"], {1, 2, 3}, "m3", None),
        (["m1", "m2", "m3"], {1, 2}, "m3", None),
        (["m1", "m2", "m3"], {1, 2}, "m2", "leaves 1 healthy of 2"),
        (["m1", "m2", "m3"], {1}, "m1", "only healthy member"),
        (["m1"], {1}, "m1", "only voting member"),
        (["m1", "m2", "m3", "m4~"], {1}, "m4", None),  # learners never hold quorum
        (["m1", "m2", "m3", "m4", "m5"], {1, 2, 3, 4}, "m4", None),
        (["m1", "m2", "m3", "m4", "m5"], {1, 2, 3}, "m3", "leaves 2 healthy of 4"),
    ],
)
def test_removal_blocker(specs, healthy, target, expected):
    ms = members(*specs)
    reason = removal_blocker(ms, healthy, next(m for m in ms if m.name == target))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            '{"level":"warn","msg":"retrying"}\nError: etcdserver: member not found\n',
            "etcdserver: member not found",
        ),
        ("Error: context deadline exceeded", "context deadline exceeded"),
        ("open /x.crt: no such file or directory\n", "open /x.crt: no such file or directory"),
        ("", "no output"),
    ],
)
def test_error_text(stderr, expected):
    assert error_text(stderr) == expected


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("etcdctl version: 3.4.23\nAPI version: 3.4\n", (3, 4)),
        ("etcdctl version: 3.6.5\nAPI version: 3.6\n", (3, 6)),
        ("", (0, 0)),
    ],
)
def test_parse_version(out, expected):
    assert parse_version(out) == expected


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ('[{"Endpoint": "a"}]', [{"Endpoint": "a"}]),
        ("", []),
        ("not json", []),
        ('{"Endpoint": "a"}', []),
    ],
)
def test_json_list(out, expected):
    assert json_list(out) == expected


def test_parse_members_converts_ids_to_hex_and_marks_learners():
    data = {
        "members": [
            {
                "ID": 13668033151171901709,
                "name": "a",
                "peerURLs": ["http://127.0.0.1:2380"],
                "clientURLs": ["http://127.0.0.1:2379"],
            },
            {"ID": 1630827039616429113, "peerURLs": ["http://127.0.0.1:2381"], "isLearner": True},
        ]
    }
    parsed = parse_members(data)
    assert [m.hex_id for m in parsed] == ["bdae9bbc11dd390d", "16a1dc8d52706c39"]
    assert [m.started for m in parsed] == [True, False]
    assert initial_cluster(parsed, {parsed[1].id: "b"}) == (
        "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381"
    )


@pytest.mark.parametrize(
    ("peer_urls", "name", "expected"),
    [
        (["https://10.0.0.2:2380/"], None, "m2"),
        (["HTTPS://10.0.0.3:2380"], "m1", "m3"),  # peer URL wins over name
        ([], "m1", "m1"),
        (["https://10.0.0.9:2380"], None, None),
    ],
)
def test_find_member(peer_urls, name, expected):
    found = find_member(members("m1", "m2", "m3"), peer_urls, name)
    assert (found.name if found else None) == expected


def test_parse_status_and_failures():
    entries = [
        {
            "Endpoint": "https://a:2379",
            "Status": {
                "header": {"member_id": 10, "revision": 7},
                "leader": 10,
                "raftIndex": 9,
                "raftTerm": 2,
                "dbSize": 20480,
                "version": "3.4.23",
            },
        }
    ]
    state = parse_status(entries)["https://a:2379"]
    assert (state.member_id, state.is_leader, state.revision, state.raft_index) == ("a", True, 7, 9)
    stderr = "Failed to get the status of endpoint https://b:2379 (context deadline exceeded)\n"
    assert status_failures(stderr) == {"https://b:2379": "context deadline exceeded"}


@pytest.mark.parametrize(
    ("states", "healthy", "problem"),
    [
        ([("a", True, "1"), ("b", True, "1")], True, None),
        ([("a", True, "1"), ("b", True, "2")], False, "disagree"),
        ([("a", True, "1"), ("b", False, None)], False, "b: not healthy"),
        ([("a", True, None)], False, "no endpoint reports a leader"),
        ([], False, None),
    ],
)
def test_cluster_health_summary(states, healthy, problem):
    health = ClusterHealth(
        [
            EndpointState(endpoint=e, reachable=ok, healthy=ok, leader_id=leader)
            for e, ok, leader in states
        ]
    )
    assert health.healthy is healthy
    if problem:
        assert any(problem in p for p in health.problems())


class _FakeModule:
    """Enough of AnsibleModule for Etcdctl: PATH lookups and `etcdctl version`."""

    def __init__(self, etcdctl_version: str, etcdutl: str | None) -> None:
        self.params = {"endpoints": ["https://127.0.0.1:2379"]}
        self._version = etcdctl_version
        self._etcdutl = etcdutl

    def get_bin_path(self, name: str, required: bool = False, opt_dirs=None) -> str | None:
        return {"etcdctl": "/usr/bin/etcdctl", "etcdutl": self._etcdutl}.get(name)

    def run_command(self, argv, environ_update=None, check_rc=False):
        assert argv[1:] == ["version"]
        return 0, f"etcdctl version: {self._version}\nAPI version: 3.x\n", ""


@pytest.mark.parametrize(
    ("version", "etcdutl", "expected"),
    [
        ("3.4.23", None, "/usr/bin/etcdctl"),
        ("3.5.24", None, "/usr/bin/etcdctl"),
        ("3.4.23", "/usr/local/bin/etcdutl", "/usr/local/bin/etcdutl"),
        ("3.6.5", "/usr/local/bin/etcdutl", "/usr/local/bin/etcdutl"),
        ("3.6.5", None, "moved it to etcdutl"),
    ],
)
def test_offline_snapshot_tool(version, etcdutl, expected):
    ctl = Etcdctl(_FakeModule(version, etcdutl))
    if expected.startswith("/"):
        assert ctl.offline_tool("restore") == expected
    else:
        with pytest.raises(EtcdctlError, match=expected):
            ctl.offline_tool("restore")
