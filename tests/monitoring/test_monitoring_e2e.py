"""`make e2e-monitoring`: the monitoring stack on a whole --internal 3+2 lab, end to end.

A lab with the monitoring stack on w1 and w2 and the registry on m3 (`airlock lab up
--monitoring w1,w2 --registry m3`) gets the platform from the lab bundle with `airlock
deploy`; the inventory adds only what a user
would: the alert rules' `for:` capped (`monitoring_alert_for_max: 30s`) and a webhook
receiver. The receiver is a small HTTPS server this test runs on m1 (its own CA, which
Alertmanager is told to trust), writing every notification to a file. Then, on the real
cluster:

- every scrape target of both Prometheus is up (nodes, etcd, haproxy, the VIP probe, the
  apiservers, kube-state-metrics, the registry probe (`--registry m3`), Prometheus and
  Alertmanager themselves);
- etcd stopped on m3: `EtcdMemberDown` for m3 reaches the receiver, and resolves once it
  runs again;
- docker-registry stopped on m3: the critical `RegistryDown` reaches the receiver, and
  resolves once it runs again;
- keepalived stopped on the VIP holder: `airlock_keepalived_master` moves to another host;
- a certificate expiring in 5 days on w2: the critical `CertificateExpiresVerySoon`
  reaches the receiver, and resolves once the file is gone;
- headless Chromium (Debian's) takes screenshots of the targets and alerts pages, the
  monitoring CA trusted in its own NSS database (never an ignore-certificate flag), the
  password sent as a header over the DevTools protocol (tests/monitoring/browser.py), saved
  in .airlock/artifacts/e2e-monitoring/; each page must show what it is about;
- every panel of airlock's Grafana dashboards returns data.

The lab is removed at the end (AIRLOCK_E2E_KEEP=1 keeps it).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT, lab_hosts, run_airlock

LAB = "mon"
SUBNET = "10.77.18.0/24"
INVENTORY = ROOT / ".airlock" / "labs" / LAB / "inventory"
ARTIFACTS = ROOT / ".airlock" / "artifacts" / "e2e-monitoring"
RECEIVER_HOST = "m1"
RECEIVER_PORT = 9977
RECEIVER_CA = "/etc/ssl/airlock-e2e-receiver-ca.crt"
ALERTS_FILE = "/root/alerts.jsonl"
EXPIRING = "/etc/prometheus/tls/e2e-expiring.crt"
# Every job of prometheus.yml with its number of targets on a 3+2 lab monitored from w1, w2.
JOBS = {
    "prometheus": 2,
    "alertmanager": 2,
    "node": 5,
    "etcd": 3,
    "haproxy": 3,
    "vip": 1,
    "blackbox": 1,
    "apiserver": 3,
    "kube-state-metrics": 2,
    "kubelet": 5,
    "cadvisor": 5,
    "kube-controller-manager": 3,
    "kube-scheduler": 3,
    "kube-proxy": 5,
    "coredns": 2,
    "registry": 1,
}

RECEIVER = r"""
import http.server, json, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[3], "a") as out:
            out.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2] + ".crt", sys.argv[2] + ".key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def _exec(host: str, *argv: str, check: bool = True, stdin: str | None = None) -> str:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    proc = subprocess.run(
        ["podman", "exec", "-i", f"airlock-{LAB}-{host}", *argv],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=300,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.stderr or proc.stdout}"
    return proc.stdout


def _put(host: str, path: str, content: str, mode: str = "0644") -> None:
    _exec(host, "install", "-D", "-m", mode, "/dev/stdin", path, stdin=content)


def _wait(what: str, probe: Callable[[], Any], timeout: float = 300, every: float = 5) -> Any:
    """Poll until `probe` returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    got = [
        (a["labels"].get("alertname"), a["labels"].get("instance"), a["status"])
        for note in _notifications()
        for a in note.get("alerts", [])
    ]
    raise AssertionError(
        f"{what}: not seen within {timeout:.0f}s (last: {last!r}); the receiver got: {got}"
    )


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def new(cls, name: str) -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(self, name: str, days: float, ip: str | None = None) -> tuple[str, str]:
        """A leaf certificate and its key (PEM), valid for `days` from now."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
        )
        if ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Stack:
    prometheus: list[str]
    ca_file: Path
    user: str
    password: str
    ips: dict[str, str]

    def get(self, url: str) -> Any:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            return json.load(response)

    def query(self, expr: str, prometheus: int = 0) -> list[dict[str, Any]]:
        url = f"{self.prometheus[prometheus]}api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        return self.get(url)["data"]["result"]


def _notifications() -> list[dict[str, Any]]:
    text = _exec(RECEIVER_HOST, "cat", ALERTS_FILE, check=False)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _notified(alertname: str, status: str, **labels: str) -> list[dict[str, Any]]:
    """The alerts named `alertname` in state `status` the receiver got, with `labels`."""
    return [
        alert
        for note in _notifications()
        for alert in note.get("alerts", [])
        if alert["labels"].get("alertname") == alertname
        and alert["status"] == status
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    # The lab bundle (built once, then reused from the cache).
    built = run_airlock("bundle", "build", "--profile", "lab", timeout=4 * 3600)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr
    up = (
        "--internal",
        "--masters",
        "3",
        "--workers",
        "2",
        "--monitoring",
        "w1,w2",
        "--registry",
        "m3",
    )
    with lab_hosts(LAB, *up, "--subnet", SUBNET, timeout=1800, keep=keep) as inventory:
        hosts = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["hosts"]
        ips = {name: spec["ip"] for name, spec in hosts.items()}
        receiver_ip = ips[RECEIVER_HOST]
        # The test's receiver: HTTPS with a CA of its own, which Alertmanager trusts.
        ca = Ca.new("airlock-e2e-receiver-ca")
        cert, key = ca.issue("receiver", days=1, ip=receiver_ip)
        _put(RECEIVER_HOST, "/root/receiver.py", RECEIVER)
        _put(RECEIVER_HOST, "/root/receiver.crt", cert)
        _put(RECEIVER_HOST, "/root/receiver.key", key, mode="0600")
        for host in ("w1", "w2"):
            _put(host, RECEIVER_CA, ca.pem)
        _exec(
            RECEIVER_HOST,
            "systemd-run",
            "--unit=e2e-receiver",
            "python3",
            "/root/receiver.py",
            str(RECEIVER_PORT),
            "/root/receiver",
            ALERTS_FILE,
        )
        (inventory / "group_vars" / "all" / "e2e-monitoring.yml").write_text(
            yaml.safe_dump(
                {
                    "monitoring_alert_for_max": "30s",
                    "monitoring_scrape_interval": "10s",
                    "monitoring_evaluation_interval": "10s",
                    "monitoring_alertmanager_receivers": [
                        {
                            "name": "e2e",
                            "webhook_configs": [
                                {
                                    "url": f"https://{receiver_ip}:{RECEIVER_PORT}/alerts",
                                    "send_resolved": True,
                                    "http_config": {"tls_config": {"ca_file": RECEIVER_CA}},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        run_airlock("check", "-i", str(inventory), check=True, timeout=600)
        started = time.monotonic()
        deploy = run_airlock("deploy", "-i", str(inventory), timeout=3600)
        assert deploy.returncode == 0, deploy.stdout[-6000:] + deploy.stderr
        print(f"\ndeploy with the monitoring stack: {time.monotonic() - started:.0f}s")
        shown = run_airlock("monitoring", "open", "-i", str(inventory), check=True).stdout
        print(shown)
        creds = inventory / ".credentials" / "monitoring"
        prometheus = [f"https://{ips[h]}:9090/" for h in ("w1", "w2")]
        assert all(url in shown for url in prometheus), shown
        yield Stack(
            prometheus=prometheus,
            ca_file=creds / "ca.crt",
            user="admin",
            password=(creds / "web-admin.password").read_text().strip(),
            ips=ips,
        )


def test_every_target_of_both_prometheus_is_up(stack: Stack) -> None:
    def all_up(url: str) -> dict[str, int] | None:
        targets = stack.get(f"{url}api/v1/targets")["data"]["activeTargets"]
        down = [
            f"{t['labels']['job']}/{t['labels'].get('instance')}"
            for t in targets
            if t["health"] != "up"
        ]
        jobs: dict[str, int] = {}
        for target in targets:
            jobs[target["labels"]["job"]] = jobs.get(target["labels"]["job"], 0) + 1
        return jobs if not down and jobs == JOBS else None

    for url in stack.prometheus:
        jobs = _wait(f"every target of {url} up", lambda u=url: all_up(u), 300)
        assert jobs == JOBS


def test_kube_state_metrics_reports_the_five_nodes_ready(stack: Stack) -> None:
    result = stack.query(
        'kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="true"} == 1'
    )
    assert sorted(r["metric"]["node"] for r in result) == ["m1", "m2", "m3", "w1", "w2"]


def test_prometheus_reads_component_metrics_verified_and_nothing_else(stack: Stack) -> None:
    """From a monitoring host, with Prometheus' own files: every component's certificate
    verifies against the cluster CA by IP, /metrics answers, and the same identity is
    refused the kubelet's pod API (nodes/proxy), exec and Secrets."""
    tls = "/etc/prometheus/tls"
    curl = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        f"{tls}/kubernetes-ca.crt",
    ]
    curl += ["--cert", f"{tls}/kubernetes-client.crt", "--key", f"{tls}/kubernetes-client.key"]
    m2, w2 = stack.ips["m2"], stack.ips["w2"]
    expected = {
        f"https://{w2}:10250/metrics": "200",
        f"https://{w2}:10250/metrics/cadvisor": "200",
        f"https://{m2}:10257/metrics": "200",
        f"https://{m2}:10259/metrics": "200",
        f"https://{w2}:10250/pods": "403",
        f"https://{m2}:6443/api/v1/namespaces/kube-system/secrets": "403",
    }
    codes = {url: _exec("w1", *curl, url, check=False) for url in expected}
    assert codes == expected


def test_the_apiserver_verifies_the_kubelets_for_logs(stack: Stack) -> None:
    """kube-apiserver runs with --kubelet-certificate-authority: `kubectl logs` reaches the
    kubelet only because the kubelet's serving certificate is one of the cluster CA."""
    kubectl = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system"]
    manifest = _exec("m1", "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt" in manifest
    pods = _exec("m1", *kubectl, "get", "pods", "-l", "k8s-app=kube-dns", "-o", "name").split()
    assert pods
    for pod in pods:
        assert "CoreDNS" in _exec("m1", *kubectl, "logs", pod)


def test_an_etcd_member_down_reaches_the_receiver_and_resolves(stack: Stack) -> None:
    _exec("m3", "systemctl", "stop", "airlock-etcd")
    try:
        _wait(
            "EtcdMemberDown for m3 at the receiver",
            lambda: _notified("EtcdMemberDown", "firing", instance="m3"),
            timeout=300,
        )
    finally:
        _exec("m3", "systemctl", "start", "airlock-etcd")
    # A warning's resolution goes out at its group's next flush: group_interval is 5 minutes.
    _wait(
        "EtcdMemberDown for m3 resolved at the receiver",
        lambda: _notified("EtcdMemberDown", "resolved", instance="m3"),
        timeout=480,
    )
    firing = _notified("EtcdMemberDown", "firing", instance="m3")
    # Two Prometheus, one Alertmanager cluster: one notification, not one per Prometheus.
    assert len({a["fingerprint"] for a in firing}) == 1


def test_the_registry_down_reaches_the_receiver_and_resolves(stack: Stack) -> None:
    _exec("m3", "systemctl", "stop", "docker-registry")
    try:
        _wait(
            "RegistryDown for m3 at the receiver",
            lambda: _notified("RegistryDown", "firing", registry="m3"),
            timeout=300,
        )
    finally:
        _exec("m3", "systemctl", "start", "docker-registry")
    _wait(
        "RegistryDown for m3 resolved at the receiver",
        lambda: _notified("RegistryDown", "resolved", registry="m3"),
        timeout=480,
    )


def test_the_vip_moves_in_the_metrics_when_keepalived_stops(stack: Stack) -> None:
    def holder() -> str | None:
        result = stack.query('airlock_keepalived_master{job="node"} == 1')
        return result[0]["metric"]["instance"] if len(result) == 1 else None

    before = _wait("one VIP holder in the metrics", holder, 120)
    _exec(before, "systemctl", "stop", "keepalived")
    try:
        after = _wait(
            f"the VIP leaving {before} in the metrics",
            lambda: (h := holder()) and h != before and h,
            180,
        )
        assert after != before
    finally:
        _exec(before, "systemctl", "start", "keepalived")


def test_a_certificate_expiring_in_5_days_raises_the_critical_alert(stack: Stack) -> None:
    cert, _ = Ca.new("airlock-e2e-expiring-ca").issue("expiring-in-5-days", days=5)
    _put("w2", EXPIRING, cert)
    _exec("w2", "systemctl", "start", "airlock-cert-metrics.service")
    try:
        alerts = _wait(
            "CertificateExpiresVerySoon for the 5-day certificate at the receiver",
            lambda: _notified("CertificateExpiresVerySoon", "firing", path=EXPIRING),
            timeout=300,
        )
        assert alerts[0]["labels"]["severity"] == "critical"
    finally:
        _exec("w2", "rm", "-f", EXPIRING)
        _exec("w2", "systemctl", "start", "airlock-cert-metrics.service")
    _wait(
        "CertificateExpiresVerySoon resolved at the receiver",
        lambda: _notified("CertificateExpiresVerySoon", "resolved", path=EXPIRING),
        timeout=300,
    )


def test_screenshots_of_the_targets_and_alerts_pages(stack: Stack) -> None:
    from tests.monitoring.browser import screenshots

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {
        f"{stack.prometheus[0]}targets": (ARTIFACTS / "prometheus-targets.png", "3 / 3 up"),
        f"{stack.prometheus[0]}alerts": (ARTIFACTS / "prometheus-alerts.png", "EtcdMemberDown"),
    }
    screenshots(stack.ca_file, stack.user, stack.password, pages)
    for out, _ in pages.values():
        print(f"\nscreenshot: {out}")


def test_every_dashboard_panel_returns_data(stack: Stack) -> None:
    from tests.integration.monitoring.test_dashboard_queries import dashboard_queries

    def empty() -> list[str]:
        return [
            f"{board}: {title}: {expr}"
            for board, title, expr in dashboard_queries()
            if not stack.query(expr)
        ]

    # Rates need a few scrapes; the earlier tests gave them minutes already.
    last: dict[str, list[str]] = {}

    def all_have_data() -> bool:
        last["missing"] = empty()
        return not last["missing"]

    try:
        _wait("data for every dashboard panel", all_have_data, 180, 15)
    except AssertionError:
        raise AssertionError("panels without data:\n" + "\n".join(last["missing"])) from None
