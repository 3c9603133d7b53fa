"""airlock.cluster.harbor_project against the Harbor stand-in (never a real Harbor).

Each case: Harbor's state before, the module's options, and what must follow: changed,
actions, the changing requests Harbor received (in order), and the project afterwards.
A present case is run a second time and must change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.modules import harbor_project

from tests.module_harness import ModuleFailed, run_module

GIB = 1024**3


@dataclass
class Case:
    id: str
    params: dict[str, Any]
    given: Callable[[Any], Any] = lambda standin: None
    check_mode: bool = False
    changed: bool = True
    actions: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    # (public, storage) of project "airlock" in the stand-in afterwards; None: absent
    then: tuple[bool, int | None] | None = None


CASES = [
    Case(
        "create-private-by-default",
        {"name": "airlock"},
        actions=["created"],
        writes=["POST /projects"],
        then=(False, -1),
    ),
    Case(
        "create-public-with-quota",
        {"name": "airlock", "public": True, "storage_limit": 200 * GIB},
        actions=["created"],
        writes=["POST /projects"],
        then=(True, 200 * GIB),
    ),
    Case(
        "unchanged",
        {"name": "airlock", "storage_limit": 10 * GIB},
        given=lambda s: s.seed_project("airlock", storage=10 * GIB),
        changed=False,
        then=(False, 10 * GIB),
    ),
    Case(
        "unchanged-quota-not-managed",
        {"name": "airlock"},
        given=lambda s: s.seed_project("airlock", storage=5 * GIB),
        changed=False,
        then=(False, 5 * GIB),
    ),
    Case(
        "check-mode-create",
        {"name": "airlock", "storage_limit": GIB},
        check_mode=True,
        actions=["created"],
        then=None,
    ),
    Case(
        "made-public",
        {"name": "airlock", "public": True},
        given=lambda s: s.seed_project("airlock"),
        actions=["updated visibility"],
        writes=["PUT /projects/airlock"],
        then=(True, -1),
    ),
    Case(
        "quota-changed",
        {"name": "airlock", "storage_limit": 50 * GIB},
        given=lambda s: s.seed_project("airlock", storage=10 * GIB),
        actions=["updated quota"],
        writes=["PUT /quotas/{quota}"],
        then=(False, 50 * GIB),
    ),
    Case(
        "both-changed",
        {"name": "airlock", "public": False, "storage_limit": -1},
        given=lambda s: s.seed_project("airlock", public=True, storage=GIB),
        actions=["updated visibility", "updated quota"],
        writes=["PUT /projects/airlock", "PUT /quotas/{quota}"],
        then=(False, -1),
    ),
    Case(
        "check-mode-update",
        {"name": "airlock", "public": True, "storage_limit": 2 * GIB},
        given=lambda s: s.seed_project("airlock", storage=GIB),
        check_mode=True,
        actions=["updated visibility", "updated quota"],
        then=(False, GIB),
    ),
    Case(
        "absent-deletes",
        {"name": "airlock", "state": "absent"},
        given=lambda s: s.seed_project("airlock"),
        actions=["deleted"],
        writes=["DELETE /projects/airlock"],
        then=None,
    ),
    Case(
        "absent-already",
        {"name": "airlock", "state": "absent"},
        changed=False,
        then=None,
    ),
    Case(
        "check-mode-absent",
        {"name": "airlock", "state": "absent"},
        given=lambda s: s.seed_project("airlock"),
        check_mode=True,
        actions=["deleted"],
        then=(False, -1),
    ),
]


def project_state(standin) -> tuple[bool, int | None] | None:
    project = standin.project("airlock")
    if project is None:
        return None
    quota = standin.quota_of(project.project_id)
    return project.metadata["public"] == "true", quota.storage if quota else None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_project(harbor, case: Case):
    standin = harbor.standin
    seeded = case.given(standin)
    quota = standin.quota_of(seeded.project_id) if seeded else None
    result = run_module(harbor_project, harbor.params(**case.params), check_mode=case.check_mode)
    assert result["changed"] is case.changed
    assert result["actions"] == case.actions
    expected = [w.replace("{quota}", str(quota.quota_id if quota else "")) for w in case.writes]
    assert standin.writes() == expected
    assert project_state(standin) == case.then
    if case.params.get("state", "present") == "present" and not case.check_mode:
        after = result["project"]
        assert (after["public"], after["storage_limit"]) == case.then
        assert after["project_id"] == standin.project("airlock").project_id
        assert result["diff"]["after"].startswith("name: airlock\n")
        again = run_module(harbor_project, harbor.params(**case.params))
        assert again["changed"] is False and again["actions"] == []
        assert standin.writes() == expected, "a second run must change nothing"


def test_check_mode_reports_what_a_real_run_does(harbor):
    params = harbor.params(name="airlock", public=True, storage_limit=3 * GIB)
    planned = run_module(harbor_project, params, check_mode=True)
    done = run_module(harbor_project, params)
    assert planned["actions"] == done["actions"] == ["created"]
    assert planned["diff"] == done["diff"]


@dataclass
class Failure:
    id: str
    params: dict[str, Any]
    expected: list[str]
    given: Callable[[Any], Any] = lambda standin: None
    writes: list[str] = field(default_factory=list)


FAILURES = [
    Failure(
        "wrong-password",
        {"name": "airlock", "password": "wrong"},
        ["answered 401", "did not accept user admin's password"],
    ),
    Failure(
        "not-an-admin",
        {"name": "airlock", "username": "dev", "password": "Developer1"},
        ["user dev is not a Harbor system administrator"],
    ),
    Failure(
        "project-with-repositories",
        {"name": "airlock", "state": "absent"},
        ["answered 412", "the project contains repositories, can not be deleted"],
        given=lambda s: s.seed_project("airlock", repo_count=2),
        writes=["DELETE /projects/airlock"],
    ),
    Failure(
        "harbor-refuses-creation",
        {"name": "airlock"},
        ["POST", "answered 500", "internal server error"],
        given=lambda s: s.fail_next("createProject", 500, "internal server error"),
        writes=["POST /projects"],
    ),
    Failure(
        "quotas-disabled",
        {"name": "airlock", "storage_limit": GIB},
        ["Harbor keeps no storage quota for the project"],
        given=lambda s: s.seed_project("airlock", storage=None),
    ),
    Failure(
        "bad-name",
        {"name": "Airlock"},
        ["name 'Airlock'", "lower-case"],
    ),
    Failure(
        "bad-quota",
        {"name": "airlock", "storage_limit": 0},
        ["storage_limit 0", "-1 for unlimited"],
    ),
]


@pytest.mark.parametrize("case", FAILURES, ids=[c.id for c in FAILURES])
def test_project_failure_is_one_clear_line(harbor, case: Failure):
    case.given(harbor.standin)
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_project, harbor.params(**case.params))
    msg = failed.value.result["msg"]
    assert "\n" not in msg and "Harbor12345" not in msg
    assert msg.startswith("harbor_project")
    for fragment in case.expected:
        assert fragment in msg, msg
    assert harbor.standin.writes() == case.writes


def test_wrong_ca_names_the_ca_file(harbor, pki):
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_project, harbor.params(name="airlock", ca_cert=str(pki.other_ca)))
    msg = failed.value.result["msg"]
    assert "\n" not in msg and f"ca_cert {pki.other_ca}" in msg
    assert harbor.standin.requests == [], "nothing may reach Harbor over an unverified TLS"
