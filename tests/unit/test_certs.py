"""cert_inventory on certificates made by the real openssl: expiry, kubeconfigs, no key out."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.certs import (
    OPENSSL_ARGS,
    CertParseError,
    due,
    files_read,
    kubeconfig_certificates,
    openssl_date,
    parse_x509_text,
    stale_pods,
)
from ansible_collections.airlock.cluster.plugins.modules import cert_inventory

from airlock.certs import CERTS_TASK, render, rows_from_events
from tests.module_harness import ModuleFailed, run_module


def _make_cert(directory: Path, name: str, days: int, ca: bool = False) -> Path:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    ext = "basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=CA:FALSE"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days)),
            *("-subj", f"/O=airlock/CN={name}", "-addext", ext),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def _kubeconfig(path: Path, user: str, cert: Path) -> Path:
    data = base64.b64encode(cert.read_bytes()).decode()
    key = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nsecret\n").decode()
    path.write_text(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Zm9v\n"
        "    server: https://10.0.0.10:8443\n  name: airlock\ncontexts:\n- context:\n"
        f"    cluster: airlock\n    user: {user}\n  name: {user}@airlock\n"
        f"current-context: {user}@airlock\nkind: Config\nusers:\n- name: {user}\n  user:\n"
        f"    client-certificate-data: {data}\n    client-key-data: {key}\n"
    )
    return path


def test_openssl_dates_parse_in_both_day_widths() -> None:
    assert openssl_date("Jun  4 11:04:38 2035 GMT") == datetime(2035, 6, 4, 11, 4, 38, tzinfo=UTC)
    assert openssl_date("Dec 12 01:02:03 2026 GMT").day == 12
    with pytest.raises(CertParseError, match="unexpected date"):
        openssl_date("2026-12-12T01:02:03Z")


def test_the_record_of_a_real_certificate(tmp_path: Path) -> None:
    cert = _make_cert(tmp_path, "etcd-server", days=9)
    out = subprocess.run(
        ["openssl", *OPENSSL_ARGS, "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    ).stdout
    record = parse_x509_text(out, datetime.now(UTC))
    assert record["subject"] == "CN=etcd-server,O=airlock"
    assert record["issuer"] == record["subject"]
    assert record["days_left"] == 8  # 9 days minus the seconds since it was made
    assert not record["expired"] and not record["ca"]
    later = parse_x509_text(out, datetime.now(UTC) + timedelta(days=10))
    assert later["expired"] and later["days_left"] < 0


def test_output_without_dates_is_an_error() -> None:
    with pytest.raises(CertParseError, match="no not_before, not_after"):
        parse_x509_text("subject=CN=a\nissuer=CN=a\n", datetime.now(UTC))


def test_kubeconfig_certificates_embedded_and_by_file() -> None:
    text = (
        "users:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: "
        + base64.b64encode(b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").decode()
        + "\n- name: default-auth\n  user:\n"
        "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n"
        "- name: robot\n  user:\n    token: abc\n"
    )
    found = kubeconfig_certificates(text)
    assert [e["user"] for e in found] == ["kubernetes-admin", "default-auth"]
    assert found[0]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert found[1]["file"] == "/var/lib/kubelet/pki/kubelet-client-current.pem"
    with pytest.raises(CertParseError, match="not base64"):
        kubeconfig_certificates("users:\n- name: x\n  user:\n    client-certificate-data: !!\n")


def test_the_module_lists_files_and_kubeconfigs_sorted_by_expiry(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    _make_cert(pki, "ca", days=3650, ca=True)
    _make_cert(pki, "apiserver", days=5)
    admin = _kubeconfig(tmp_path / "admin.conf", "kubernetes-admin", _make_cert(tmp_path, "a", 40))
    result = run_module(
        cert_inventory,
        {
            "paths": [f"{pki}/*.crt", "/nonexistent/*.crt"],
            "kubeconfigs": [str(admin), "/etc/kubernetes/none.conf"],
            "warn_days": 30,
        },
    )
    rows = result["certificates"]
    assert [Path(r["path"]).name for r in rows] == [
        "apiserver.crt",
        "admin.conf#kubernetes-admin",
        "ca.crt",
    ]
    assert [r["expiring"] for r in rows] == [True, False, False]
    assert rows[2]["ca"] and not result["changed"]
    assert result["absent"] == ["/nonexistent/*.crt", "/etc/kubernetes/none.conf"]
    assert "secret" not in repr(result) and "BEGIN" not in repr(result)


def test_a_file_that_is_not_a_certificate_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.crt").write_text("not a certificate\n")
    with pytest.raises(ModuleFailed, match=r"broken.crt: openssl cannot read it"):
        run_module(cert_inventory, {"paths": [str(tmp_path / "*.crt")]})


def _rec(days: int, ca: bool = False) -> dict:
    return {"days_left": days, "ca": ca}


def test_due_names_follow_the_threshold_and_never_a_ca() -> None:
    records = {"apiserver": _rec(5), "admin.conf": _rec(200), "scheduler.conf": _rec(29)}
    assert due(records, 30, renew_all=False) == ["apiserver", "scheduler.conf"]
    assert due(records, 30, renew_all=True) == ["apiserver", "admin.conf", "scheduler.conf"]
    assert due({"apiserver": _rec(1, ca=True)}, 30, renew_all=True) == []


def test_a_pod_is_stale_only_when_a_file_it_reads_changed_after_it_started() -> None:
    reads = files_read("/etc/kubernetes/pki/", {"kube-apiserver": ["/etc/etcd-client.crt"]})
    assert "/etc/etcd-client.crt" in reads["kube-apiserver"]
    assert "/etc/kubernetes/pki/apiserver.crt" in reads["kube-apiserver"]
    assert reads["kube-scheduler"] == ["/etc/kubernetes/scheduler.conf"]
    mtimes = {"/etc/etcd-client.crt": 200.0, "/etc/kubernetes/scheduler.conf": 50.0}
    started = {"kube-apiserver": 100.0, "kube-scheduler": 100.0}
    assert stale_pods(reads, mtimes, started) == ["kube-apiserver"]
    # a pod not running is started by the kubelet with the current files: not stale
    assert stale_pods(reads, mtimes, {"kube-scheduler": 10.0}) == ["kube-scheduler"]
    assert stale_pods(reads, {}, started) == []


def _event(host: str, certs: list[dict]) -> dict:
    return {
        "event": "runner_on_ok",
        "event_data": {"task": CERTS_TASK, "host": host, "res": {"certificates": certs}},
    }


def _cert(path: str, not_after: str, days: int, expiring: bool, ca: bool = False) -> dict:
    return {
        "path": path,
        "subject": f"CN={Path(path).stem},O=airlock",
        "issuer": "CN=kubernetes",
        "not_after": not_after,
        "days_left": days,
        "ca": ca,
        "expiring": expiring,
    }


def test_the_table_is_sorted_by_expiry_and_names_the_expiring() -> None:
    events = [
        _event("m1", [_cert("/p/ca.crt", "2036-01-01T00:00:00Z", 3000, False, ca=True)]),
        _event("m2", [_cert("/p/apiserver.crt", "2026-12-07T00:00:00Z", 5, True)]),
        {"event": "runner_on_ok", "event_data": {"task": "other", "host": "m3", "res": {}}},
    ]
    rows = rows_from_events(events)
    assert [(r.host, r.path) for r in rows] == [("m2", "/p/apiserver.crt"), ("m1", "/p/ca.crt")]
    text = render(rows, 30)
    lines = text.splitlines()
    assert lines[1].startswith("m2") and "apiserver" in lines[1] and "<-- expiring" in lines[1]
    assert "/p/ca.crt (CA)" in lines[2] and "2036-01-01 00:00:00" in lines[2]
    assert lines[-1] == (
        "1 of 2 certificates on 2 hosts expire within 30 days: "
        "renew them with `airlock certs renew`"
    )
    assert render(rows[1:], 30).endswith("1 certificate on 1 host; none expires within 30 days")
