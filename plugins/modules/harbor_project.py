#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: ensure a Harbor project exists (or not) with its visibility and quota."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.harbor import (
    CONNECTION_ARGUMENT_SPEC,
    NAME_PATTERN,
    Harbor,
    HarborError,
    Project,
    Quota,
    connect,
)

DOCUMENTATION = r"""
---
module: harbor_project
short_description: Ensure a Harbor project exists, private by default, with optional quota
version_added: "0.1.0"
description:
  - Creates, updates or deletes one project through Harbor's v2.0 REST API
    (C(/api/v2.0/projects), C(/api/v2.0/quotas)), over HTTPS verified against O(ca_cert),
    as a Harbor system administrator.
  - Manages the project's visibility (O(public)) and, when O(storage_limit) is given, its
    storage quota. Other project settings (vulnerability policies, CVE allowlist, ...)
    are left as they are.
  - Re-running with the same options changes nothing (C(changed=false)); check mode
    reads Harbor and reports what would change without changing it.
  - B(What was tested, and what was not.) This module was tested only against a stand-in
    for Harbor built from Harbor's published API description (goharbor/harbor
    C(api/v2.0/swagger.yaml) at tag v2.15.2, commit
    080b0220574cc853ae1e2946ce7a5610ba855757), which validates every request and every
    response against that file's schemas, and mimics the behaviour of Harbor's handlers
    that the file does not state (read from Harbor's source at the same commit). It has
    B(never run against a running Harbor). Harbor could not be run where airlock is
    developed.
  - 'On a real Harbor, check after the first run (with the CA file, never C(-k)):
    C(curl --cacert CA -u admin "https://HARBOR/api/v2.0/projects?name=NAME") shows the
    project with C(metadata.public) as wanted, and
    C(curl --cacert CA -u admin "https://HARBOR/api/v2.0/quotas?reference=project&reference_id=ID")
    its C(hard.storage); a second run must report C(changed=false).'
options:
  name:
    description: Project name (lower-case letters, digits, C(.), C(_), C(-); Harbor's rule).
    type: str
    required: true
  state:
    description:
      - V(present) creates the project or updates its settings.
      - V(absent) deletes it. Harbor refuses to delete a project that still holds
        repositories (its message is passed on); delete them first. Harbor also deletes
        the project's project-level robot accounts; system-level robots lose their
        permissions for it.
    type: str
    choices: [present, absent]
    default: present
  public:
    description:
      - Whether anyone, without credentials, may pull from the project. Private (the
        default) means nodes pull with a robot account (M(airlock.cluster.harbor_robot)).
    type: bool
    default: false
  storage_limit:
    description:
      - Storage quota in bytes, V(-1) for unlimited. Omitted, a new project gets Harbor's
        default quota and an existing one keeps its quota.
      - Fails when Harbor keeps no quota for the project (quota per project disabled in
        Harbor's configuration).
    type: int
extends_documentation_fragment:
  - airlock.cluster.harbor
attributes:
  check_mode:
    support: full
    details: Reads the project and its quota; creates, changes and deletes nothing.
  diff_mode:
    support: full
    details: The project's name, visibility and storage quota before and after.
seealso:
  - module: airlock.cluster.harbor_robot
requirements:
  - Harbor 2.x with the v2.0 API; described from v2.15.2 and tested only against a stand-in of it
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: A private project for the cluster's images, 200 GiB at most
  airlock.cluster.harbor_project:
    name: airlock
    storage_limit: 214748364800
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true

- name: Remove a project that is no longer used (Harbor refuses while it holds images)
  airlock.cluster.harbor_project:
    name: scratch
    state: absent
    url: https://harbor.example.internal
    ca_cert: "{{ airlock_credentials_dir }}/kubernetes/ca.crt"  # signed Harbor's certificate
    password: "{{ harbor_admin_password }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
project:
  description: The project after the run (as it would be, in check mode); null when absent.
  returned: always
  type: dict
  sample: {"project_id": 3, "name": "airlock", "public": false, "storage_limit": 214748364800}
actions:
  description: What was done (V(created), V(updated visibility), V(updated quota), V(deleted)).
  returned: always
  type: list
  elements: str
"""

_MAX_STORAGE = 1024**5  # Harbor refuses a limit above 1024 TB (lib.ValidateQuotaLimit)


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "public": {"type": "bool", "default": False},
            "storage_limit": {"type": "int"},
            **CONNECTION_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )


def describe(project: dict[str, Any] | None) -> str:
    if project is None:
        return ""
    return "".join(f"{key}: {project[key]}\n" for key in ("name", "public", "storage_limit"))


def summary(project: Project, quota: Quota | None) -> dict[str, Any]:
    return {
        "project_id": project.project_id,
        "name": project.name,
        "public": project.public,
        "storage_limit": quota.storage if quota else None,
    }


def _validate(params: dict[str, Any]) -> str | None:
    if not NAME_PATTERN.match(params["name"]) or len(params["name"]) > 255:
        return (
            f"name {params['name']!r}: Harbor accepts lower-case letters, digits and "
            "single . _ - between them, at most 255 characters"
        )
    limit = params["storage_limit"]
    if limit is not None and not (limit == -1 or 0 < limit <= _MAX_STORAGE):
        return f"storage_limit {limit}: give bytes (at most {_MAX_STORAGE}) or -1 for unlimited"
    return None


def ensure_present(module: AnsibleModule, harbor: Harbor) -> dict[str, Any]:
    params = module.params
    name, public, limit = params["name"], params["public"], params["storage_limit"]
    project = harbor.find_project(name)
    if project is None:
        wanted = {"project_id": None, "name": name, "public": public, "storage_limit": limit}
        if module.check_mode:
            return _result(["created"], None, wanted)
        harbor.create_project(name, public, limit)
        return _result(["created"], None, _read_back(harbor, name, public, limit))
    quota = harbor.project_quota(project.project_id)
    before = summary(project, quota)
    if limit is not None and quota is None:
        module.fail_json(
            msg=(
                f"harbor_project {name}: Harbor keeps no storage quota for the project "
                "(quota per project disabled in its configuration?); omit storage_limit "
                "or enable quotas"
            ),
            project=before,
        )
    actions = []
    if project.public != public:
        actions.append("updated visibility")
    if limit is not None and quota is not None and quota.storage != limit:
        actions.append("updated quota")
    if not actions or module.check_mode:
        after = {**before, "public": public}
        if limit is not None:
            after["storage_limit"] = limit
        return _result(actions, before, after)
    if "updated visibility" in actions:
        harbor.set_project_public(name, public)
    if "updated quota" in actions and quota is not None and limit is not None:
        harbor.set_storage_quota(quota.quota_id, limit)
    return _result(actions, before, _read_back(harbor, name, public, limit))


def _read_back(harbor: Harbor, name: str, public: bool, limit: int | None) -> dict[str, Any]:
    """The project as Harbor now reports it; HarborError if it did not take the settings."""
    project = harbor.find_project(name)
    if project is None:
        raise HarborError(f"Harbor accepted project {name} but does not list it")
    quota = harbor.project_quota(project.project_id)
    after = summary(project, quota)
    if project.public != public or (limit is not None and after["storage_limit"] != limit):
        raise HarborError(
            f"Harbor accepted the settings of project {name} but reports public="
            f"{project.public}, storage_limit={after['storage_limit']} (wanted {public}, "
            f"{limit}); is quota per project disabled in Harbor's configuration?"
        )
    return after


def ensure_absent(module: AnsibleModule, harbor: Harbor) -> dict[str, Any]:
    name = module.params["name"]
    project = harbor.find_project(name)
    if project is None:
        return _result([], None, None)
    before = summary(project, harbor.project_quota(project.project_id))
    if not module.check_mode:
        harbor.delete_project(name)
    return _result(["deleted"], before, None)


def _result(
    actions: list[str], before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "changed": bool(actions),
        "actions": actions,
        "project": after,
        "diff": {"before": describe(before), "after": describe(after)},
    }


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    problem = _validate(params)
    if problem:
        module.fail_json(msg=f"harbor_project: {problem}")
    try:
        harbor = connect(params)
        harbor.require_admin()
        if params["state"] == "absent":
            return ensure_absent(module, harbor)
        return ensure_present(module, harbor)
    except HarborError as exc:
        module.fail_json(msg=f"harbor_project {params['name']}: {exc}")
    raise AssertionError("unreachable")  # fail_json exits


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
