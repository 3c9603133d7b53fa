#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: save an etcd snapshot with an integrity check, or restore one."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.etcd import (
    sha256_file,
)
from ansible_collections.airlock.cluster.plugins.module_utils.etcd_run import (
    CONNECTION_ARGUMENT_SPEC,
    Etcdctl,
    EtcdctlError,
    fail_etcdctl,
)

DOCUMENTATION = r"""
---
module: etcd_snapshot
short_description: Save an etcd snapshot (verified) or restore one into a fresh data directory
version_added: "0.1.0"
description:
  - V(saved) streams a snapshot from one endpoint into a temporary file next to O(path),
    checks it with C(snapshot status) (which opens the database and hashes it),
    computes its SHA-256, and only then moves it atomically to O(path).
    A new snapshot is a new point in time, so saving always reports a change.
  - V(restored) checks the snapshot (and O(checksum) if given), restores it with
    C(snapshot restore) into a temporary directory next to O(data_dir) and
    renames that to O(data_dir). O(data_dir) must not exist or be empty; the module
    never overwrites a member's data. The etcd service must be stopped by the caller.
  - Runs C(etcdctl) (found on E(PATH)) with C(ETCDCTL_API=3) and C(LC_ALL=C), never
    through a shell, and parses the JSON output of C(snapshot status -w json), the
    stable machine-readable form of the revision, key count and hash.
  - C(snapshot status) and C(snapshot restore) run with C(etcdutl) when it is on E(PATH)
    (etcd 3.5+), else with C(etcdctl); etcdctl 3.6 no longer has them, so with etcd 3.6
    and no C(etcdutl) both states fail before changing anything and say so.
options:
  state:
    description: V(saved) takes a snapshot; V(restored) restores one.
    type: str
    choices: [saved, restored]
    default: saved
  path:
    description: Snapshot file to write (V(saved)) or read (V(restored)).
    type: path
    required: true
  checksum:
    description: Expected SHA-256 of the snapshot file, checked before restoring.
    type: str
  data_dir:
    description: Member data directory to create. Required for V(restored).
    type: path
  name:
    description: Member name (C(--name)) of the restored member. Required for V(restored).
    type: str
  initial_cluster:
    description: C(--initial-cluster) of the restored cluster. Required for V(restored).
    type: str
  initial_cluster_token:
    description: C(--initial-cluster-token) of the restored cluster.
    type: str
    default: etcd-cluster
  initial_advertise_peer_urls:
    description: This member's peer URLs. Required for V(restored).
    type: list
    elements: str
    default: []
  skip_hash_check:
    description: Restore a database file copied from a data directory (no appended hash).
    type: bool
    default: false
  owner:
    description: User that will own the restored data directory.
    type: str
  group:
    description: Group that will own the restored data directory.
    type: str
  endpoints:
    description: Client URL to stream the snapshot from (the first one is used).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - airlock.cluster.etcd
attributes:
  check_mode:
    support: full
    details: Checks inputs and reports the change without saving or restoring.
  diff_mode:
    support: none
requirements:
  - etcdctl 3.4, or etcdctl and etcdutl 3.5/3.6
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Save a snapshot from the local member
  airlock.cluster.etcd_snapshot:
    path: /var/backups/airlock-etcd/etcd-20260101T000000Z.db
    endpoints: ["https://10.0.0.11:2379"]
    ca_cert: /etc/airlock/etcd/pki/ca.crt
    client_cert: /etc/airlock/etcd/pki/healthcheck-client.crt
    client_key: /etc/airlock/etcd/pki/healthcheck-client.key
  register: _snapshot

- name: Restore it as member m1 of a new three-member cluster
  airlock.cluster.etcd_snapshot:
    state: restored
    path: /var/backups/airlock-etcd/etcd-20260101T000000Z.db
    checksum: "{{ _snapshot.sha256 }}"
    data_dir: /var/lib/airlock-etcd
    name: m1
    initial_cluster: m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380,m3=https://10.0.0.13:2380
    initial_cluster_token: prod-etcd
    initial_advertise_peer_urls: ["https://10.0.0.11:2380"]
    owner: etcd
    group: etcd
"""

RETURN = r"""
path:
  description: The snapshot file.
  returned: always
  type: str
sha256:
  description: SHA-256 of the snapshot file (not computed for a V(saved) check-mode run).
  returned: always
  type: str
revision:
  description: Store revision in the snapshot.
  returned: when the snapshot was read
  type: int
total_keys:
  description: Number of keys in the snapshot database.
  returned: when the snapshot was read
  type: int
total_size:
  description: Size of the snapshot database in bytes.
  returned: when the snapshot was read
  type: int
hash:
  description: etcd's hash of the snapshot database.
  returned: when the snapshot was read
  type: int
data_dir:
  description: The restored data directory.
  returned: when state is restored
  type: str
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "state": {"type": "str", "choices": ["saved", "restored"], "default": "saved"},
        "path": {"type": "path", "required": True},
        "checksum": {"type": "str"},
        "data_dir": {"type": "path"},
        "name": {"type": "str"},
        "initial_cluster": {"type": "str"},
        "initial_cluster_token": {"type": "str", "default": "etcd-cluster", "no_log": False},
        "initial_advertise_peer_urls": {"type": "list", "elements": "str", "default": []},
        "skip_hash_check": {"type": "bool", "default": False},
        "owner": {"type": "str"},
        "group": {"type": "str"},
        **CONNECTION_ARGUMENT_SPEC,
    }
    return AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        required_if=[
            (
                "state",
                "restored",
                ("data_dir", "name", "initial_cluster", "initial_advertise_peer_urls"),
            ),
        ],
    )


def verify(module: AnsibleModule, ctl: Etcdctl, path: str) -> dict[str, Any]:
    """Open and hash the snapshot database; fail with a clear message if it is damaged."""
    try:
        return ctl.snapshot_status(path)
    except EtcdctlError as exc:
        fail_etcdctl(module, f"integrity check of snapshot {path}", exc)
    return {}


def save(module: AnsibleModule, ctl: Etcdctl) -> dict[str, Any]:
    path = module.params["path"]
    if not ctl.endpoints:
        module.fail_json(msg="state=saved needs endpoints (the member to stream from)")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"directory {directory} for the snapshot does not exist")
    try:
        ctl.offline_tool("status")  # before streaming: fail early if nothing can check it
    except EtcdctlError as exc:
        fail_etcdctl(module, f"integrity check of a snapshot from {ctl.endpoints[0]}", exc)
    if module.check_mode:
        return {"changed": True, "path": path, "sha256": None}
    partial = f"{path}.airlock-partial"
    for leftover in (partial, f"{partial}.part"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    try:
        ctl.snapshot_save(ctl.endpoints[0], partial)
    except EtcdctlError as exc:
        fail_etcdctl(module, f"saving a snapshot from {ctl.endpoints[0]}", exc)
    os.chmod(partial, 0o600)
    status = verify(module, ctl, partial)
    digest = sha256_file(partial)
    module.atomic_move(partial, path)
    os.chmod(path, 0o600)  # a snapshot holds every secret of the cluster
    return {"changed": True, "path": path, "sha256": digest, **status}


def check_target(module: AnsibleModule, data_dir: str) -> None:
    if os.path.exists(data_dir) and (not os.path.isdir(data_dir) or os.listdir(data_dir)):
        module.fail_json(
            msg=(
                f"data_dir {data_dir} exists and is not empty; restore only writes a fresh "
                "data directory: stop etcd and move the old one aside first"
            )
        )


def chown_tree(module: AnsibleModule, top: str, owner: str | None, group: str | None) -> None:
    if not owner and not group:
        return
    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError as exc:
        module.fail_json(msg=f"unknown owner/group for {top}: {exc}")
    for root, dirs, files in os.walk(top):
        os.chown(root, uid, gid)
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), uid, gid)


def restore(module: AnsibleModule, ctl: Etcdctl) -> dict[str, Any]:
    params = module.params
    path, data_dir = params["path"], params["data_dir"].rstrip("/")
    if not os.path.isfile(path):
        module.fail_json(msg=f"snapshot {path} does not exist on this host")
    digest = sha256_file(path)
    if params["checksum"] and params["checksum"].lower() != digest:
        module.fail_json(
            msg=f"snapshot {path} has SHA-256 {digest}, expected {params['checksum']}: "
            "the copy is damaged or is a different snapshot",
            sha256=digest,
        )
    check_target(module, data_dir)
    status = verify(module, ctl, path)
    result = {"changed": True, "path": path, "sha256": digest, "data_dir": data_dir, **status}
    if module.check_mode:
        return result
    scratch = f"{data_dir}.airlock-restore"
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    try:
        ctl.snapshot_restore(
            path,
            scratch,
            params["name"],
            params["initial_cluster"],
            params["initial_cluster_token"],
            params["initial_advertise_peer_urls"],
            params["skip_hash_check"],
        )
    except EtcdctlError as exc:
        fail_etcdctl(module, f"restoring {path}", exc)
    os.chmod(scratch, 0o700)
    chown_tree(module, scratch, params["owner"], params["group"])
    if os.path.isdir(data_dir):
        os.rmdir(data_dir)
    os.rename(scratch, data_dir)
    return result


def run_module(module: AnsibleModule) -> dict[str, Any]:
    ctl = Etcdctl(module)
    if module.params["state"] == "restored":
        return restore(module, ctl)
    return save(module, ctl)


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
