"""The deploy path on a real lab with no route out: serve the bundle, fetch, verify, install.

A small bundle goes through the production pipeline (manifest -> download -> verify ->
archive): one binary, and socat + nginx with every dependency resolved from Debian's
archive. playbooks/bundle.yml then serves it from the bundle host over HTTPS; every host
fetches the binary (checked against its sha256) and installs socat from the bundle's
repository. A second run changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest
import yaml

from airlock.bundle.build.download import Cache
from airlock.bundle.build.pipeline import BuildOptions, build
from airlock.bundle.build.verify import require_valid
from airlock.bundle.manifest import load_manifest
from airlock.lab.bundle import profile as lab
from tests.conftest import ROOT, VENV_BIN, lab_hosts, run_airlock

pytestmark = pytest.mark.lab
NAME = "bundle"
TOOL = os.urandom(512 * 1024)


def _bundle(tmp_path):
    tool = tmp_path / "tool"
    tool.write_bytes(TOOL)
    debs = lab._resolve_debs(ROOT / ".airlock" / "cache" / "lab", "amd64", ["socat", "nginx-light"])
    doc = {
        "schema": 1,
        "kube_version": "v1.34.4",
        "architectures": ["amd64"],
        "mirrors": {"local": tmp_path.as_uri(), **lab.DEB_MIRRORS},
        "artifacts": [
            {
                "name": "tool",
                "version": "1.0",
                "url": "{mirror.local}/tool",
                "target": "bin/{arch}/tool",
                "roles": ["all"],
                "sha256": {"amd64": hashlib.sha256(TOOL).hexdigest()},
            },
            *lab.deb_artifacts(debs, "amd64"),
        ],
    }
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump(doc))
    out = tmp_path / "small-bundle.tar"
    build(
        BuildOptions(
            manifest=load_manifest(manifest),
            arches=["amd64"],
            output=out,
            cache=Cache(ROOT / ".airlock" / "cache" / "bundle"),
            progress=False,
        )
    )
    require_valid(out)
    return out


def _playbook(inventory, bundle):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/bundle.yml",
            "-e",
            f"bundle_server_archive={bundle}",
            "-e",
            '{"bundle_client_packages": ["socat"]}',
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def _recap(output):
    return {
        m[0]: int(m[1])
        for m in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.MULTILINE)
    }


def _ssh(host, *cmd):
    return run_airlock("lab", "ssh", "--name", NAME, host, *cmd, check=True).stdout


@pytest.fixture(scope="module")
def internal_lab():
    up = ("--masters", "1", "--workers", "1", "--subnet", "10.77.41.0/24", "--internal")
    with lab_hosts(NAME, *up) as inventory:
        yield inventory


def test_hosts_fetch_verify_and_install_from_the_bundle_host(internal_lab, tmp_path):
    bundle = _bundle(tmp_path)
    first = _playbook(internal_lab, bundle)
    assert set(_recap(first)) == {"m1", "w1"}
    want = hashlib.sha256(TOOL).hexdigest()
    for host in ("m1", "w1"):
        assert _ssh(host, "sha256sum", "/opt/airlock/artifacts/bin/amd64/tool").split()[0] == want
        assert "Status: install ok installed" in _ssh(host, "dpkg", "--status", "socat")
        policy = _ssh(host, "apt-cache", "policy", "socat")
        assert "https://10.77.41." in policy and "debs/bookworm" in policy
    # The hosts really have no route out: the packages can only have come from the bundle.
    probe = run_airlock(
        "lab",
        "ssh",
        "--name",
        NAME,
        "w1",
        "python3",
        "-c",
        "import socket; socket.create_connection(('151.101.2.132', 80), 3)",
    )
    assert probe.returncode != 0
    second = _playbook(internal_lab, bundle)
    assert _recap(second) == {"m1": 0, "w1": 0}, second[-3000:]
