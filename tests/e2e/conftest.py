"""The end-to-end cluster: an --internal 3+2 lab (the registry on m3), the lab bundle,
`airlock deploy`.

Everything a user would run, in order: build (or reuse) the lab bundle, start the lab
with no route out, `airlock check`, `airlock deploy`. The cluster stays up for the
module's tests and is removed at the end (AIRLOCK_E2E_KEEP=1 keeps it for a look).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from airlock.lab.bundle import oci
from airlock.runner import summary_from_output
from tests.conftest import ROOT, lab_hosts, run_airlock

LAB = "e2e"
SUBNET = "10.77.16.0/24"
INVENTORY = ROOT / ".airlock" / "labs" / LAB / "inventory"
KUBECONFIG = INVENTORY / ".credentials" / "kubernetes" / "admin.conf"
WORKERS = ("w1", "w2")
TOOLBOX = "localhost/airlock-e2e/toolbox:1"


@dataclass
class Cluster:
    inventory: Path
    kubeconfig: Path
    kubectl: Path
    vip: str
    deploy_s: float
    deploy_summary: dict = field(default_factory=dict)

    def kubectl_run(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr or proc.stdout}")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl_run(*args, "-o", "json").stdout)

    def apply(self, manifest: dict) -> None:
        self.kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))


def deploy(*extra: str) -> tuple[subprocess.CompletedProcess, dict, float]:
    """`airlock deploy` on the e2e lab; returns the process, its summary.json and time."""
    started = time.monotonic()
    proc = run_airlock("deploy", "-i", str(INVENTORY), *extra, timeout=3600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"airlock deploy failed:\n{proc.stdout[-6000:]}\n{proc.stderr}"
    return proc, summary_from_output(proc.stdout), elapsed


def _bundle(kube_version: str | None = None) -> Path:
    """The lab bundle of one release (default: the lab profile's), built or reused."""
    from airlock.lab.bundle import lab_archive

    started = time.monotonic()
    release = ["--kube-version", kube_version] if kube_version else []
    proc = run_airlock("bundle", "build", "--profile", "lab", *release, timeout=4 * 3600)
    assert proc.returncode == 0, f"bundle build failed:\n{proc.stdout[-4000:]}\n{proc.stderr}"
    print(f"\nlab bundle {kube_version or ''} ready in {time.monotonic() - started:.0f}s")
    return lab_archive(kube_version)


def _program_from(bundle: Path, name: str, dest: Path) -> Path:
    """One of the bundle's own programs (kubectl, kubeadm), for the controller."""
    with tarfile.open(bundle) as tar:
        member = tar.getmember(f"bin/amd64/{name}")
        source = tar.extractfile(member)
        assert source is not None
        dest.write_bytes(source.read())
    dest.chmod(0o755)
    return dest


def _toolbox_archive(work: Path) -> Path:
    """A busybox image for the test pods, built here from Debian's busybox-static."""
    archive = work / "toolbox.oci.tar"
    if archive.exists():
        return archive
    subprocess.run(["apt-get", "download", "busybox-static"], cwd=work, check=True)
    deb = next(work.glob("busybox-static_*.deb"))
    tree = work / "busybox"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    spec = oci.ImageSpec(
        reference=TOOLBOX,
        arch="amd64",
        layers=[[oci.ImageFile(tree / "bin" / "busybox", "/bin/busybox")]],
        entrypoint=["/bin/busybox"],
    )
    oci.write_oci_archive(spec, archive)
    return archive


def _load_toolbox(archive: Path, lab: str = LAB, hosts: tuple[str, ...] = WORKERS) -> None:
    """Put the test image into the hosts' containerd (through podman, not the network),
    pinned."""
    for worker in hosts:
        container = f"airlock-{lab}-{worker}"
        env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
        subprocess.run(
            ["podman", "cp", str(archive), f"{container}:/root/toolbox.oci.tar"],
            check=True,
            env=env,
        )
        ctr = ["podman", "exec", container, "ctr", "-n", "k8s.io", "images"]
        # Pinned like the bundle's images: under disk pressure the kubelet would otherwise
        # delete it and the test's pods could not start again (ErrImageNeverPull, seen).
        for action in (
            ["import", "/root/toolbox.oci.tar"],
            ["label", TOOLBOX, "io.cri-containerd.pinned=pinned"],
        ):
            subprocess.run([*ctr, *action], check=True, capture_output=True, env=env)


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The lab bundle, built once or reused from the cache."""
    return _bundle()


@pytest.fixture(scope="session")
def bundle_tools(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundle's kubectl and kubeadm, unpacked for the controller."""
    work = tmp_path_factory.mktemp("tools")
    return {name: _program_from(bundle, name, work / name) for name in ("kubectl", "kubeadm")}


@pytest.fixture(scope="session")
def cluster(bundle_tools: dict[str, Path]) -> Iterator[Cluster]:
    up = ("--internal", "--masters", "3", "--workers", "2", "--registry", "m3", "--subnet", SUBNET)
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    with lab_hosts(LAB, *up, timeout=1800, keep=keep):
        run_airlock("check", "-i", str(INVENTORY), check=True, timeout=600)
        _, summary, elapsed = deploy()
        print(f"\nfull deploy from the bundle: {elapsed:.0f}s")
        lab_vars = yaml.safe_load((INVENTORY / "group_vars" / "all" / "lab.yml").read_text())
        result = Cluster(
            inventory=INVENTORY,
            kubeconfig=KUBECONFIG,
            kubectl=bundle_tools["kubectl"],
            vip=lab_vars["airlock_api_vip"],
            deploy_s=elapsed,
            deploy_summary=summary,
        )
        _load_toolbox(_toolbox_archive(ROOT / ".airlock" / "cache"))
        yield result
