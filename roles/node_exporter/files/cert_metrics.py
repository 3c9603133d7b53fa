#!/usr/bin/python3
# Copyright: airlock developers
# Apache-2.0
"""airlock-cert-metrics: every certificate airlock or kubeadm made on this host, as metrics.

Run by airlock-cert-metrics.timer (role node_exporter). Reads the JSON configuration named
on the command line ({"paths": [glob...], "kubeconfigs": [...], "output": FILE}), parses
each certificate with the host's openssl through airlock_certs (plugins/module_utils/
certs.py, installed beside this script: the same code as `airlock certs status`) and
writes FILE for node_exporter's textfile collector, atomically:

    airlock_certificate_not_after_seconds{path="...",subject="...",issuer="...",ca="false"}
    airlock_certificate_scan_timestamp_seconds
    airlock_certificate_errors   (files openssl could not read; named on stderr)

Exit 0 even when a file cannot be read (the metric says so); 2 on a bad configuration.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import airlock_certs as certs


class _Openssl:
    """What airlock_certs.read_certificate calls: module.run_command(argv(...), ...)."""

    def __init__(self) -> None:
        self.module = self
        self.env = {"LC_ALL": "C"}

    def argv(self, args: list[str]) -> list[str]:
        return ["openssl", *args]

    def run_command(
        self,
        argv: list[str],
        data: str | None = None,
        environ_update: dict[str, str] | None = None,
        check_rc: bool = False,
    ) -> tuple[int, str, str]:
        proc = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            text=True,
            env={**os.environ, **(environ_update or {})},
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def scan(paths: list[str], kubeconfigs: list[str]) -> tuple[list[dict], list[str]]:
    openssl = _Openssl()
    now = datetime.now(timezone.utc)  # noqa: UP017 - hosts may run Python 3.10
    records: list[dict] = []
    errors: list[str] = []
    files: list[str] = []
    for pattern in paths:
        files += [p for p in sorted(glob.glob(pattern)) if os.path.isfile(p) and p not in files]
    for path in files:
        try:
            records.append(certs.read_certificate(openssl, now, path))
        except certs.CertParseError as exc:
            errors.append(str(exc))
    for kubeconfig in kubeconfigs:
        if not os.path.isfile(kubeconfig):
            continue
        try:
            records += certs.kubeconfig_records(openssl, now, kubeconfig)
        except certs.CertParseError as exc:
            errors.append(str(exc))
    return records, errors


def render(records: list[dict], errors: list[str], now: float) -> str:
    lines = [
        "# HELP airlock_certificate_not_after_seconds When the certificate expires (Unix time).",
        "# TYPE airlock_certificate_not_after_seconds gauge",
    ]
    seen = set()
    for r in records:
        if r["path"] in seen:
            continue
        seen.add(r["path"])
        expiry = datetime.strptime(r["not_after"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc  # noqa: UP017 - hosts may run Python 3.10
        )
        labels = ",".join(
            f'{k}="{_label(v)}"'
            for k, v in (
                ("path", r["path"]),
                ("subject", r["subject"]),
                ("issuer", r["issuer"]),
                ("ca", "true" if r["ca"] else "false"),
            )
        )
        lines.append(f"airlock_certificate_not_after_seconds{{{labels}}} {expiry.timestamp():.0f}")
    lines += [
        "# HELP airlock_certificate_errors Certificate files openssl could not read.",
        "# TYPE airlock_certificate_errors gauge",
        f"airlock_certificate_errors {len(errors)}",
        "# HELP airlock_certificate_scan_timestamp_seconds When the certificates were last read.",
        "# TYPE airlock_certificate_scan_timestamp_seconds gauge",
        f"airlock_certificate_scan_timestamp_seconds {now:.0f}",
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    handle, tmp = tempfile.mkstemp(prefix=".airlock-cert-metrics.", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} CONFIG.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            config = json.load(handle)
        output = config["output"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"airlock-cert-metrics: {argv[1]}: unusable configuration: {exc}", file=sys.stderr)
        return 2
    records, errors = scan(config.get("paths", []), config.get("kubeconfigs", []))
    for error in errors:
        print(f"airlock-cert-metrics: {error}", file=sys.stderr)
    write_atomically(output, render(records, errors, time.time()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
