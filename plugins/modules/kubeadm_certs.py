#!/usr/bin/python
# Copyright: airlock developers
# Apache-2.0
"""Ansible module: renew a control plane's kubeadm certificates and restart what reads them."""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.airlock.cluster.plugins.module_utils.certs import (
    KUBEADM_CERTS,
    STATIC_PODS,
    CertParseError,
    due,
    files_read,
    kubeadm_file,
    kubeconfig_records,
    read_certificate,
    stale_pods,
)
from ansible_collections.airlock.cluster.plugins.module_utils.command import Command

DOCUMENTATION = r"""
---
module: kubeadm_certs
short_description: Renew a control plane's kubeadm certificates, restart what reads them
version_added: "0.2.0"
description:
  - Reads the expiry of kubeadm's certificates on the host (the files in O(pki_dir) and
    the client certificates in kubeadm's kubeconfigs, parsed by C(openssl x509)) and runs
    C(kubeadm certs renew NAME) for each one that expires within O(within_days), or for
    every one with O(all) (kubeadm keeps each certificate's subject and SANs and signs it
    with the cluster CA; a CA is never renewed).
  - Then restarts every control-plane static pod (kube-apiserver, kube-controller-manager,
    kube-scheduler) whose running container started before one of the certificate files it
    reads last changed (kubeadm's files, plus O(extra_files) such as the apiserver's etcd
    client certificate), by stopping the container with C(crictl stop); the kubelet starts it
    again with the new files. A pod whose files are older than its container is left alone,
    so a second run changes nothing, and a run cut short after renewing restarts the pods
    when it is repeated.
  - Waits until each restarted pod runs in a new container, and for kube-apiserver until
    O(apiserver_url)C(/readyz) answers 200 over TLS verified with O(ca_cert), up to
    O(timeout) seconds; else fails naming the pod.
  - The caller takes the host out of the load balancers first when RV(restart) names
    kube-apiserver (run the module with C(check_mode) to learn it).
attributes:
  check_mode:
    support: full
    details: Reports the renewals and restarts it would make (RV(restart)) and does neither.
  diff_mode:
    support: none
options:
  within_days:
    description: Renew a certificate with fewer days left than this.
    type: int
    default: 30
  all:
    description: Renew every kubeadm certificate, whatever its expiry.
    type: bool
    default: false
  pki_dir:
    description: kubeadm's certificatesDir.
    type: path
    default: /etc/kubernetes/pki
  extra_files:
    description: Further certificate files a static pod reads, by pod name.
    type: dict
    default: {}
  apiserver_url:
    description: This host's apiserver, e.g. V(https://10.0.0.11:6443).
    type: str
    required: true
  ca_cert:
    description: CA bundle that verifies the apiserver's certificate.
    type: path
    default: /etc/kubernetes/pki/ca.crt
  timeout:
    description: Seconds to wait for each restarted pod.
    type: int
    default: 300
  kubeadm:
    description: The kubeadm program.
    type: str
    default: kubeadm
  crictl:
    description: The crictl program (configured for the node's containerd).
    type: str
    default: crictl
requirements:
  - kubeadm and crictl on the host
author:
  - airlock developers
"""

EXAMPLES = r"""
- name: Renew the certificates that expire within 30 days, restart what reads them
  airlock.cluster.kubeadm_certs:
    within_days: 30
    extra_files:
      kube-apiserver: [/etc/airlock/etcd/apiserver-etcd-client.crt]
    apiserver_url: https://10.0.0.11:6443
"""

RETURN = r"""
renewed:
  description: The kubeadm certificates renewed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
restart:
  description: Static pods restarted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
"""


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec={
            "within_days": {"type": "int", "default": 30},
            "all": {"type": "bool", "default": False},
            "pki_dir": {"type": "path", "default": "/etc/kubernetes/pki"},
            "extra_files": {"type": "dict", "default": {}},
            "apiserver_url": {"type": "str", "required": True},
            "ca_cert": {"type": "path", "default": "/etc/kubernetes/pki/ca.crt"},
            "timeout": {"type": "int", "default": 300},
            "kubeadm": {"type": "str", "default": "kubeadm"},
            "crictl": {"type": "str", "default": "crictl"},
        },
        supports_check_mode=True,
    )


def _running(crictl: Command, pod: str) -> list[dict[str, Any]]:
    _rc, out, _err = crictl.run(
        ["ps", "--name", f"^{pod}$", "--state", "running", "--output", "json"],
        what=f"crictl ps --name {pod}",
    )
    return json.loads(out or "{}").get("containers") or []


def _started(crictl: Command) -> dict[str, float]:
    started = {}
    for pod in STATIC_PODS:
        created = [int(c.get("createdAt") or 0) / 1e9 for c in _running(crictl, pod)]
        if created:
            started[pod] = max(created)
    return started


def _mtimes(reads: dict[str, list[str]]) -> dict[str, float]:
    files = {f for paths in reads.values() for f in paths}
    return {f: os.stat(f).st_mtime for f in files if os.path.exists(f)}


def _records(module: AnsibleModule) -> dict[str, dict[str, Any]]:
    """The record of each kubeadm certificate that exists on the host, by name."""
    openssl = Command(module, "openssl")
    now = datetime.now(timezone.utc)  # noqa: UP017 - hosts may run Python 3.10
    records: dict[str, dict[str, Any]] = {}
    try:
        for name in KUBEADM_CERTS:
            path = kubeadm_file(name, module.params["pki_dir"])
            if not os.path.isfile(path):
                continue
            if name.endswith(".conf"):
                found = [r for r in kubeconfig_records(openssl, now, path) if "#" in r["path"]]
                if found:
                    records[name] = found[0]
            else:
                records[name] = read_certificate(openssl, now, path)
    except CertParseError as exc:
        module.fail_json(msg=str(exc))
    return records


def _apiserver_ready(url: str, ca_cert: str) -> bool:
    context = ssl.create_default_context(cafile=ca_cert)
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=context, timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _restart(module: AnsibleModule, crictl: Command, pod: str) -> None:
    params = module.params
    old = {c["id"] for c in _running(crictl, pod)}
    crictl.run(["stop", *sorted(old)], what=f"crictl stop ({pod})")
    deadline = time.monotonic() + params["timeout"]
    while time.monotonic() < deadline:
        new = [c for c in _running(crictl, pod) if c["id"] not in old]
        if new and (
            pod != "kube-apiserver" or _apiserver_ready(params["apiserver_url"], params["ca_cert"])
        ):
            return
        time.sleep(2)
    module.fail_json(
        msg=f"{pod} did not run again (and, for the apiserver, answer /readyz) within "
        f"{params['timeout']} s of its restart; see `crictl ps -a --name {pod}` and "
        f"`crictl logs` on this host, fix it and run again"
    )


def run_module(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    crictl = Command(module, params["crictl"], opt_dirs=["/usr/local/bin"])
    reads = files_read(params["pki_dir"], params["extra_files"])
    renew = due(_records(module), params["within_days"], params["all"])
    if module.check_mode:
        started = _started(crictl)
        pods = {KUBEADM_CERTS[name][1] for name in renew} & set(started)
        restart = sorted(pods | set(stale_pods(reads, _mtimes(reads), started)))
        return {"changed": bool(renew or restart), "renewed": renew, "restart": restart}
    kubeadm = Command(module, params["kubeadm"], opt_dirs=["/usr/local/bin"])
    for name in renew:
        kubeadm.run(["certs", "renew", name], what=f"kubeadm certs renew {name}")
    restart = stale_pods(reads, _mtimes(reads), _started(crictl))
    for pod in restart:
        _restart(module, crictl, pod)
    return {"changed": bool(renew or restart), "renewed": renew, "restart": restart}


def main() -> None:
    module = build_module()
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
