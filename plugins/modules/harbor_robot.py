#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: ensure a read-only Harbor robot account (node pulls) for given projects."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.harbor import (
    CONNECTION_ARGUMENT_SPEC,
    DEFAULT_ROBOT_PREFIX,
    NAME_PATTERN,
    PULL_ACCESS,
    READ_ONLY_PROJECT_ACCESS,
    Access,
    Harbor,
    HarborError,
    Permission,
    Robot,
    connect,
    grants,
)

DOCUMENTATION = r"""
---
module: harbor_robot
short_description: Ensure a least-privilege Harbor robot account for pulling from given projects
version_added: "0.1.0"
description:
  - Creates, updates or deletes one system-level robot account through Harbor's v2.0 REST
    API (C(/api/v2.0/robots)), over HTTPS verified against O(ca_cert), as a Harbor system
    administrator. Nodes (containerd, an imagePullSecret) log in as RV(username) with the
    robot's secret.
  - B(Least privilege.) By default the robot may only C(repository:pull) in each of
    O(projects) and nothing else (no push, no system permission, no other project).
    C(repository:pull) is all a pull needs (Harbor checks it for every registry read; see
    src/server/middleware/v2auth in Harbor's source); C(artifact:read) is for the REST API
    and is not granted. O(access) may add other B(read-only) permissions; anything that
    writes or administers (push, delete, create, ...) is refused before Harbor is asked.
  - B(Idempotent.) A robot with exactly the wanted permissions, duration and description
    is left alone (C(changed=false)). Different ones (a project added or removed, a
    permission someone added in Harbor's UI) are replaced with C(PUT /robots/{id}), and the
    secret stays valid. Check mode reports what would change and changes nothing.
  - B(The secret.) Harbor generates a robot's secret when it creates the robot and sends
    it once; it can never be read back. With O(secret_file) (recommended) the module writes
    it there (mode 0600, atomically) before it returns, and never returns it. When the
    robot exists but O(secret_file) does not, the module makes Harbor generate a new secret
    (C(PATCH /robots/{id})) and writes that, so a run that died after creating the robot
    heals on the next run, and deleting the file rotates the secret. Without O(secret_file)
    the secret is returned once, as RV(secret), in the run that created (or refreshed) the
    robot; the task then needs C(no_log) and the caller must keep it, or it is lost.
    The module prints the secret nowhere else.
  - A robot is system-level with one C(project) permission per project, so a single robot
    may pull from several projects and O(projects) may change later (Harbor ties a
    project-level robot to one project and refuses to move it).
  - B(What was tested, and what was not.) This module was tested only against a stand-in
    for Harbor built from Harbor's published API description (goharbor/harbor
    C(api/v2.0/swagger.yaml) at tag v2.15.2, commit
    080b0220574cc853ae1e2946ce7a5610ba855757), which validates every request and every
    response against that file's schemas, and mimics what Harbor's handlers do beyond it
    (read from Harbor's source at the same commit - the C(robot$) name prefix, the secret
    sent only on creation and refresh, an update must repeat name and level, permission
    validation). It has B(never run against a running Harbor), and no image was ever
    pulled with a robot it made. Harbor could not be run where airlock is developed.
  - 'On a real Harbor, check after the first run (with the CA file, never C(-k)):
    C(curl --cacert CA -u admin "https://HARBOR/api/v2.0/robots?q=Level%3Dsystem") lists
    C(robot$NAME) with only C(repository) C(pull) per project;
    C(curl --cacert CA -u ''robot$NAME'' https://HARBOR/v2/), given the secret when curl asks
    for the password, answers 200 (a wrong secret 401); a pull of an image of one of
    O(projects) with those credentials succeeds and a push is refused; a second run reports
    C(changed=false).'
options:
  name:
    description:
      - Robot name without Harbor's prefix (lower-case letters, digits, C(.), C(_), C(-)).
        Harbor shows and authenticates it as O(name_prefix) + O(name) (RV(username)).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the robot. V(absent) deletes it and removes
        O(secret_file) if given.
    type: str
    choices: [present, absent]
    default: present
  projects:
    description:
      - Projects the robot may pull from (they must exist; see
        M(airlock.cluster.harbor_project)). Required with O(state=present).
    type: list
    elements: str
    default: []
  access:
    description:
      - Permissions granted in every project, as C(resource:action). Only read-only ones
        Harbor knows are accepted (C(repository:pull), C(artifact:read), C(tag:list), ...).
    type: list
    elements: str
    default: ["repository:pull"]
  duration:
    description:
      - Days the robot is valid, counted by Harbor from its creation; V(-1) never expires.
      - Never expiring is the default because an expired robot makes every node's pulls
        fail at once; choose a duration only with a plan to renew it.
    type: int
    default: -1
  description:
    description: Description Harbor shows for the robot.
    type: str
    default: ""
  secret_file:
    description:
      - File to keep the robot's secret in, written mode 0600 (its directory is created
        0700) on the host where the module runs; run the task with
        C(delegate_to=localhost) to keep it on the controller with the other credentials.
      - Written when the robot is created, and when the robot exists but the file does not
        (Harbor then makes a new secret, which invalidates the old one).
    type: path
  refresh_secret:
    description:
      - Make Harbor generate a new secret now (C(PATCH /robots/{id})) even though the robot
        exists (rotation). The old secret stops working at once. Reports changed every time
        it is set, so set it for one run.
    type: bool
    default: false
  name_prefix:
    description: Harbor's C(robot_name_prefix) setting (Harbor's default is C(robot$)).
    type: str
    default: robot$
extends_documentation_fragment:
  - airlock.cluster.harbor
attributes:
  check_mode:
    support: full
    details: Reads the robot and the projects; creates, updates and refreshes nothing.
  diff_mode:
    support: full
    details: Name, duration, description and permissions before and after (never the secret).
seealso:
  - module: airlock.cluster.harbor_project
requirements:
  - Harbor 2.x with the v2.0 API (robot accounts v2); described from v2.15.2 and tested only
    against a stand-in of it
author:
  - airlock developers
"""

EXAMPLES = r"""
# Recommended: the secret goes to a controller file (0600) and never into the task result.
- name: Robot account for node pulls from the airlock project
  airlock.cluster.harbor_robot:
    name: nodes
    projects: [airlock]
    description: Image pulls of the cluster's nodes
    secret_file: "{{ airlock_credentials_dir }}/harbor-robot-nodes"
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true
  register: _robot

# Without secret_file the secret is returned once, in the run that creates the robot:
# no_log keeps it out of the output and logs; keep it (here: a vault-encrypted file).
- name: Robot account, secret returned once
  airlock.cluster.harbor_robot:
    name: ci-read
    projects: [airlock, tools]
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true
  no_log: true
  register: _ci_robot

- name: Rotate the nodes robot's secret (one run)
  airlock.cluster.harbor_robot:
    name: nodes
    projects: [airlock]
    refresh_secret: true
    secret_file: "{{ airlock_credentials_dir }}/harbor-robot-nodes"
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true

- name: Remove the robot and its secret file
  airlock.cluster.harbor_robot:
    name: nodes
    state: absent
    secret_file: "{{ airlock_credentials_dir }}/harbor-robot-nodes"
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
username:
  description: The name the robot logs in with (O(name_prefix) + O(name)).
  returned: always
  type: str
  sample: robot$nodes
robot:
  description:
    - The robot after the run (as it would be, in check mode), without secret; null when absent.
  returned: always
  type: dict
  sample: {"id": 7, "name": "robot$nodes", "level": "system", "duration": -1, "expires_at": -1,
           "disable": false, "description": "", "permissions": [{"kind": "project",
           "namespace": "airlock", "access": [{"resource": "repository", "action": "pull",
           "effect": "allow"}]}]}
actions:
  description:
    - What was done, in order - V(created), V(updated), V(refreshed secret),
      V(wrote secret_file), V(deleted), V(removed secret_file).
  returned: always
  type: list
  elements: str
secret:
  description:
    - The robot's secret, only in the run in which Harbor generated it (creation or
      refresh) and only when O(secret_file) is not set. Use C(no_log) on the task.
  returned: when created or refreshed without secret_file
  type: str
secret_file:
  description: O(secret_file), when given.
  returned: when secret_file is set
  type: str
"""

_MAX_DURATION = 2**31 - 2  # Harbor: -1, or 0 < d < MaxInt32 (isValidDuration)


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "projects": {"type": "list", "elements": "str", "default": []},
            "access": {"type": "list", "elements": "str", "default": ["repository:pull"]},
            "duration": {"type": "int", "default": -1},
            "description": {"type": "str", "default": ""},
            "secret_file": {"type": "path"},
            "refresh_secret": {"type": "bool", "default": False},
            "name_prefix": {"type": "str", "default": DEFAULT_ROBOT_PREFIX},
            **CONNECTION_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )


def parse_access(entries: list[str]) -> tuple[tuple[Access, ...], list[str]]:
    """(The accesses, problems): every entry must be a read-only resource:action."""
    accesses: list[Access] = []
    problems: list[str] = []
    for entry in entries:
        resource, _, action = entry.partition(":")
        pair = (resource.strip(), action.strip())
        if pair not in READ_ONLY_PROJECT_ACCESS:
            problems.append(entry)
        elif Access(*pair) not in accesses:
            accesses.append(Access(*pair))
    return tuple(sorted(accesses, key=lambda a: (a.resource, a.action))), problems


def wanted_permissions(projects: list[str], accesses: tuple[Access, ...]) -> list[Permission]:
    return [Permission("project", name, accesses) for name in sorted(set(projects))]


def describe(robot: dict[str, Any] | None) -> str:
    if robot is None:
        return ""
    lines = [
        f"name: {robot['name']}",
        f"duration: {robot['duration']}",
        f"description: {robot['description']}",
        f"disable: {robot['disable']}",
    ]
    for perm in sorted(robot["permissions"], key=lambda p: (p["kind"], p["namespace"])):
        for acc in sorted(perm["access"], key=lambda a: (a["resource"], a["action"])):
            lines.append(f"{perm['kind']} {perm['namespace']}: {acc['resource']}:{acc['action']}")
    return "\n".join(lines) + "\n"


def _validate(params: dict[str, Any]) -> str | None:
    name = params["name"]
    if not NAME_PATTERN.match(name):
        return (
            f"name {name!r}: Harbor accepts lower-case letters, digits and single . _ - "
            "between them"
        )
    if params["state"] == "absent":
        return None
    if not params["projects"]:
        return "projects is empty: name the project(s) the robot may pull from"
    _accesses, refused = parse_access(params["access"])
    if refused or not params["access"]:
        allowed = ", ".join(sorted(f"{r}:{a}" for r, a in READ_ONLY_PROJECT_ACCESS))
        return (
            f"access {refused or '[]'} refused: this module makes read-only robots "
            f"(default {PULL_ACCESS[0][0]}:{PULL_ACCESS[0][1]}); allowed: {allowed}"
        )
    duration = params["duration"]
    if not (duration == -1 or 0 < duration <= _MAX_DURATION):
        return f"duration {duration}: give days (1 to {_MAX_DURATION}) or -1 for never"
    return None


def write_secret(path: str, secret: str) -> None:
    """``secret`` into ``path``, mode 0600, atomically (a reader sees old or new, whole)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-harbor-robot-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _has_secret_file(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path or "") and os.path.getsize(path or "") > 0


class RobotRun:
    """One run of the module: the plan, what was done, and the secret's delivery."""

    def __init__(self, module: AnsibleModule, harbor: Harbor) -> None:
        self.module = module
        self.harbor = harbor
        params = module.params
        self.full_name = f"{params['name_prefix']}{params['name']}"
        self.secret_file: str | None = params["secret_file"]
        self.actions: list[str] = []
        self.result: dict[str, Any] = {"username": self.full_name}
        if self.secret_file:
            self.result["secret_file"] = self.secret_file

    def obtain_secret(self, ask_harbor: Callable[[], str]) -> None:
        """Have Harbor make a secret (unless in check mode) and deliver it."""
        if self.module.check_mode:
            if self.secret_file:
                self.actions.append("wrote secret_file")
            return
        self.deliver(ask_harbor())

    def deliver(self, secret: str) -> None:
        """The secret Harbor just sent: into secret_file, else into the result once."""
        if not self.secret_file:
            self.result["secret"] = secret
            return
        # From here on Ansible masks the value wherever it might appear in the output.
        self.module.no_log_values.add(secret)
        try:
            write_secret(self.secret_file, secret)
        except OSError as exc:
            raise HarborError(
                f"Harbor made the secret but writing secret_file {self.secret_file} failed "
                f"({exc.strerror}); fix the path and re-run: a missing secret_file makes "
                "the module refresh the secret"
            ) from None
        self.actions.append("wrote secret_file")

    def finish(self, before: Robot | None, after: dict[str, Any] | None) -> dict[str, Any]:
        before_dict = before.to_result() if before else None
        return {
            **self.result,
            "changed": bool(self.actions),
            "actions": self.actions,
            "robot": after,
            "diff": {"before": describe(before_dict), "after": describe(after)},
        }

    # -- present ------------------------------------------------------------------------
    def present(self) -> dict[str, Any]:
        params = self.module.params
        harbor = self.harbor
        missing = [p for p in sorted(set(params["projects"])) if harbor.find_project(p) is None]
        if missing:
            raise HarborError(
                f"project(s) {', '.join(missing)} do not exist in Harbor; create them first "
                "(airlock.cluster.harbor_project)"
            )
        accesses, _refused = parse_access(params["access"])
        want = wanted_permissions(params["projects"], accesses)
        robot = harbor.find_robot(self.full_name)
        if robot is None:
            return self._create(want)
        if not robot.editable:
            raise HarborError(
                f"robot {self.full_name} is a legacy (v1) robot account, which Harbor does "
                "not let anyone edit; delete it in Harbor and re-run"
            )
        wanted = {
            **robot.to_result(),
            "duration": params["duration"],
            "description": params["description"],
            "disable": False,
            "permissions": [p.to_api() for p in want],
        }
        if (
            grants(robot.permissions) != grants(want)
            or robot.duration != params["duration"]
            or robot.description != params["description"]
            or robot.disable
        ):
            self.actions.append("updated")
            if not self.module.check_mode:
                harbor.update_robot(robot, params["description"], params["duration"], want)
        refresh = params["refresh_secret"] or (
            self.secret_file is not None and not _has_secret_file(self.secret_file)
        )
        if refresh:
            self.actions.append("refreshed secret")
            self.obtain_secret(lambda: harbor.refresh_robot_secret(robot.robot_id))
        if not self.actions:
            self.warn_if_expired(robot)
            return self.finish(robot, wanted)
        if self.module.check_mode:
            return self.finish(robot, wanted)
        return self.finish(robot, self._read_back(robot.robot_id, want))

    def _create(self, want: list[Permission]) -> dict[str, Any]:
        params = self.module.params
        self.actions.append("created")
        if self.module.check_mode:
            planned = {
                "id": None,
                "name": self.full_name,
                "level": "system",
                "duration": params["duration"],
                "expires_at": None,
                "disable": False,
                "description": params["description"],
                "permissions": [p.to_api() for p in want],
            }
            if self.secret_file:
                self.actions.append("wrote secret_file")
            return self.finish(None, planned)
        created = self.harbor.create_robot(
            params["name"], params["description"], params["duration"], want
        )
        self.deliver(created.secret)
        if created.name != self.full_name:
            raise HarborError(
                f"Harbor created the robot as {created.name}, not {self.full_name}: set "
                "name_prefix to Harbor's robot_name_prefix (the secret was kept as usual)"
            )
        return self.finish(None, self._read_back(created.robot_id, want))

    def _read_back(self, robot_id: int, want: list[Permission]) -> dict[str, Any]:
        """The robot as Harbor now reports it; HarborError if it did not take the change."""
        params = self.module.params
        robot = self.harbor.get_robot(robot_id)
        if grants(robot.permissions) != grants(want) or robot.duration != params["duration"]:
            raise HarborError(
                f"Harbor accepted robot {self.full_name} but reports permissions "
                f"{sorted(grants(robot.permissions))} and duration {robot.duration}"
            )
        self.warn_if_expired(robot)
        return robot.to_result()

    def warn_if_expired(self, robot: Robot) -> None:
        if robot.expired():
            self.module.warn(
                f"robot {self.full_name} expired at {robot.expires_at} (Unix time): nodes "
                "cannot pull with it; its duration counts from its creation, so raise "
                "duration or set -1"
            )

    # -- absent -------------------------------------------------------------------------
    def absent(self) -> dict[str, Any]:
        robot = self.harbor.find_robot(self.full_name)
        if robot is not None:
            self.actions.append("deleted")
            if not self.module.check_mode:
                self.harbor.delete_robot(robot.robot_id)
        if self.secret_file and os.path.exists(self.secret_file):
            self.actions.append("removed secret_file")
            if not self.module.check_mode:
                os.unlink(self.secret_file)
        return self.finish(robot, None)


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    problem = _validate(params)
    if problem:
        module.fail_json(msg=f"harbor_robot: {problem}")
    run: RobotRun | None = None
    try:
        harbor = connect(params)
        harbor.require_admin()
        run = RobotRun(module, harbor)
        return run.absent() if params["state"] == "absent" else run.present()
    except HarborError as exc:
        done = run.actions if run else []
        module.fail_json(
            msg=f"harbor_robot {params['name']}: {exc}"
            + (f" (done before the failure: {', '.join(done)})" if done else ""),
            actions=done,
        )
    raise AssertionError("unreachable")  # fail_json exits


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
