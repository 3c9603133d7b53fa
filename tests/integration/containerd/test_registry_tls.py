"""Both containerds a node may run pull from a TLS registry through the files airlock writes.

The registry is Debian's docker-registry (distribution 2.8) on 127.0.0.1 over TLS, with a
certificate from a CA made here and htpasswd (bcrypt) authentication (tests/registry.py);
a small image is pushed into it with skopeo. For each containerd a node may run, Debian's
1.6 (`containerd_install_source: distro`) and the bundle's 2.2.1 (`bundle`: built from its
Go module by the lab profile on first use, as the lab bundle builds it), the containerd
role's configure phase writes config.toml (validated by that containerd), certs.d/HOST/
{hosts.toml,ca.crt} and crictl.yaml into a test directory, through Ansible (render.yml).
That containerd then runs on those files as a child of the test, and the bundle's crictl
pulls through its CRI plugin (the image service the kubelet calls, with the credentials an
imagePullSecret gives it):
- with the CA and the credentials, the image arrives with the digest skopeo pushed;
- without credentials, or with a wrong password, the registry answers 401;
- with the registry written as `public: true` (no ca_file: the system CAs), TLS fails with
  x509 "unknown authority". No file written for any registry turns verification off.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airlock.arch import host_arch
from airlock.lab.bundle import oci, profile
from tests.conftest import ROOT, VENV_BIN, lab_program
from tests.integration.containerd.daemon import running, short_dir
from tests.registry import UNVERIFIED, Registry, push, serve

PLAYBOOK = Path(__file__).with_name("render.yml")
IMAGE = "airlock/probe:1"


@dataclass(frozen=True)
class Runtime:
    source: str  # containerd_install_source the role runs with
    binary: Path
    version: str  # how crictl reports it: a prefix of RuntimeVersion


@pytest.fixture(scope="module", params=["distro", "bundle"], ids=["debian-1.6", "bundle-2.2"])
def runtime(request: pytest.FixtureRequest) -> Runtime:
    if request.param == "distro":
        binary = shutil.which("containerd")
        if not binary:
            pytest.fail("Debian's containerd is missing: run scripts/bootstrap (apt-packages)")
        return Runtime("distro", Path(binary), "1.6.")
    return Runtime("bundle", lab_program("containerd"), profile.CONTAINERD_VERSION)


@pytest.fixture(scope="module")
def crictl() -> Path:
    return lab_program("crictl")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with serve(tmp_path_factory.mktemp("registry"), authenticate=True) as served:
        yield served


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """IMAGE for this machine's architecture, pushed with the registry's credentials; its
    manifest digest."""
    work = tmp_path_factory.mktemp("image")
    (work / "hello").write_text("airlock registry TLS test\n")
    archive = work / "probe.oci.tar"
    layer = [oci.ImageFile(work / "hello", "/hello", 0o644)]
    oci.write_oci_archive(oci.ImageSpec(IMAGE, host_arch(), [layer]), archive)
    return push(registry, archive, IMAGE)


def render(base: Path, runtime: Runtime, registries: list[dict[str, Any]]) -> Path:
    """The role's configure phase for `runtime` and `registries`, its files under BASE/etc
    and its socket BASE/c.sock; returns BASE/etc."""
    etc = base / "etc"
    extra = {
        "containerd_install_source": runtime.source,
        # The role reads `containerd --version` of this binary and validates config.toml with it.
        "_containerd_binary": str(runtime.binary),
        "_containerd_config": str(etc / "config.toml"),
        "_containerd_certs_dir": str(etc / "certs.d"),
        "_containerd_crictl_config": str(etc / "crictl.yaml"),
        "containerd_cni_conf_dir": str(etc / "net.d"),
        "containerd_socket": str(base / "c.sock"),
        "containerd_registries": registries,
        # The test runs as root already (CI machines have no sudo).
        "ansible_become": False,
        "ansible_python_interpreter": sys.executable,
    }
    (base / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CACHE_PLUGIN_CONNECTION=str(base / "facts"))
    result = subprocess.run(
        [VENV_BIN / "ansible-playbook", "-i", "localhost,", "-e", f"@{base / 'extra.json'}",
         PLAYBOOK],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    return etc


def _private_paths(base: Path, config: Path) -> Path:
    """A configuration that imports the role's `config` unchanged and only moves the two
    paths containerd keeps outside its root and state into `base` (NRI's socket, 2.x; the
    opt plugin's directory), so the test shares nothing with the machine's containerd."""
    version = tomllib.loads(config.read_text())["version"]
    wrapper = base / "private.toml"
    wrapper.write_text(
        f"version = {version}\n"
        f'imports = ["{config}"]\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{base / "opt"}"\n'
        f'[plugins."io.containerd.nri.v1.nri"]\n  socket_path = "{base / "nri.sock"}"\n'
    )
    return wrapper


@dataclass
class Node:
    crictl: list[str | Path]  # crictl with the role's crictl.yaml
    log: Path  # containerd's log

    def pull(self, image: str, creds: str | None = None) -> subprocess.CompletedProcess[str]:
        auth = ["--creds", creds] if creds else []
        return subprocess.run(
            [*self.crictl, "pull", *auth, image], capture_output=True, text=True, check=False
        )

    def repo_digests(self, image: str) -> list[str]:
        out = subprocess.run(
            [*self.crictl, "inspecti", "-o", "json", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return list(json.loads(out)["status"]["repoDigests"])

    def runtime_version(self) -> str:
        out = subprocess.run(
            [*self.crictl, "version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"^RuntimeVersion:\s*(\S+)$", out, re.M)
        assert match, out
        return match.group(1)


@contextlib.contextmanager
def node(runtime: Runtime, crictl: Path, registries: list[dict[str, Any]]) -> Iterator[Node]:
    """`runtime` running on the files the role wrote for `registries`, CRI plugin answering."""
    with short_dir() as base:
        etc = render(base, runtime, registries)
        client: list[str | Path] = [crictl, "--config", etc / "crictl.yaml"]
        config = _private_paths(base, etc / "config.toml")
        with running(runtime.binary, config, base, [*client, "version"]) as log:
            yield Node(client, log)


@pytest.fixture(scope="module")
def trusting(runtime: Runtime, crictl: Path, registry: Registry) -> Iterator[Node]:
    """A node with the registry's CA (ca_file), as an inventory declares a private registry."""
    with node(runtime, crictl, [{"host": registry.host, "ca_file": str(registry.ca)}]) as n:
        yield n


def _failure(result: subprocess.CompletedProcess[str], node: Node) -> str:
    return f"{result.stdout}\n{result.stderr}\ncontainerd:\n{node.log.read_text()[-3000:]}"


def test_pull_with_the_ca_and_credentials_gets_the_pushed_image(
    trusting: Node, runtime: Runtime, registry: Registry, pushed: str
) -> None:
    assert trusting.runtime_version().lstrip("v").startswith(runtime.version.lstrip("v"))
    image = f"{registry.host}/{IMAGE}"
    result = trusting.pull(image, registry.credentials)
    assert result.returncode == 0, _failure(result, trusting)
    assert trusting.repo_digests(image) == [f"{registry.host}/airlock/probe@{pushed}"]
    # 1.6 logs this and pulls with its defaults when hosts.toml has no [host] table.
    assert "failed to decode hosts.toml" not in trusting.log.read_text()


@pytest.mark.parametrize("creds", [None, "puller:wrong-password"], ids=["none", "wrong"])
def test_pull_without_valid_credentials_gets_401(
    trusting: Node, runtime: Runtime, registry: Registry, pushed: str, creds: str | None
) -> None:
    result = trusting.pull(f"{registry.host}/{IMAGE}", creds)
    seen = _failure(result, trusting)
    assert result.returncode != 0, seen
    # TLS passed (the CA verified); the registry refused. 2.x words a 401 without any
    # credentials as "authorization failed: no basic auth credentials".
    assert re.search(r"401 Unauthorized|authorization failed", result.stderr), seen
    assert not re.search(r"x509|certificate", result.stderr), seen


def test_pull_without_the_ca_fails_verification(
    runtime: Runtime, crictl: Path, registry: Registry, pushed: str
) -> None:
    """The same registry written as public (no ca_file): hosts.toml names the https server and
    no CA, so containerd verifies with the system CAs and refuses the registry's certificate."""
    with node(runtime, crictl, [{"host": registry.host, "public": True}]) as untrusting:
        result = untrusting.pull(f"{registry.host}/{IMAGE}", registry.credentials)
        seen = _failure(result, untrusting)
        assert result.returncode != 0, seen
        assert "x509: certificate signed by unknown authority" in result.stderr, seen


MIRRORED = "registry.k8s.io/airlock/probe:1"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry without authentication, as the registry role's read-only mirror serves the
    bundle's images (roles/registry/tasks/distribution/mirror.yml)."""
    with serve(tmp_path_factory.mktemp("mirror")) as served:
        yield served


def test_pull_by_upstream_name_through_the_mirror(
    runtime: Runtime, crictl: Path, mirror: Registry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An image referenced by its upstream name (registry.k8s.io/...) comes from the mirror,
    which keeps it under the upstream registry's name (override_path), TLS verified with the
    mirror's CA and no credentials, with the digest pushed: what nodes do with
    airlock_image_source: registry (roles/registry/tasks/trust.yml)."""
    work = tmp_path_factory.mktemp("mirrored")
    (work / "hello").write_text("airlock mirror test\n")
    archive = work / "probe.oci.tar"
    layer = [oci.ImageFile(work / "hello", "/hello", 0o644)]
    oci.write_oci_archive(oci.ImageSpec(MIRRORED, host_arch(), [layer]), archive)
    digest = push(mirror, archive, MIRRORED)
    entry = {
        "host": "registry.k8s.io",
        "server": "https://registry.k8s.io",
        "mirrors": [f"https://{mirror.host}/v2/registry.k8s.io"],
        "override_path": True,
        "ca_file": str(mirror.ca),
    }
    with node(runtime, crictl, [entry]) as mirrored:
        result = mirrored.pull(MIRRORED)
        assert result.returncode == 0, _failure(result, mirrored)
        assert mirrored.repo_digests(MIRRORED) == [f"registry.k8s.io/airlock/probe@{digest}"]
        assert "failed to decode hosts.toml" not in mirrored.log.read_text()


# A registry of each shape the role accepts: a private one with its CA, one whose server is
# another URL than its name with a mirror, and a public one with a mirror.
SHAPES: list[dict[str, Any]] = [
    {"host": "harbor.example.internal"},
    {
        "host": "registry.example.internal:5000",
        "server": "https://registry-1.example.internal:5443",
        "mirrors": ["https://mirror.example.internal"],
        "capabilities": ["pull", "resolve"],
    },
    {"host": "registry.k8s.io", "public": True, "mirrors": ["https://harbor.example.internal"]},
]


def test_no_file_written_for_registries_turns_verification_off(
    runtime: Runtime, registry: Registry
) -> None:
    """Every hosts.toml has an https [host] table for its server (containerd 1.6 and 1.7.0
    ignore a file without one), each table has the CA when the registry has one, and no file
    the role writes (config.toml, hosts.toml, crictl.yaml) says skip_verify, insecure or
    plain-http."""
    registries = [
        {**shape, "ca_file": str(registry.ca)} if not shape.get("public") else shape
        for shape in SHAPES
    ]
    with short_dir() as base:
        etc = render(base, runtime, registries)
        for entry in registries:
            directory = etc / "certs.d" / entry["host"]
            hosts = tomllib.loads((directory / "hosts.toml").read_text())
            server = entry.get("server", f"https://{entry['host']}")
            assert hosts["server"] == server
            assert set(hosts["host"]) == {*entry.get("mirrors", []), server}
            for url, table in hosts["host"].items():
                assert url.startswith("https://")
                if entry.get("public"):
                    assert "ca" not in table
                    assert not (directory / "ca.crt").exists()
                else:
                    assert table["ca"] == str(directory / "ca.crt")
                    assert (directory / "ca.crt").read_bytes() == registry.ca.read_bytes()
        written = [p for p in etc.rglob("*") if p.is_file() and p.suffix != ".crt"]
        assert {p.name for p in written} == {"config.toml", "crictl.yaml", "hosts.toml"}
        for path in written:
            found = UNVERIFIED.findall(path.read_text())
            assert not found, f"{path.relative_to(etc)} says {found}"
