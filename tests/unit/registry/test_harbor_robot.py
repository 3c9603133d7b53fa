"""airlock.cluster.harbor_robot against the Harbor stand-in (never a real Harbor).

Each case: Harbor's state before, the module's options, and what must follow: changed,
actions, the changing requests Harbor received, and the robot's grants afterwards. A
present case is run again and must change nothing. The secret is checked the way Harbor
would check a node's login (`robot_login`), and must appear nowhere but where documented.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.airlock.cluster.plugins.modules import harbor_robot

from tests.module_harness import ModuleFailed, run_module

from .harbor_standin import ADMIN_PASSWORD

PULL = [("repository", "pull")]
NAME = "robot$nodes"


def with_projects(*names: str) -> Callable[[Any], None]:
    """Harbor with these projects (besides its own `library`)."""

    def given(standin) -> None:
        for name in names:
            standin.seed_project(name)

    return given


AIRLOCK_ONLY = with_projects("airlock")


def then_seed(first: Callable[[Any], None], **robot: Any) -> Callable[[Any], None]:
    def given(standin) -> None:
        first(standin)
        rest = {k: v for k, v in robot.items() if k not in ("projects", "access")}
        standin.seed_robot(
            "nodes", robot.get("projects", ["airlock"]), robot.get("access", PULL), **rest
        )

    return given


@dataclass
class Case:
    id: str
    params: dict[str, Any]
    given: Callable[[Any], None] = AIRLOCK_ONLY
    check_mode: bool = False
    changed: bool = True
    actions: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    # (project, resource, action) the robot holds afterwards; None: no robot
    then: set[tuple[str, str, str]] | None = None


CASES = [
    Case(
        "create-pull-only",
        {"projects": ["airlock"]},
        actions=["created"],
        writes=["POST /robots"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "create-for-two-projects",
        {"projects": ["tools", "airlock"], "duration": 90},
        given=with_projects("airlock", "tools"),
        actions=["created"],
        writes=["POST /robots"],
        then={("airlock", "repository", "pull"), ("tools", "repository", "pull")},
    ),
    Case(
        "create-with-read-only-extras",
        {"projects": ["airlock"], "access": ["repository:pull", "artifact:read"]},
        actions=["created"],
        writes=["POST /robots"],
        then={("airlock", "repository", "pull"), ("airlock", "artifact", "read")},
    ),
    Case(
        "unchanged",
        {"projects": ["airlock"], "description": "node pulls"},
        given=then_seed(with_projects("airlock"), description="node pulls"),
        changed=False,
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "check-mode-create",
        {"projects": ["airlock"]},
        check_mode=True,
        actions=["created"],
        then=None,
    ),
    Case(
        "project-added",
        {"projects": ["airlock", "tools"]},
        given=then_seed(with_projects("airlock", "tools")),
        actions=["updated"],
        writes=["PUT /robots/{id}"],
        then={("airlock", "repository", "pull"), ("tools", "repository", "pull")},
    ),
    Case(
        "project-removed",
        {"projects": ["airlock"]},
        given=then_seed(with_projects("airlock", "tools"), projects=["airlock", "tools"]),
        actions=["updated"],
        writes=["PUT /robots/{id}"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "push-added-in-the-ui-is-taken-away",
        {"projects": ["airlock"]},
        given=then_seed(
            with_projects("airlock"), access=[("repository", "pull"), ("repository", "push")]
        ),
        actions=["updated"],
        writes=["PUT /robots/{id}"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "duration-changed",
        {"projects": ["airlock"], "duration": 365},
        given=then_seed(with_projects("airlock")),
        actions=["updated"],
        writes=["PUT /robots/{id}"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "disabled-robot-enabled",
        {"projects": ["airlock"]},
        given=then_seed(with_projects("airlock"), disable=True),
        actions=["updated"],
        writes=["PUT /robots/{id}"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "check-mode-update",
        {"projects": ["airlock", "tools"]},
        given=then_seed(with_projects("airlock", "tools")),
        check_mode=True,
        actions=["updated"],
        then={("airlock", "repository", "pull")},
    ),
    Case(
        "absent-deletes",
        {"state": "absent"},
        given=then_seed(with_projects("airlock")),
        actions=["deleted"],
        writes=["DELETE /robots/{id}"],
        then=None,
    ),
    Case(
        "absent-already",
        {"state": "absent"},
        changed=False,
        then=None,
    ),
    Case(
        "check-mode-absent",
        {"state": "absent"},
        given=then_seed(with_projects("airlock")),
        check_mode=True,
        actions=["deleted"],
        then={("airlock", "repository", "pull")},
    ),
]


def grants_of(standin) -> set[tuple[str, str, str]] | None:
    return standin.robot_grants(NAME) if standin.robot(NAME) else None


def leaks(result: dict[str, Any], secret: str) -> bool:
    """Does the secret appear anywhere in the result but its documented `secret` key?"""
    rest = {k: v for k, v in result.items() if k != "secret"}
    return secret in json.dumps(rest, default=str)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_robot(harbor, case: Case):
    standin = harbor.standin
    case.given(standin)
    before = standin.robot(NAME)
    old_secret = before.secret if before else None
    params = harbor.params(name="nodes", **case.params)
    result = run_module(harbor_robot, params, check_mode=case.check_mode)
    assert result["changed"] is case.changed
    assert result["actions"] == case.actions
    robot = standin.robot(NAME)
    robot_id = (robot or before).robot_id if (robot or before) else None
    assert standin.writes() == [w.replace("{id}", str(robot_id)) for w in case.writes]
    assert grants_of(standin) == case.then
    assert result["username"] == NAME
    if "created" in case.actions and not case.check_mode:
        # Without secret_file the secret comes back once, and it is the one Harbor accepts.
        assert standin.robot_login(NAME, result["secret"])
        assert not leaks(result, result["secret"])
        assert robot.level == "system"
    else:
        assert "secret" not in result
    if old_secret and robot:
        assert standin.robot_login(NAME, old_secret), "an update must keep the secret valid"
        assert not leaks(result, old_secret)
    if case.params.get("state", "present") == "present" and not case.check_mode:
        permissions = result["robot"]["permissions"]
        held = {
            (p["namespace"], a["resource"], a["action"]) for p in permissions for a in p["access"]
        }
        assert held == case.then
        assert result["robot"]["duration"] == case.params.get("duration", -1)
        again = run_module(harbor_robot, params)
        assert again["changed"] is False and again["actions"] == []
        assert "secret" not in again
        assert len(standin.writes()) == len(case.writes), "a second run must change nothing"


@pytest.mark.parametrize(
    ("with_file", "actions"),
    [(False, ["created"]), (True, ["created", "wrote secret_file"])],
    ids=["secret-returned", "secret-file"],
)
def test_check_mode_reports_what_a_real_run_does(harbor, tmp_path, with_file, actions):
    harbor.standin.seed_project("airlock")
    params = harbor.params(name="nodes", projects=["airlock"], duration=30)
    if with_file:
        params["secret_file"] = str(tmp_path / "secret")
    planned = run_module(harbor_robot, params, check_mode=True)
    assert not (tmp_path / "secret").exists()
    done = run_module(harbor_robot, params)
    assert planned["actions"] == done["actions"] == actions
    assert planned["diff"]["after"] == done["diff"]["after"]
    assert "secret" not in planned


# --- the secret -------------------------------------------------------------------------
def test_secret_file_gets_the_secret_0600_and_the_result_never_does(harbor, tmp_path):
    harbor.standin.seed_project("airlock")
    secret_file = tmp_path / "credentials" / "harbor-robot-nodes"
    params = harbor.params(name="nodes", projects=["airlock"], secret_file=str(secret_file))
    result = run_module(harbor_robot, params)
    assert result["actions"] == ["created", "wrote secret_file"]
    secret = secret_file.read_text()
    assert harbor.standin.robot_login(NAME, secret)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    assert "secret" not in result and not leaks(result, secret)
    assert result["secret_file"] == str(secret_file)
    assert [p.name for p in secret_file.parent.iterdir()] == [secret_file.name]
    again = run_module(harbor_robot, params)
    assert again["changed"] is False and secret_file.read_text() == secret


def test_a_missing_secret_file_makes_harbor_issue_a_new_secret(harbor, tmp_path):
    """A run that died after creating the robot (or a deleted file) heals on the next run."""
    harbor.standin.seed_project("airlock")
    old = harbor.standin.seed_robot("nodes", ["airlock"], PULL).secret
    secret_file = tmp_path / "harbor-robot-nodes"
    params = harbor.params(name="nodes", projects=["airlock"], secret_file=str(secret_file))
    planned = run_module(harbor_robot, params, check_mode=True)
    assert planned["actions"] == ["refreshed secret", "wrote secret_file"]
    assert not secret_file.exists()
    result = run_module(harbor_robot, params)
    assert result["actions"] == ["refreshed secret", "wrote secret_file"]
    new = secret_file.read_text()
    assert harbor.standin.robot_login(NAME, new)
    assert not harbor.standin.robot_login(NAME, old)
    assert not leaks(result, new)
    robot_id = harbor.standin.robot(NAME).robot_id
    assert harbor.standin.writes() == [f"PATCH /robots/{robot_id}"]


def test_refresh_secret_rotates_and_returns_the_new_one_once(harbor):
    harbor.standin.seed_project("airlock")
    old = harbor.standin.seed_robot("nodes", ["airlock"], PULL).secret
    params = harbor.params(name="nodes", projects=["airlock"], refresh_secret=True)
    result = run_module(harbor_robot, params)
    assert result["actions"] == ["refreshed secret"]
    assert harbor.standin.robot_login(NAME, result["secret"])
    assert not harbor.standin.robot_login(NAME, old)


def test_absent_removes_the_secret_file(harbor, tmp_path):
    harbor.standin.seed_project("airlock")
    harbor.standin.seed_robot("nodes", ["airlock"], PULL)
    secret_file = tmp_path / "harbor-robot-nodes"
    secret_file.write_text("old")
    params = harbor.params(name="nodes", state="absent", secret_file=str(secret_file))
    result = run_module(harbor_robot, params)
    assert result["actions"] == ["deleted", "removed secret_file"]
    assert not secret_file.exists() and harbor.standin.robot(NAME) is None


def test_an_unwritable_secret_file_fails_saying_how_it_heals(harbor, tmp_path):
    harbor.standin.seed_project("airlock")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    params = harbor.params(
        name="nodes", projects=["airlock"], secret_file=str(blocked / "harbor-robot-nodes")
    )
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_robot, params)
    msg = failed.value.result["msg"]
    assert "writing secret_file" in msg and "re-run" in msg and "\n" not in msg
    assert failed.value.result["actions"] == ["created"]
    # The robot exists; the next run (with a usable path) refreshes its secret.
    good = tmp_path / "harbor-robot-nodes"
    healed = run_module(harbor_robot, {**params, "secret_file": str(good)})
    assert healed["actions"] == ["refreshed secret", "wrote secret_file"]
    assert harbor.standin.robot_login(NAME, good.read_text())


def test_an_expired_robot_is_warned_about(harbor, monkeypatch):
    harbor.standin.seed_project("airlock")
    harbor.standin.seed_robot("nodes", ["airlock"], PULL, duration=30, created_days_ago=40)
    warnings: list[str] = []
    monkeypatch.setattr(
        "ansible.module_utils.basic.AnsibleModule.warn", lambda _m, w: warnings.append(w)
    )
    params = harbor.params(name="nodes", projects=["airlock"], duration=35)
    result = run_module(harbor_robot, params)
    assert result["actions"] == ["updated"]
    assert warnings and "expired" in warnings[0] and "raise duration or set -1" in warnings[0]
    warnings.clear()
    unchanged = run_module(harbor_robot, params)
    assert unchanged["changed"] is False and "expired" in warnings[0], "said on every run"
    never = run_module(harbor_robot, {**params, "duration": -1})
    assert never["robot"]["expires_at"] == -1
    assert harbor.standin.robot_login(NAME, harbor.standin.robot(NAME).secret)


# --- refusals ------------------------------------------------------------------------------
@dataclass
class Failure:
    id: str
    params: dict[str, Any]
    expected: list[str]
    given: Callable[[Any], None] = AIRLOCK_ONLY
    writes: list[str] = field(default_factory=list)


FAILURES = [
    Failure(
        "push-refused",
        {"projects": ["airlock"], "access": ["repository:pull", "repository:push"]},
        ["['repository:push'] refused", "read-only robots"],
    ),
    Failure(
        "admin-refused",
        {"projects": ["airlock"], "access": ["member:create"]},
        ["['member:create'] refused"],
    ),
    Failure("no-projects", {}, ["projects is empty"]),
    Failure(
        "missing-project",
        {"projects": ["airlock", "ghost"]},
        ["project(s) ghost do not exist in Harbor", "harbor_project"],
    ),
    Failure(
        "wrong-password",
        {"projects": ["airlock"], "password": "wrong"},
        ["answered 401", "did not accept user admin's password"],
    ),
    Failure(
        "not-an-admin",
        {"projects": ["airlock"], "username": "dev", "password": "Developer1"},
        ["user dev is not a Harbor system administrator"],
    ),
    Failure(
        "bad-duration",
        {"projects": ["airlock"], "duration": 0},
        ["duration 0", "-1 for never"],
    ),
    Failure("bad-name", {"projects": ["airlock"], "name": "robot$x"}, ["name 'robot$x'"]),
    Failure(
        "legacy-robot",
        {"projects": ["airlock"], "name_prefix": ""},
        ["legacy (v1) robot account"],
        given=then_seed(with_projects("airlock"), editable=False),
    ),
    Failure(
        "harbor-refuses-update",
        {"projects": ["airlock"], "duration": 7},
        ["PUT", "answered 403", "no robots today"],
        given=lambda s: (
            then_seed(with_projects("airlock"))(s),
            s.fail_next("UpdateRobot", 403, "no robots today"),
        ),
        writes=["PUT /robots/{id}"],
    ),
]


@pytest.mark.parametrize("case", FAILURES, ids=[c.id for c in FAILURES])
def test_robot_failure_is_one_clear_line(harbor, case: Failure):
    case.given(harbor.standin)
    params = harbor.params(**{"name": "nodes", **case.params})
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_robot, params)
    msg = failed.value.result["msg"]
    assert "\n" not in msg and ADMIN_PASSWORD not in msg
    assert msg.startswith("harbor_robot")
    for fragment in case.expected:
        assert fragment in msg, msg
    robots = list(harbor.standin.robots.values())
    expected = [w.replace("{id}", str(robots[0].robot_id if robots else "")) for w in case.writes]
    assert harbor.standin.writes() == expected


def test_a_different_robot_prefix_is_explained(harbor, tmp_path):
    harbor.standin.robot_prefix = "bot-"
    harbor.standin.seed_project("airlock")
    secret_file = tmp_path / "s"
    params = harbor.params(name="nodes", projects=["airlock"], secret_file=str(secret_file))
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_robot, params)
    assert "set name_prefix to Harbor's robot_name_prefix" in failed.value.result["msg"]
    assert harbor.standin.robot_login("bot-nodes", secret_file.read_text())
    fixed = run_module(harbor_robot, {**params, "name_prefix": "bot-"})
    assert fixed["changed"] is False and fixed["username"] == "bot-nodes"


def test_wrong_ca_names_the_ca_file_and_sends_nothing(harbor, pki):
    params = harbor.params(name="nodes", projects=["airlock"], ca_cert=str(pki.other_ca))
    with pytest.raises(ModuleFailed) as failed:
        run_module(harbor_robot, params)
    msg = failed.value.result["msg"]
    assert "\n" not in msg and f"ca_cert {pki.other_ca}" in msg
    assert harbor.standin.requests == []


def test_ansible_masks_the_password_and_a_secret_kept_in_a_file(harbor, tmp_path):
    """exit_json replaces every value in no_log_values by ******** in what it prints."""
    harbor.standin.seed_project("airlock")
    secret_file = tmp_path / "harbor-robot-nodes"
    params = harbor.params(name="nodes", projects=["airlock"], secret_file=str(secret_file))
    with patch_module_args(params):
        module = harbor_robot.build_module()
    harbor_robot.run_module(module)
    assert ADMIN_PASSWORD in module.no_log_values
    assert secret_file.read_text() in module.no_log_values
