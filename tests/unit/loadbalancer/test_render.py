"""Render the loadbalancer role's templates through Ansible and validate them with the real
haproxy (`haproxy -c -f`) and keepalived (`keepalived --config-test -f`) of this machine,
the same commands the role's `validate:` runs on the hosts."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.playbook import run_playbook

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).with_name("render.yml")
HOSTS = {"m1": "10.77.12.11", "m2": "10.77.12.12", "m3": "10.77.12.13"}
VIP = "10.77.12.250"
PASSWORD = "s3cretPW"

pytestmark = pytest.mark.skipif(
    not (shutil.which("haproxy") and shutil.which("keepalived")),
    reason="needs haproxy and keepalived installed (scripts/bootstrap installs them)",
)


def _interface() -> str:
    """keepalived --config-test rejects interfaces this machine does not have."""
    names = sorted(p.name for p in Path("/sys/class/net").iterdir())
    return next((n for n in names if n != "lo"), "lo")


def _ca(tmp_path: Path) -> Path:
    key = tmp_path / "ca.key"
    crt = tmp_path / "ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=test-ca"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt


def render(
    tmp_path: Path, host_vars: dict[str, dict[str, Any]] | None = None, **overrides: Any
) -> Path:
    """Run render.yml; return the directory holding <host>/{haproxy.cfg,keepalived.conf,...}."""
    out = tmp_path / "out"
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755, exist_ok=True)
    inventory = {
        "all": {
            "hosts": {
                h: {
                    "ip": ip,
                    "airlock_cluster_name": "mol-lb",
                    # Discovery would pick a pyenv shim on this machine: use the venv's Python.
                    "ansible_python_interpreter": sys.executable,
                    **(host_vars or {}).get(h, {}),
                }
                for h, ip in HOSTS.items()
            },
            "children": {
                "lb": {"hosts": dict.fromkeys(HOSTS)},
                "kube_control_plane": {"hosts": dict.fromkeys(HOSTS)},
            },
        }
    }
    extra = {
        "render_dir": str(out),
        "airlock_api_vip": VIP,
        "airlock_api_port": 8443,
        "airlock_apiserver_port": 6443,
        "airlock_credentials_dir": str(tmp_path / "credentials"),
        "loadbalancer_ca_file": str(_ca(tmp_path)),
        # What the role's configure phase would have found or read on a host.
        "_loadbalancer_addressing": {"interface": _interface(), "network": "10.77.12.0/24"},
        "_loadbalancer_password_slurp": {
            "content": base64.b64encode(PASSWORD.encode() + b"\n").decode()
        },
        "_loadbalancer_check_script": str(scripts / "check_haproxy.sh"),
        **overrides,
    }
    run_playbook(PLAYBOOK, tmp_path, inventory, extra)
    # keepalived's script security wants the track script where the role puts it: root-owned
    # and not writable by others; copy the rendered one there for the config test.
    shutil.copy(out / "m1" / "check_haproxy.sh", scripts / "check_haproxy.sh")
    (scripts / "check_haproxy.sh").chmod(0o755)
    return out


def haproxy_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["haproxy", "-c", "-f", cfg], capture_output=True, text=True, check=False)


def keepalived_check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["keepalived", "--config-test", "-f", cfg], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def default_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("default"))


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_haproxy_config_is_valid(default_render: Path, host: str) -> None:
    result = haproxy_check(default_render / host / "haproxy.cfg")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_keepalived_config_is_valid(default_render: Path, host: str) -> None:
    result = keepalived_check(default_render / host / "keepalived.conf")
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_frontend_backends_and_checks(default_render: Path) -> None:
    cfg = (default_render / "m1" / "haproxy.cfg").read_text()
    assert re.search(rf"^\s+bind {re.escape(VIP)}:8443$", cfg, re.M)
    servers = re.findall(r"^\s+server (\S+) (\S+)$", cfg, re.M)
    assert servers == [(h, f"{ip}:6443") for h, ip in HOSTS.items()]
    default_server = re.search(r"^\s+default-server (.*)$", cfg, re.M)
    assert default_server
    opts = default_server.group(1)
    assert "check check-ssl verify required ca-file " in opts
    assert "verifyhost kubernetes" in opts
    assert "verify none" not in cfg
    assert "http-check send meth GET uri /readyz" in cfg
    assert re.search(r"^\s+timeout client 1h$", cfg, re.M)
    assert re.search(r"^\s+timeout server 1h$", cfg, re.M)
    # stats only on loopback
    assert re.search(r"^listen stats\n\s+bind 127\.0\.0\.1:8404$", cfg, re.M)


def test_keepalived_unicast_auth_and_track(default_render: Path) -> None:
    ids, priorities = set(), []
    for host, ip in HOSTS.items():
        cfg = (default_render / host / "keepalived.conf").read_text()
        peers = re.search(r"unicast_peer \{\n(.*?)\n\s+\}", cfg, re.S)
        assert peers
        assert peers.group(1).split() == [i for i in HOSTS.values() if i != ip]
        assert f"unicast_src_ip {ip}" in cfg
        assert f"auth_pass {PASSWORD}\n" in cfg
        assert re.search(rf"{re.escape(VIP)}/24 dev \S+", cfg)
        assert "track_script {\n        airlock_haproxy" in cfg
        assert not re.search(r"^\s+nopreempt$", cfg, re.M)
        ids.add(re.search(r"virtual_router_id (\d+)", cfg).group(1))  # type: ignore[union-attr]
        priorities.append(int(re.search(r"priority (\d+)", cfg).group(1)))  # type: ignore[union-attr]
    assert len(ids) == 1
    assert len(set(priorities)) == len(HOSTS)


def test_track_script_checks_local_haproxy_only(default_render: Path) -> None:
    script = (default_render / "m1" / "check_haproxy.sh").read_text()
    assert "/dev/tcp/127.0.0.1/8404" in script
    assert "6443" not in script
    assert all(ip not in script for ip in HOSTS.values())
    result = subprocess.run(["bash", "-n", default_render / "m1" / "check_haproxy.sh"], check=False)
    assert result.returncode == 0


def test_virtual_router_id_is_a_stable_hash_of_the_cluster_name(tmp_path: Path) -> None:
    clusters = {"m1": "mol-lb", "m2": "prod-eu1", "m3": "airlock"}
    out = render(tmp_path, host_vars={h: {"airlock_cluster_name": c} for h, c in clusters.items()})
    ids = set()
    for host, cluster in clusters.items():
        expected = int(hashlib.sha1(cluster.encode()).hexdigest()[:8], 16) % 255 + 1
        assert 1 <= expected <= 255
        assert f"virtual_router_id {expected}\n" in (out / host / "keepalived.conf").read_text()
        ids.add(expected)
    assert len(ids) == len(clusters)


def test_multicast_nopreempt_variant_is_valid(tmp_path: Path) -> None:
    out = render(tmp_path, loadbalancer_vrrp_mode="multicast", loadbalancer_nopreempt=True,
                 loadbalancer_backend_verifyhost="", loadbalancer_virtual_router_id=42)  # fmt: skip
    cfg = (out / "m1" / "keepalived.conf").read_text()
    assert "unicast_peer" not in cfg
    assert re.search(r"^\s+nopreempt$", cfg, re.M)
    assert "virtual_router_id 42\n" in cfg
    assert keepalived_check(out / "m1" / "keepalived.conf").returncode == 0
    ha = (out / "m1" / "haproxy.cfg").read_text()
    assert "verifyhost" not in ha
    assert "verify required" in ha
    assert haproxy_check(out / "m1" / "haproxy.cfg").returncode == 0


def test_validators_reject_broken_configs(default_render: Path, tmp_path: Path) -> None:
    """The role relies on these commands failing on a bad file: prove they do."""
    good_ha = (default_render / "m1" / "haproxy.cfg").read_text()
    bad_ha = tmp_path / "haproxy.cfg"
    bad_ha.write_text(good_ha.replace("verify required ca-file ", "verify required ca-file /no/"))
    assert haproxy_check(bad_ha).returncode != 0
    good_ka = (default_render / "m1" / "keepalived.conf").read_text()
    bad_ka = tmp_path / "keepalived.conf"
    bad_ka.write_text(re.sub(r"virtual_router_id \d+", "virtual_router_id 300", good_ka))
    bad_ka.chmod(0o600)
    assert keepalived_check(bad_ka).returncode != 0


def test_argument_spec_rejects_an_unknown_vrrp_mode(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="loadbalancer_vrrp_mode"):
        render(tmp_path, loadbalancer_vrrp_mode="broadcast")
