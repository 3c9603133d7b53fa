#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: list the certificates on a host with their expiry (read-only)."""

from __future__ import annotations

import glob
import os
from datetime import datetime, timezone
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.certs import (
    CertParseError,
    kubeconfig_records,
    read_certificate,
)
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command

DOCUMENTATION = r"""
---
module: cert_inventory
short_description: List a host's certificates with subject, issuer, validity and days left
version_added: "0.2.0"
description:
  - Reads every certificate file matching O(paths) (glob patterns; a pattern that matches
    nothing is skipped and listed in RV(absent)) and the client certificate of every
    kubeconfig in O(kubeconfigs) (C(client-certificate-data), or the file a
    C(client-certificate) names), and returns one record per certificate.
  - Only the first certificate of a file is read (a chain's leaf; kubelet's
    C(kubelet-client-current.pem) holds the certificate and its key, and the key is never
    read into the result). No certificate or key material is returned, only metadata.
  - The parsing is done by the host's C(openssl x509) (run with C(LC_ALL=C), never
    through a shell), so the host needs no Python crypto library.
  - Read-only; never reports a change.
options:
  paths:
    description: Certificate files or glob patterns (C(/etc/kubernetes/pki/*.crt)).
    type: list
    elements: str
    default: []
  kubeconfigs:
    description: Kubeconfig files whose client certificates are read (missing ones skipped).
    type: list
    elements: str
    default: []
  warn_days:
    description: A certificate with fewer days left than this has RV(certificates[].expiring).
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Reads only; the same result in check mode.
  diff_mode:
    support: none
requirements:
  - openssl (the command) on the host
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: List the control plane's certificates
  airlock.cluster.cert_inventory:
    paths:
      - /etc/kubernetes/pki/*.crt
      - /var/lib/kubelet/pki/kubelet-client-current.pem
    kubeconfigs:
      - /etc/kubernetes/admin.conf
      - /etc/kubernetes/controller-manager.conf
    warn_days: 30
  register: _certs
"""

RETURN = r"""
certificates:
  description: One record per certificate, sorted by RV(certificates[].not_after).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, or C(KUBECONFIG#user) for an embedded certificate.
      type: str
    subject:
      description: Subject (RFC 2253).
      type: str
    issuer:
      description: Issuer (RFC 2253).
      type: str
    not_before:
      description: Start of validity, UTC, C(YYYY-MM-DDTHH:MM:SSZ).
      type: str
    not_after:
      description: End of validity, UTC, C(YYYY-MM-DDTHH:MM:SSZ).
      type: str
    days_left:
      description: Whole days until RV(certificates[].not_after) (negative once expired).
      type: int
    expired:
      description: Whether the certificate has expired.
      type: bool
    expiring:
      description: Whether fewer than O(warn_days) days are left.
      type: bool
    ca:
      description: Whether it is a CA certificate (basicConstraints CA:TRUE).
      type: bool
    serial:
      description: Serial number, upper-case hex.
      type: str
absent:
  description: Patterns and kubeconfigs that matched no file.
  returned: always
  type: list
  elements: str
"""


def _files(patterns: list[str], absent: list[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
        if not matches:
            absent.append(pattern)
        found += [m for m in matches if m not in found]
    return found


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "str", "default": []},
            "kubeconfigs": {"type": "list", "elements": "str", "default": []},
            "warn_days": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )


def run_module(module: AnsibleModule) -> dict[str, Any]:
    openssl = Command(module, "openssl")
    now = datetime.now(timezone.utc)  # noqa: UP017 - hosts may run Python 3.10
    absent: list[str] = []
    try:
        records = [
            read_certificate(openssl, now, p) for p in _files(module.params["paths"], absent)
        ]
        for kubeconfig in module.params["kubeconfigs"]:
            if not os.path.isfile(kubeconfig):
                absent.append(kubeconfig)
                continue
            seen = {r["path"] for r in records}
            records += [
                r for r in kubeconfig_records(openssl, now, kubeconfig) if r["path"] not in seen
            ]
    except CertParseError as exc:
        module.fail_json(msg=str(exc))
    for record in records:
        record["expiring"] = record["days_left"] < module.params["warn_days"]
    records.sort(key=lambda r: (r["not_after"], r["path"]))
    return {"changed": False, "certificates": records, "absent": absent}


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
