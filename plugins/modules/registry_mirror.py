#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: keep the bundle's image archives in a registry under their upstream names."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command
from ansible_collections.airlock.cluster.plugins.module_utils.containerd import (
    ArchiveError,
    read_archive,
)
from ansible_collections.airlock.cluster.plugins.module_utils.mirror import (
    MANIFEST_TYPES,
    MirrorError,
    MirrorPath,
    manifest_url,
    mirror_path,
)

DOCUMENTATION = r"""
---
module: registry_mirror
short_description: Keep OCI image archives in a registry under their upstream names
version_added: "0.2.0"
description:
  - Reads each archive's C(index.json) (image reference and manifest digest, as
    M(airlock.cluster.containerd_image) does) and asks O(registry) for the manifest the
    mirror keeps it under (C(registry.k8s.io/pause:3.10.2) is repository
    C(registry.k8s.io/pause), tag C(3.10.2)). The request is anonymous, over HTTPS verified
    with O(ca_path); an image is present when the registry answers its tag with the
    archive's digest.
  - With O(push), each missing image is copied with C(skopeo copy --preserve-digests) from
    the archive to O(push_registry) (TLS verified with O(ca_path), the credentials in a 0600
    auth file that is removed afterwards, never on a command line), then looked up again on
    O(registry); a push the serving registry does not show fails the module. Without
    O(push) the module only reports.
  - The registry role runs it against its read-only, anonymous mirror (O(registry)) and a
    loader instance on the same storage that accepts pushes with the admin's password
    (O(push_registry)), started only while something is missing.
  - An image from a registry outside O(upstreams), or a reference without a tag, fails the
    module before anything is pushed; nodes are told to use the mirror for O(upstreams)
    only.
  - Exercised on Debian's docker-registry 2.8 and skopeo 1.9 (tests/integration/registry,
    the lab's e2e); the archives are the ones airlock's bundle builds (one image each).
options:
  archives:
    description: OCI image archives on the managed host (the host's artifact map's images).
    type: list
    elements: path
    required: true
  registry:
    description: C(https://HOST:PORT) of the registry that serves the images (read anonymously).
    type: str
    required: true
  ca_path:
    description: The CA that verifies both registries' certificates.
    type: path
    required: true
  upstreams:
    description: Registries whose images may be mirrored (C(registry_mirror_upstreams)).
    type: list
    elements: str
    required: true
  push:
    description: Push the missing images (else report them only).
    type: bool
    default: false
  push_registry:
    description: C(HOST:PORT) to push to; default the host and port of O(registry).
    type: str
    default: ""
  username:
    description: User for O(push_registry).
    type: str
    default: ""
  password:
    description: Password for O(push_registry).
    type: str
    default: ""
  skopeo:
    description: The C(skopeo) program; a bare name is looked up on E(PATH).
    type: path
    default: skopeo
  timeout:
    description: Seconds for each HTTPS request.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Reads the archives and asks the registry; reports what would be pushed.
  diff_mode:
    support: none
requirements:
  - skopeo on the managed host (only to push)
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Which of the bundle's images the mirror lacks
  airlock.cluster.registry_mirror:
    archives: "{{ ansible_facts['airlock_images'] | dict2items | map(attribute='value') | sort }}"
    registry: "https://{{ ip }}:5001"
    ca_path: /etc/docker/registry/tls/ca.crt
    upstreams: [registry.k8s.io, docker.io, ghcr.io, quay.io]
  register: _mirror
"""

RETURN = r"""
images:
  description: Every image of the archives, with the mirror's repository and whether it was there.
  returned: always
  type: list
  elements: dict
  sample:
    - ref: registry.k8s.io/pause:3.10.2
      digest: sha256:2e1306a71f8905b5d600d02c46f7e368b0052819391d8d71050d9c159cb603b6
      repository: registry.k8s.io/pause
      tag: 3.10.2
      archive: /opt/airlock/artifacts/images/amd64/pause_3.10.2.oci.tar
      present: false
missing:
  description: References the registry did not serve with the archive's digest (before any push).
  returned: always
  type: list
  elements: str
pushed:
  description: References pushed by this run (that would be, in check mode).
  returned: always
  type: list
  elements: str
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "archives": {"type": "list", "elements": "path", "required": True},
        "registry": {"type": "str", "required": True},
        "ca_path": {"type": "path", "required": True},
        "upstreams": {"type": "list", "elements": "str", "required": True},
        "push": {"type": "bool", "default": False},
        "push_registry": {"type": "str", "default": ""},
        "username": {"type": "str", "default": ""},
        "password": {"type": "str", "default": "", "no_log": True},
        "skopeo": {"type": "path", "default": "skopeo"},
        "timeout": {"type": "int", "default": 30},
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


def served_digest(module: AnsibleModule, path: MirrorPath) -> str:
    """The digest the registry serves for ``path``'s tag; "" when it has no such tag."""
    params = module.params
    url = manifest_url(params["registry"], path)
    try:
        response = open_url(
            url,
            method="HEAD",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            ca_path=params["ca_path"],
            validate_certs=True,
            timeout=params["timeout"],
        )
    except Exception as exc:  # HTTPError, URLError, ssl and socket errors alike
        code = getattr(exc, "code", None)
        if code == 404:
            return ""
        module.fail_json(
            msg=f"registry_mirror: cannot read {url} ({code or exc}); is the mirror running "
            f"and does {params['ca_path']} verify its certificate?"
        )
    digest = response.headers.get("Docker-Content-Digest", "")
    if not digest:
        module.fail_json(msg=f"registry_mirror: {url} answered without Docker-Content-Digest")
    return str(digest)


def survey(module: AnsibleModule) -> list[dict[str, Any]]:
    """Every image of the archives, where the mirror keeps it and whether it is there."""
    images: list[dict[str, Any]] = []
    for archive_path in module.params["archives"]:
        try:
            archive = read_archive(archive_path)
        except ArchiveError as exc:
            module.fail_json(msg=f"registry_mirror: {exc}")
        for image in archive.images:
            try:
                path = mirror_path(image.ref, module.params["upstreams"])
            except MirrorError as exc:
                module.fail_json(msg=f"registry_mirror: {archive_path}: {exc}")
            images.append(
                {
                    "ref": image.ref,
                    "digest": image.digest,
                    "repository": path.repository,
                    "tag": path.tag,
                    "archive": archive_path,
                    "present": served_digest(module, path) == image.digest,
                    "_path": path,
                }
            )
    return images


def _push_target(params: dict[str, Any]) -> str:
    target = params["push_registry"] or params["registry"]
    return target.removeprefix("https://").rstrip("/")


def push(module: AnsibleModule, images: list[dict[str, Any]]) -> None:
    """skopeo copy of each image to the push registry; TLS verified, digests kept."""
    params = module.params
    skopeo = Command(module, params["skopeo"])
    target = _push_target(params)
    work = tempfile.mkdtemp(prefix="airlock-mirror-")
    try:
        certs = os.path.join(work, "certs")
        os.mkdir(certs, 0o700)
        # A directory with the CA alone: skopeo reads every *.crt there as a CA (and a *.key
        # without its *.cert is an error), so the registry's own TLS directory will not do.
        shutil.copyfile(params["ca_path"], os.path.join(certs, "ca.crt"))
        auth = os.path.join(work, "auth.json")
        token = base64.b64encode(f"{params['username']}:{params['password']}".encode()).decode()
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": {target: {"auth": token}}}, handle)
        for image in images:
            path: MirrorPath = image["_path"]
            skopeo.run(
                [
                    "copy", "--quiet", "--preserve-digests",
                    "--dest-cert-dir", certs, "--authfile", auth,
                    f"oci-archive:{image['archive']}", f"docker://{target}/{path.reference}",
                ],
                what=f"skopeo copy of {image['ref']} to {target}",
                hint="is the loader running and does it accept the admin's password?",
            )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    if params["push"] and not (params["username"] and params["password"]):
        module.fail_json(msg="registry_mirror: push needs username and password")
    images = survey(module)
    missing = [i for i in images if not i["present"]]
    pushed: list[str] = []
    if params["push"] and missing:
        if not module.check_mode:
            push(module, missing)
            absent = [i["ref"] for i in missing if served_digest(module, i["_path"]) != i["digest"]]
            if absent:
                module.fail_json(
                    msg=f"registry_mirror: pushed to {_push_target(params)}, but "
                    f"{params['registry']} does not serve {', '.join(absent)} with the archive's "
                    "digest; do both use the same storage directory?"
                )
        pushed = [i["ref"] for i in missing]
    return {
        "changed": bool(pushed),
        "images": [{k: v for k, v in i.items() if not k.startswith("_")} for i in images],
        "missing": [i["ref"] for i in missing],
        "pushed": pushed,
    }


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
