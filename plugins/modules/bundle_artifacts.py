#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: the host's artifact map (artifact name -> verified local path)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.bundle_paths import safe_join

DOCUMENTATION = r"""
---
module: bundle_artifacts
short_description: Publish or look up the artifacts the bundle stage fetched to a host
version_added: "0.1.0"
description:
  - The one place roles learn where the offline bundle's files are on a host. The bundle
    stage (role C(bundle_client)) fetches the artifacts a host needs from C(MANIFEST.json),
    checks each against its sha256, then calls this module with O(artifacts) to write the
    map C(DIR/artifacts.json). Every other role calls it with O(require) to read the map.
  - Either way it sets two facts. C(ansible_facts['airlock_artifacts']) maps each artifact
    name of the manifest (V(kubeadm), V(etcd), V(containerd), V(image-pause), ...) to
    C(path) (absolute, on the host), C(kind), C(version), C(sha256), C(size), C(component)
    and, for images, C(image). C(ansible_facts['airlock_images']) maps each image reference
    (as containerd will list it, e.g. V(registry.k8s.io/pause:3.10.1)) to its archive.
  - With O(require), every named artifact must be in the map and its file present with the
    recorded size; otherwise it fails with one message naming each missing artifact, the
    map and the bundle it came from. Without O(require) and without a map (no bundle stage
    ran, e.g. an install from the distribution) both facts are empty.
  - Roles never search the artifacts directory or build a path inside it; see
    docs/bundle.md, "Artifact map for roles".
options:
  dir:
    description:
      - Directory the bundle stage fetched to (C(airlock_artifacts_dir)).
      - The map is C(DIR/artifacts.json).
    type: path
    required: true
  artifacts:
    description:
      - Write the map from these entries of the bundle's C(MANIFEST.json) (the ones fetched
        to this host), with the keys C(name), C(path), C(kind), C(version), C(sha256),
        C(size), C(component) and C(image); C(path) is relative to the bundle and to O(dir).
      - Omitted, the map is read.
    type: list
    elements: dict
  bundle:
    description:
      - With O(artifacts), where the bundle came from, recorded in the map for messages
        (for example C(url), C(profile), C(kube_version)).
    type: dict
    default: {}
  validate_only:
    description:
      - With O(artifacts), only check that every entry can be mapped (each C(path) stays
        inside O(dir), so neither absolute nor with a C(..) part; see
        C(module_utils/bundle_paths.py)) and write nothing. The bundle stage runs this
        before it creates a directory or fetches a file, so a hostile C(MANIFEST.json)
        cannot make it write outside O(dir).
    type: bool
    default: false
  require:
    description: Artifact names that must be in the map, each file present with its recorded size.
    type: list
    elements: str
    default: []
  caller:
    description: Who asks (a role name); starts every failure message.
    type: str
    default: bundle_artifacts
  hint:
    description: Added to a failure message, e.g. another way to install without the bundle.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: With O(artifacts), reports whether the map would change; sets facts, writes nothing.
  diff_mode:
    support: full
    details: With O(artifacts), the map before and after.
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Publish the map of what was fetched (roles/bundle_client)
  airlock.cluster.bundle_artifacts:
    dir: "{{ airlock_artifacts_dir }}"
    artifacts: "{{ _bundle_client_wanted }}"
    bundle:
      url: "{{ _bundle_client_url }}"
      profile: "{{ _bundle_client_manifest.json.profile | default('') }}"

# Then e.g. src: "{{ ansible_facts['airlock_artifacts']['kubeadm'].path }}".
- name: Look up the Kubernetes programs this host needs
  airlock.cluster.bundle_artifacts:
    dir: "{{ airlock_artifacts_dir }}"
    require: [kubeadm, kubelet, kubectl]
    caller: kubernetes
"""

RETURN = r"""
ansible_facts:
  description: The map, as facts.
  returned: always
  type: dict
  contains:
    airlock_artifacts:
      description: Artifact name -> path, kind, version, sha256, size, component; images also image.
      type: dict
      sample:
        kubeadm:
          path: /opt/airlock/artifacts/bin/amd64/kubeadm
          kind: binary
          version: v1.34.4
          sha256: 0123abcd...
          size: 74240184
          component: kubeadm
    airlock_images:
      description: Image reference -> path of its OCI archive on the host.
      type: dict
      sample:
        registry.k8s.io/pause:3.10.1: /opt/airlock/artifacts/images/amd64/pause_3.10.1.oci.tar
map:
  description: Path of the map file.
  returned: always
  type: str
  sample: /opt/airlock/artifacts/artifacts.json
found:
  description: Whether the map file was there (read mode) or is written (write mode).
  returned: always
  type: bool
"""

MAP_NAME = "artifacts.json"
FIELDS = ("kind", "version", "sha256", "size", "component")
RUN_BUNDLE_STAGE = (
    "run the bundle stage first (airlock deploy -i INVENTORY --stage bundle "
    "-e airlock_bundle=BUNDLE.tar) with a bundle that has them"
)


class MapError(Exception):
    """A problem with the map or its entries; the text is the user's message."""


def build_map(directory: str, entries: list[dict[str, Any]], bundle: dict[str, Any]) -> dict:
    """MANIFEST.json entries -> the map document (paths made absolute under directory)."""
    artifacts: dict[str, dict[str, Any]] = {}
    problems = []
    for entry in entries:
        name, rel = str(entry.get("name") or ""), str(entry.get("path") or "")
        try:
            local = safe_join(directory, rel)
        except ValueError as exc:
            problems.append(f"entry {name or '(no name)'}: {exc}")
            continue
        if not name:
            problems.append(f"entry with path {rel!r} has no name")
            continue
        if name in artifacts:
            problems.append(f"artifact {name} is listed twice")
            continue
        item = {"path": local}
        item.update({k: entry[k] for k in FIELDS if entry.get(k) not in (None, "")})
        if entry.get("kind") == "image":
            item["image"] = str(entry.get("image") or name)
        artifacts[name] = item
    if problems:
        raise MapError("the bundle's manifest cannot be mapped: " + "; ".join(problems))
    return {"bundle": dict(bundle), "artifacts": artifacts}


def facts(doc: dict[str, Any]) -> dict[str, Any]:
    artifacts = doc.get("artifacts") or {}
    images = {a["image"]: a["path"] for a in artifacts.values() if a.get("kind") == "image"}
    return {"airlock_artifacts": artifacts, "airlock_images": images}


def describe_bundle(doc: dict[str, Any]) -> str:
    bundle = doc.get("bundle") or {}
    said = [
        f"{label} {bundle[key]}"
        for key, label in (("profile", "profile"), ("kube_version", "Kubernetes"))
        if bundle.get(key)
    ]
    where = f"the bundle from {bundle['url']}" if bundle.get("url") else "the bundle"
    return where + (f" ({', '.join(said)})" if said else "")


def missing(doc: dict[str, Any], names: list[str]) -> list[str]:
    """Each required artifact that is not in the map or whose file is absent or cut short."""
    artifacts = doc.get("artifacts") or {}
    out = []
    for name in names:
        item = artifacts.get(name)
        if item is None:
            out.append(f"{name} (not in {describe_bundle(doc)})")
            continue
        path, size = item["path"], item.get("size", -1)
        if not os.path.isfile(path):
            out.append(f"{name} ({path} is gone)")
        elif isinstance(size, int) and size >= 0 and os.path.getsize(path) != size:
            out.append(f"{name} ({path} has {os.path.getsize(path)} bytes, not {size})")
    return out


def read_map(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MapError(f"cannot read the artifact map {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("artifacts"), dict):
        raise MapError(f"{path} is not an artifact map (no `artifacts` object)")
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "dir": {"type": "path", "required": True},
        "artifacts": {"type": "list", "elements": "dict"},
        "bundle": {"type": "dict", "default": {}},
        "validate_only": {"type": "bool", "default": False},
        "require": {"type": "list", "elements": "str", "default": []},
        "caller": {"type": "str", "default": "bundle_artifacts"},
        "hint": {"type": "str", "default": ""},
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def write(module: AnsibleModule, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            before = handle.read()
    except FileNotFoundError:
        before = ""
    after = render(doc)
    changed = before != after
    if changed and not module.check_mode:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".artifacts-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(after)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    return {"changed": changed, "diff": {"before": before, "after": after}}


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    directory = params["dir"].rstrip("/") or "/"
    path = os.path.join(directory, MAP_NAME)
    prefix = f"{params['caller']}: "
    hint = f"; {params['hint']}" if params["hint"] else ""
    result: dict[str, Any] = {"changed": False, "map": path}
    try:
        if params["artifacts"] is not None and params["validate_only"]:
            build_map(directory, params["artifacts"], params["bundle"])
            return result
        if params["artifacts"] is not None:
            doc = build_map(directory, params["artifacts"], params["bundle"])
            result.update(write(module, path, doc))
            found = True
        else:
            loaded = read_map(path)
            found = loaded is not None
            doc = loaded or {"artifacts": {}}
    except MapError as exc:
        module.fail_json(msg=prefix + str(exc), map=path)
    if not found and params["require"]:
        module.fail_json(
            msg=f"{prefix}no artifact map {path} on this host, so none of "
            f"{', '.join(params['require'])}: {RUN_BUNDLE_STAGE}{hint}.",
            map=path,
        )
    absent = missing(doc, params["require"])
    if absent:
        module.fail_json(
            msg=f"{prefix}the bundle's artifacts on this host lack {'; '.join(absent)} "
            f"(map {path}): {RUN_BUNDLE_STAGE}{hint}.",
            map=path,
            missing=absent,
        )
    result.update(found=found, ansible_facts=facts(doc))
    return result


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
