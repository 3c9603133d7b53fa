"""The rendered haproxy config and keepalived track script against real programs on loopback:
haproxy (this machine's) health-checks a TLS /readyz stand-in (the molecule scenario's server)
and only marks it up when its certificate verifies against loadbalancer_ca_file; the track
script follows the local haproxy and nothing else."""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]
STANDIN = REPO / "molecule/loadbalancer/files/readyz_server.py"
_spec = importlib.util.spec_from_file_location(
    "loadbalancer_render", REPO / "tests/unit/loadbalancer/test_render.py"
)
assert _spec and _spec.loader
_render_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_render_mod)
render = _render_mod.render
pytestmark = _render_mod.pytestmark


def wait_until(predicate: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {deadline_s:.0f}s waiting for {what}")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(path: Path, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = make_ca(d / "ca.crt", "cluster-ca")
    make_ca(d / "other-ca.crt", "some-other-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("kubernetes"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (d / "tls.key").chmod(0o600)
    return {"ca": d / "ca.crt", "other_ca": d / "other-ca.crt", "crt": d / "tls.crt",
            "key": d / "tls.key"}  # fmt: skip


@pytest.fixture(scope="module")
def standin(pki: dict[str, Path]) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, STANDIN, "--bind", "127.0.0.1", "--port", str(port),
         "--cert", pki["crt"], "--key", pki["key"]],
    )  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(ready, 15, "the /readyz stand-in")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class Haproxy:
    """haproxy -db on a rendered config (frontend and stats on loopback)."""

    def __init__(self, tmp_path: Path, standin: int, ca_file: Path) -> None:
        self.front, self.stats = free_port(), free_port()
        loopback = {"ip": "127.0.0.1"}
        out = render(
            tmp_path,
            host_vars=dict.fromkeys(("m1", "m2", "m3"), loopback),
            airlock_api_vip="127.0.0.1",
            airlock_api_port=self.front,
            airlock_apiserver_port=standin,
            loadbalancer_stats_port=self.stats,
            loadbalancer_ca_file=str(ca_file),
            loadbalancer_healthcheck_interval="200ms",
        )
        self.script = out / "m1" / "check_haproxy.sh"
        cfg = (out / "m1" / "haproxy.cfg").read_text()
        # The only edit: the admin socket lives in /run/haproxy, which belongs to the
        # machine's own haproxy; everything under test is left as rendered.
        assert "stats socket /run/haproxy/admin.sock" in cfg
        self.cfg = tmp_path / "haproxy.cfg"
        self.cfg.write_text(
            "\n".join(line for line in cfg.splitlines() if "stats socket" not in line) + "\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)])
        wait_until(lambda: self.track_script() == 0, 15, "haproxy's monitor URI")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def server_states(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.stats}/stats;csv"
        with urllib.request.urlopen(url, timeout=2) as resp:
            rows = [line.split(",") for line in resp.read().decode().splitlines()]
        return {r[1]: r[17] for r in rows if r[0] == "kube_apiserver" and r[1].startswith("m")}

    def track_script(self) -> int:
        return subprocess.run(["bash", str(self.script)], check=False, timeout=10).returncode


@pytest.fixture
def haproxy_factory(tmp_path: Path, standin: int) -> Iterator[Callable[[Path], Haproxy]]:
    started: list[Haproxy] = []

    def make(ca_file: Path) -> Haproxy:
        work = tmp_path / f"h{len(started)}"
        work.mkdir()
        h = Haproxy(work, standin, ca_file)
        h.start()
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


def test_backends_up_when_their_certificate_verifies(haproxy_factory, pki) -> None:
    h = haproxy_factory(pki["ca"])
    wait_until(lambda: set(h.server_states().values()) == {"UP"}, 20, "backends UP")
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.check_hostname = False  # the client talks TLS to the apiserver through haproxy
    with urllib.request.urlopen(f"https://127.0.0.1:{h.front}/readyz", context=ctx, timeout=3) as r:
        assert r.read().startswith(b"ok ")


def test_backends_down_when_signed_by_another_ca(haproxy_factory, pki) -> None:
    h = haproxy_factory(pki["other_ca"])
    wait_until(
        lambda: all(s.startswith("DOWN") for s in h.server_states().values()), 20, "backends DOWN"
    )
    # The track script follows the local haproxy only: all apiservers down must not make
    # this host give up the VIP (that would flap it exactly when the control plane is sick).
    assert h.track_script() == 0


def test_track_script_fails_when_local_haproxy_stops(haproxy_factory, pki) -> None:
    h = haproxy_factory(pki["ca"])
    assert h.track_script() == 0
    h.stop()
    assert h.track_script() != 0
