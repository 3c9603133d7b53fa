"""The registry on the e2e lab (`lab up --registry m3`), as a user meets it (#17).

`airlock deploy` ran the registry stage: Debian's docker-registry on m3 with a certificate
from the cluster CA and htpasswd users, and every node's trust in it (containerd's certs.d,
the OS trust store, the pull secret in namespace default). Here, on the real cluster:

- the registry's chain verifies from every node with the OS trust store alone (curl, no
  --cacert), and no rendered file on a node turns verification off;
- a pull without credentials gets 401, from curl and from containerd (which says
  "authorization failed: no basic auth credentials");
- a user's image pushed from the controller with skopeo (TLS verified with the cluster CA)
  is pulled by a pod on each worker through the `airlock-registry-pull` imagePullSecret;
- a node whose copies of the CA are removed (certs.d and the OS trust store; containerd
  restarted, as it reads the OS store only at start) fails with containerd's x509 error,
  and the next deploy of the registry stage gives them back.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e.conftest import LAB, Cluster, deploy

REGISTRY_HOST = "m3"
PORT = 5000
NODES = ("m1", "m2", "m3", "w1", "w2")
WORKERS = ("w1", "w2")
IMAGE_PATH = "e2e/app:1"
SECRET = "airlock-registry-pull"
CERTS_D = "/etc/containerd/certs.d"
ANCHOR = "/usr/local/share/ca-certificates/airlock-registry-ca.crt"


def _exec(host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    proc = subprocess.run(
        ["podman", "exec", f"airlock-{LAB}-{host}", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"{host}: {' '.join(argv)}: {proc.stderr or proc.stdout}"
    return proc


def _wait(what: str, probe, timeout: float = 180, interval: float = 3) -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def _password(cluster: Cluster, user: str) -> str:
    path = cluster.inventory / ".credentials" / "registry" / f"{user}.password"
    return path.read_text().strip()


def _registry_ip(cluster: Cluster) -> str:
    hosts = yaml.safe_load((cluster.inventory / "hosts.yml").read_text())["all"]["hosts"]
    return hosts[REGISTRY_HOST]["ip"]


@pytest.fixture(scope="module")
def registry(cluster: Cluster) -> str:
    """The registry's name:port as nodes use it (its inventory hostname, in /etc/hosts)."""
    return f"{REGISTRY_HOST}:{PORT}"


@pytest.fixture(scope="module")
def pushed(cluster: Cluster, registry: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The e2e toolbox image, pushed by the controller with skopeo as the admin user, with the
    cluster CA as the only trusted CA; returns the image reference nodes pull."""
    work = tmp_path_factory.mktemp("push")
    certs = work / "certs"
    certs.mkdir()
    ca = cluster.inventory / ".credentials" / "kubernetes" / "ca.crt"
    (certs / "ca.crt").write_bytes(ca.read_bytes())
    ip = _registry_ip(cluster)
    auth = work / "auth.json"
    token = base64.b64encode(f"admin:{_password(cluster, 'admin')}".encode()).decode()
    auth.write_text(json.dumps({"auths": {f"{ip}:{PORT}": {"auth": token}}}))
    auth.chmod(0o600)
    archive = ROOT / ".airlock" / "cache" / "toolbox.oci.tar"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-cert-dir",
            str(certs),
            "--authfile",
            str(auth),
            f"oci-archive:{archive}",
            f"docker://{ip}:{PORT}/{IMAGE_PATH}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return f"{registry}/{IMAGE_PATH}"


def _curl_v2(node: str, registry: str, ip: str) -> str:
    """GET /v2/ from `node` by the registry's name, with the OS trust store alone (no
    --cacert); the HTTP status. The name is pinned to the registry's address: podman rewrites
    a lab host's /etc/hosts when the host restarts (test_cluster stops m1), and name
    resolution is not what this checks."""
    host, port = registry.split(":")
    return _exec(
        node, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
        "--resolve", f"{host}:{port}:{ip}", f"https://{registry}/v2/",
    ).stdout  # fmt: skip


def test_the_registry_verifies_from_every_node_with_the_os_trust_store(
    cluster: Cluster, registry: str
) -> None:
    ip = _registry_ip(cluster)
    for node in NODES:
        # 401: TLS verified with the OS trust store, then the registry asks for a password.
        code = _curl_v2(node, registry, ip)
        assert code == "401", f"{node}: GET https://{registry}/v2/ answered {code}"
        hosts_toml = _exec(node, "cat", f"{CERTS_D}/{registry}/hosts.toml").stdout
        assert f'ca = "{CERTS_D}/{registry}/ca.crt"' in hosts_toml, hosts_toml
        found = _exec(
            node, "grep", "-rilE", "skip_verify|insecure", CERTS_D, "/etc/containerd", check=False
        )
        assert found.returncode == 1 and not found.stdout, f"{node}: {found.stdout}"


def test_a_pull_without_credentials_gets_401(pushed: str) -> None:
    proc = _exec("w1", "crictl", "pull", pushed, check=False)
    assert proc.returncode != 0
    # containerd's words for the registry's 401 to a request without credentials.
    assert "authorization failed: no basic auth credentials" in proc.stderr, proc.stderr


def test_a_pod_on_each_worker_pulls_a_user_image_with_the_pull_secret(
    cluster: Cluster, pushed: str
) -> None:
    for worker in WORKERS:
        name = f"registry-pull-{worker}"
        cluster.kubectl_run("delete", "pod", name, "--ignore-not-found", "--wait=true")
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "nodeName": worker,
                    "imagePullSecrets": [{"name": SECRET}],
                    "containers": [
                        {
                            "name": "app",
                            "image": pushed,
                            "imagePullPolicy": "Always",
                            "command": ["/bin/busybox", "sleep", "3600"],
                        }
                    ],
                    "terminationGracePeriodSeconds": 1,
                },
            }
        )
    for worker in WORKERS:
        name = f"registry-pull-{worker}"
        pod = _wait(
            f"pod {name} running from {pushed}",
            lambda name=name: (
                p
                if (p := cluster.json("get", "pod", name))["status"].get("phase") == "Running"
                else None
            ),
        )
        assert pod["spec"]["nodeName"] == worker
        status = pod["status"]["containerStatuses"][0]
        assert status["imageID"].startswith(f"{pushed.rsplit(':', 1)[0]}@sha256:"), status
    for worker in WORKERS:
        cluster.kubectl_run("delete", "pod", f"registry-pull-{worker}", "--wait=false")


def test_a_node_without_the_ca_fails_with_x509_until_the_next_deploy(
    cluster: Cluster, registry: str, pushed: str
) -> None:
    creds = f"pull:{_password(cluster, 'pull')}"
    _exec("w2", "rm", "-rf", f"{CERTS_D}/{registry}", ANCHOR)
    _exec("w2", "update-ca-certificates", "--fresh")
    # containerd reads the OS trust store once, at start (Go caches the system pool); it
    # reads certs.d on every pull. Restarted (as a reboot would), it has neither.
    _exec("w2", "systemctl", "restart", "containerd")
    _wait(
        "containerd on w2 answering",
        lambda: _exec("w2", "crictl", "info", check=False).returncode == 0,
    )
    broken = _exec("w2", "crictl", "pull", "--creds", creds, pushed, check=False)
    assert broken.returncode != 0
    assert "x509: certificate signed by unknown authority" in broken.stderr + broken.stdout, (
        broken.stderr + broken.stdout
    )
    _, summary, _ = deploy("--stage", "registry")
    assert summary["stats"]["w2"]["changed"], "the registry stage restored nothing on w2"
    _exec("w2", "crictl", "pull", "--creds", creds, pushed)
    assert _curl_v2("w2", registry, _registry_ip(cluster)) == "401"
