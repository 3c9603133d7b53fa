# Copyright: airlock developers
# Apache-2.0
"""Certificates on a host, read without any Python crypto library on the host.

The host's ``openssl x509`` does the X.509 parsing (it is on every Debian and RHEL host
airlock supports, as a dependency of ca-certificates); this module only turns its
``-subject -issuer -startdate -enddate -serial -ext basicConstraints`` output (with
``-nameopt RFC2253`` and ``LC_ALL=C``) into a record, and finds the client certificates
kubeadm embeds in kubeconfig files. Pure functions: tests/unit/test_certs.py.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import datetime, timezone
from typing import Any

#: The openssl x509 arguments whose output parse_x509_text reads.
OPENSSL_ARGS = [
    "x509",
    "-noout",
    "-nameopt",
    "RFC2253",
    "-subject",
    "-issuer",
    "-startdate",
    "-enddate",
    "-serial",
    "-ext",
    "basicConstraints",
]

#: openssl's date form with LC_ALL=C: "Jun  4 11:04:38 2035 GMT".
_OPENSSL_DATE = "%b %d %H:%M:%S %Y GMT"
_FIELDS = {"subject": "subject", "issuer": "issuer", "notBefore": "not_before"}
_KUBECONFIG_USER = re.compile(r"^- name: *(?P<name>\S+) *$")
_KUBECONFIG_DATA = re.compile(r"^ +client-certificate-data: *(?P<data>\S+) *$")
_KUBECONFIG_FILE = re.compile(r"^ +client-certificate: *(?P<path>\S+) *$")


class CertParseError(ValueError):
    """openssl's output or a kubeconfig does not have the expected form."""


def openssl_date(text: str) -> datetime:
    """A UTC datetime from openssl's default date form."""
    try:
        parsed = datetime.strptime(" ".join(text.split()), _OPENSSL_DATE)
    except ValueError as exc:
        raise CertParseError(f"unexpected date {text!r} from openssl") from exc
    return parsed.replace(tzinfo=timezone.utc)  # noqa: UP017 - hosts may run Python 3.10


def parse_x509_text(text: str, now: datetime) -> dict[str, Any]:
    """The record of one certificate from openssl's output (see OPENSSL_ARGS)."""
    record: dict[str, Any] = {"ca": False}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        key, sep, value = line.partition("=")
        if sep and key in _FIELDS:
            record[_FIELDS[key]] = openssl_date(value) if key == "notBefore" else value.strip()
        elif sep and key == "notAfter":
            record["not_after"] = openssl_date(value)
        elif sep and key == "serial":
            record["serial"] = value.strip().upper()
        elif line.startswith("X509v3 Basic Constraints"):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            record["ca"] = "CA:TRUE" in following
    missing = [f for f in ("subject", "issuer", "not_before", "not_after") if f not in record]
    if missing:
        raise CertParseError(f"openssl printed no {', '.join(missing)}")
    not_after: datetime = record["not_after"]
    record["days_left"] = int((not_after - now).total_seconds() // 86400)
    record["expired"] = not_after <= now
    record["not_before"] = record["not_before"].strftime("%Y-%m-%dT%H:%M:%SZ")
    record["not_after"] = not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    return record


def kubeconfig_certificates(text: str) -> list[dict[str, str]]:
    """The client certificates of a kubeconfig: [{user, pem}] or [{user, file}].

    Reads the block form kubeadm and kubectl write (``users:`` entries of ``- name:``
    with ``client-certificate-data`` or ``client-certificate`` under ``user:``); a
    kubeconfig without client certificates (a token, an exec plugin) gives [].
    """
    found: list[dict[str, str]] = []
    user = ""
    in_users = False
    for line in text.splitlines():
        if line and not line.startswith((" ", "-")):
            in_users = line.startswith("users:")
            continue
        if not in_users:
            continue
        match = _KUBECONFIG_USER.match(line)
        if match:
            user = match.group("name")
            continue
        data = _KUBECONFIG_DATA.match(line)
        if data:
            try:
                pem = base64.b64decode(data.group("data"), validate=True).decode("ascii")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise CertParseError(
                    f"user {user!r}: client-certificate-data is not base64 PEM"
                ) from exc
            found.append({"user": user, "pem": pem})
            continue
        path = _KUBECONFIG_FILE.match(line)
        if path:
            found.append({"user": user, "file": path.group("path")})
    return found


def read_certificate(command: Any, now: datetime, path: str, pem: str | None = None) -> dict:
    """The record of the certificate in file ``path`` (or of ``pem``, named ``path``).

    ``command`` is the module's openssl Command; raises CertParseError naming ``path``.
    """
    args = [*OPENSSL_ARGS] if pem is not None else [*OPENSSL_ARGS, "-in", path]
    rc, out, err = command.module.run_command(
        command.argv(args), data=pem, environ_update=command.env, check_rc=False
    )
    if rc != 0:
        raise CertParseError(
            f"{path}: openssl cannot read it as a certificate: {err.strip()[-300:]}"
        )
    try:
        return {"path": path, **parse_x509_text(out, now)}
    except CertParseError as exc:
        raise CertParseError(f"{path}: {exc}") from exc


def kubeconfig_records(command: Any, now: datetime, path: str) -> list[dict]:
    """The records of a kubeconfig's client certificates (``PATH#user`` or the file named)."""
    try:
        with open(path, encoding="utf-8") as handle:
            entries = kubeconfig_certificates(handle.read())
    except OSError as exc:
        raise CertParseError(f"{path}: cannot read it: {exc.strerror}") from exc
    except CertParseError as exc:
        raise CertParseError(f"{path}: {exc}") from exc
    records = []
    for entry in entries:
        if "file" in entry:
            target = os.path.join(os.path.dirname(path), entry["file"])
            if os.path.isfile(target):
                records.append(read_certificate(command, now, target))
            continue
        try:
            pem = first_pem_certificate(entry["pem"])
        except CertParseError as exc:
            raise CertParseError(f"{path}: user {entry['user']}: {exc}") from exc
        records.append(read_certificate(command, now, f"{path}#{entry['user']}", pem))
    return records


def first_pem_certificate(text: str) -> str:
    """The first CERTIFICATE block of a PEM text (kubelet's -current.pem also holds a key)."""
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise CertParseError("no PEM certificate in it")
    return text[begin : end + len("-----END CERTIFICATE-----")] + "\n"


#: kubeadm's certificates (the NAME of ``kubeadm certs renew NAME``): the file that holds
#: each (``{pki}`` is kubeadm's certificatesDir) and the static pod that reads it. Only
#: those of a control plane with external etcd; CAs are not renewed by kubeadm.
KUBEADM_CERTS: dict[str, tuple[str, str]] = {
    "apiserver": ("{pki}/apiserver.crt", "kube-apiserver"),
    "apiserver-kubelet-client": ("{pki}/apiserver-kubelet-client.crt", "kube-apiserver"),
    "front-proxy-client": ("{pki}/front-proxy-client.crt", "kube-apiserver"),
    "admin.conf": ("/etc/kubernetes/admin.conf", ""),
    "super-admin.conf": ("/etc/kubernetes/super-admin.conf", ""),
    "controller-manager.conf": (
        "/etc/kubernetes/controller-manager.conf",
        "kube-controller-manager",
    ),
    "scheduler.conf": ("/etc/kubernetes/scheduler.conf", "kube-scheduler"),
}
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def kubeadm_file(name: str, pki_dir: str) -> str:
    """The file that holds kubeadm certificate ``name``."""
    return KUBEADM_CERTS[name][0].format(pki=pki_dir.rstrip("/"))


def due(records: dict[str, dict], within_days: int, renew_all: bool) -> list[str]:
    """kubeadm certificate names to renew, in KUBEADM_CERTS order, from their records.

    ``records`` maps a name to its certificate's record (names whose file is missing are
    absent); a CA is never due.
    """
    return [
        name
        for name in KUBEADM_CERTS
        if name in records
        and not records[name]["ca"]
        and (renew_all or records[name]["days_left"] < within_days)
    ]


def files_read(pki_dir: str, extra: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every certificate file each static pod reads: kubeadm's plus ``extra``."""
    reads: dict[str, list[str]] = {pod: list(extra.get(pod, [])) for pod in STATIC_PODS}
    for name, (_template, pod) in KUBEADM_CERTS.items():
        if pod:
            reads[pod].append(kubeadm_file(name, pki_dir))
    return reads


def stale_pods(
    reads: dict[str, list[str]], mtimes: dict[str, float], started: dict[str, float]
) -> list[str]:
    """Static pods running since before one of the files they read last changed.

    A pod that is not running (absent from ``started``) is not stale: the kubelet starts
    it with the current files. Files that do not exist (absent from ``mtimes``) are
    ignored.
    """
    stale = []
    for pod in STATIC_PODS:
        if pod not in started:
            continue
        newest = max((mtimes[f] for f in reads.get(pod, []) if f in mtimes), default=0.0)
        if newest > started[pod]:
            stale.append(pod)
    return stale
