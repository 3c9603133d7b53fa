#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: import OCI image archives into containerd unless already present."""

from __future__ import annotations

import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command
from ansible_collections.airlock.cluster.plugins.module_utils.containerd import (
    PINNED_LABEL,
    PINNED_VALUE,
    Archive,
    ArchiveError,
    parse_image_list,
    parse_pinned,
    plan,
    read_archive,
)

DOCUMENTATION = r"""
---
module: containerd_image
short_description: Import OCI image archives into containerd
version_added: "0.1.0"
description:
  - Imports OCI image archives (a tar of an OCI image layout, as in the offline bundle's
    C(images/ARCH/*.oci.tar)) into containerd with C(ctr images import).
  - Reads each archive's C(index.json) first. The image reference comes from the
    C(io.containerd.image.name) annotation (or a full reference in
    C(org.opencontainers.image.ref.name)), the digest from the descriptor. An archive is
    imported only when one of its references is missing from containerd, or present
    with another digest; otherwise nothing is run. So a re-run changes nothing, and a
    newer archive under the same tag replaces the old image.
  - Runs C(ctr) with C(LC_ALL=C), never through a shell. ctr 1.6 has no JSON output for
    the image list; the first three columns of its table (reference, type, digest) are
    the ones read, and none of them can contain a space.
  - Images that Kubernetes should see must go to the namespace V(k8s.io) (the default),
    the one containerd's CRI plugin uses.
  - With O(pin) (the default), every image of the archives carries the label
    C(io.cri-containerd.pinned=pinned), added with C(ctr images label) where it is missing.
    containerd's CRI plugin (1.7 and later) reports such an image as pinned, and the
    kubelet's image garbage collection never removes a pinned image. In an air-gapped
    cluster an image the kubelet removed cannot be pulled again. A node whose disk passed
    the kubelet's C(imageGCHighThresholdPercent) would lose the bundle's images, and the
    next kubeadm step or pod start on it would fail asking an unreachable registry.
options:
  path:
    description:
      - One archive or a list of archives on the managed host.
      - Plain or compressed tar files holding C(oci-layout) and C(index.json).
    type: list
    elements: path
    required: true
  namespace:
    description: containerd namespace to import into.
    type: str
    default: k8s.io
  ctr:
    description: The C(ctr) program; a bare name is looked up on E(PATH).
    type: path
    default: ctr
  address:
    description: containerd's GRPC socket.
    type: path
    default: /run/containerd/containerd.sock
  platform:
    description:
      - Import content for this platform only (C(ctr images import --platform)), for
        example V(linux/amd64). Empty imports the host's platform (ctr's default).
    type: str
    default: ""
  snapshotter:
    description:
      - Snapshotter to unpack into; must be the one containerd's CRI plugin uses
        (C(snapshotter) in its config), or the kubelet unpacks every image again.
        Empty uses ctr's default (V(overlayfs)).
    type: str
    default: ""
  pin:
    description:
      - Label the archives' images C(io.cri-containerd.pinned=pinned) so that the
        kubelet's image garbage collection keeps them.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for containerd to answer before giving up (it may just have been
        restarted by a handler). V(0) tries once.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Reads the archives and containerd's image list; reports what would be imported.
  diff_mode:
    support: full
    details: Shows the archive references and digests in containerd before and after.
requirements:
  - containerd and its C(ctr) on the managed host
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Import the pause image
  airlock.cluster.containerd_image:
    path: /opt/airlock/artifacts/images/amd64/pause_3.10.1.oci.tar

- name: Import every image of the host's artifact map (airlock.cluster.bundle_artifacts)
  airlock.cluster.containerd_image:
    path: "{{ ansible_facts['airlock_images'] | dict2items | map(attribute='value') | sort }}"
    namespace: k8s.io
    platform: linux/amd64
    snapshotter: overlayfs
  register: _imported
"""

RETURN = r"""
imported:
  description: References imported by this run (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["registry.k8s.io/pause:3.10.1"]
pinned:
  description: References labelled pinned by this run (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["registry.k8s.io/pause:3.10.1"]
present:
  description: References that were already present with the archive's digest.
  returned: always
  type: list
  elements: str
  sample: ["registry.k8s.io/kube-proxy:v1.34.4"]
archives:
  description: Per archive, its images (reference, digest) and the action (V(import) or V(none)).
  returned: always
  type: list
  elements: dict
  sample:
    - path: /opt/airlock/artifacts/images/amd64/pause_3.10.1.oci.tar
      images: [{"ref": "registry.k8s.io/pause:3.10.1", "digest": "sha256:0123..."}]
      action: import
      missing: ["registry.k8s.io/pause:3.10.1"]
      present: []
"""


def build_module() -> AnsibleModule:
    spec: dict[str, dict[str, Any]] = {
        "path": {"type": "list", "elements": "path", "required": True},
        "namespace": {"type": "str", "default": "k8s.io"},
        "ctr": {"type": "path", "default": "ctr"},
        "address": {"type": "path", "default": "/run/containerd/containerd.sock"},
        "platform": {"type": "str", "default": ""},
        "snapshotter": {"type": "str", "default": ""},
        "pin": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 30},
    }
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


class Ctr:
    """ctr with the module's address and namespace, run through the shared Command."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        params = module.params
        self.command = Command(
            module,
            params["ctr"],
            base_args=["--address", params["address"], "--namespace", params["namespace"]],
        )

    def run(self, *args: str) -> tuple[int, str, str]:
        # ctr's global options (--connect-timeout) come first in args, before the command.
        return self.command.run(args)

    def images(self) -> str:
        """`ctr images list` of the namespace; fails the module if containerd is down."""
        address = self.module.params["address"]
        deadline = time.monotonic() + max(self.module.params["wait_timeout"], 0)
        while True:
            if address.startswith("/") and not os.path.exists(address):
                rc, reason = 1, f"socket {address} does not exist"
            else:
                # Without a connect timeout ctr waits 10 s per try on a dead socket.
                rc, out, err = self.run("--connect-timeout", "2s", "images", "list")
                if rc == 0:
                    return out
                reason = (err or out).strip()
            if time.monotonic() >= deadline:
                break
            time.sleep(1.0)
        self.module.fail_json(
            msg=(
                f"containerd does not answer on {address}: {reason}; is it running? "
                "(systemctl status containerd; journalctl -u containerd)"
            ),
            rc=rc,
        )
        raise AssertionError("unreachable")  # fail_json exits

    def import_archive(self, path: str) -> None:
        params = self.module.params
        args = ["images", "import"]
        if params["platform"]:
            args += ["--platform", params["platform"]]
        if params["snapshotter"]:
            args += ["--snapshotter", params["snapshotter"]]
        rc, out, err = self.run(*args, path)
        if rc != 0:
            self.module.fail_json(
                msg=f"ctr images import {path} failed: {(err or out).strip()}",
                rc=rc,
                stdout=out,
                stderr=err,
            )

    def pin(self, ref: str) -> None:
        rc, out, err = self.run("images", "label", ref, f"{PINNED_LABEL}={PINNED_VALUE}")
        if rc != 0:
            self.module.fail_json(
                msg=f"ctr images label {ref} {PINNED_LABEL}={PINNED_VALUE} failed: "
                f"{(err or out).strip()}",
                rc=rc,
            )


def describe(archives: list[Archive], images: dict[str, str], pinned: set[str]) -> str:
    refs = sorted({i.ref for a in archives for i in a.images})
    return "".join(
        f"{ref} {images.get(ref, '(absent)')}{' pinned' if ref in pinned else ''}\n" for ref in refs
    )


def archive_refs(archives: list[Archive]) -> list[str]:
    return sorted({i.ref for a in archives for i in a.images})


def run_module(module: AnsibleModule) -> dict[str, Any]:
    paths: list[str] = module.params["path"]
    if not paths:
        module.fail_json(msg="path: give at least one archive")
    try:
        archives = [read_archive(p) for p in paths]
    except ArchiveError as exc:
        module.fail_json(msg=str(exc))
    ctr = Ctr(module)
    listing = ctr.images()
    before, pinned_before = parse_image_list(listing), parse_pinned(listing)
    entries = plan(archives, before)
    imported = [ref for e in entries for ref in e.missing]
    present = [ref for e in entries for ref in e.present]
    after = dict(before)
    for entry in entries:
        if not entry.needs_import:
            continue
        if not module.check_mode:
            ctr.import_archive(entry.archive.path)
        after.update({i.ref: i.digest for i in entry.archive.images})
    pinned_after = set(pinned_before)
    if imported and not module.check_mode:
        listing = ctr.images()
        after, pinned_after = parse_image_list(listing), parse_pinned(listing)
        wrong = [
            f"{i.ref} (has {after.get(i.ref, 'nothing')}, archive {i.digest})"
            for e in entries
            for i in e.archive.images
            if e.needs_import and after.get(i.ref) != i.digest
        ]
        if wrong:
            module.fail_json(
                msg="ctr images import succeeded but containerd does not list "
                f"{', '.join(wrong)}; is platform {module.params['platform'] or '(host)'} "
                "in the archive?",
                imported=imported,
            )
    to_pin = [r for r in archive_refs(archives) if r not in pinned_after]
    if module.params["pin"]:
        for ref in to_pin:
            if not module.check_mode:
                ctr.pin(ref)
            pinned_after.add(ref)
    else:
        to_pin = []
    return {
        "changed": bool(imported or to_pin),
        "imported": imported,
        "pinned": to_pin,
        "present": present,
        "archives": [e.to_dict() for e in entries],
        "diff": {
            "before": describe(archives, before, pinned_before),
            "after": describe(archives, after, pinned_after),
        },
    }


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
