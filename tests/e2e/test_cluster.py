"""What a user expects of a deployed cluster, asserted on the real thing.

Order matters: the idempotent re-deploy runs before the first control-plane host is
stopped (a deploy needs every host), and the failover test comes last.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import LAB, TOOLBOX, Cluster, deploy

pytestmark = pytest.mark.e2e
NAMESPACE = "e2e"


def _wait(what: str, probe, timeout: float = 180, interval: float = 3) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def _pod(name: str, node: str | None, command: list[str], labels: dict | None = None) -> dict:
    spec: dict = {
        "containers": [
            {
                "name": name,
                "image": TOOLBOX,
                "imagePullPolicy": "Never",
                "command": command,
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {}},
        "spec": spec,
    }


def _running(cluster: Cluster, name: str) -> dict | None:
    pod = cluster.json("-n", NAMESPACE, "get", "pod", name)
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )
    return pod if pod["status"].get("phase") == "Running" and ready else None


def test_all_five_nodes_are_ready(cluster: Cluster) -> None:
    nodes = cluster.json("get", "nodes")["items"]
    ready = {
        n["metadata"]["name"]: any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
        for n in nodes
    }
    assert ready == {"m1": True, "m2": True, "m3": True, "w1": True, "w2": True}
    versions = {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes}
    assert versions == {"v1.34.4"}
    # The runtime is the bundle's containerd (the version production's manifest pins), not
    # a distribution package.
    runtimes = {n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in nodes}
    assert runtimes == {"containerd://2.2.1"}


def test_every_system_pod_runs(cluster: Cluster) -> None:
    for namespace in ("kube-system", "kube-flannel"):
        pods = cluster.json("-n", namespace, "get", "pods")["items"]
        assert pods, f"no pods in {namespace}"
        not_running = [
            p["metadata"]["name"]
            for p in pods
            if p["status"].get("phase") != "Running"
            or not all(s.get("ready") for s in p["status"].get("containerStatuses", []))
        ]
        assert not_running == [], f"{namespace}: not running/ready: {not_running}"
    names = " ".join(
        p["metadata"]["name"] for p in cluster.json("-n", "kube-system", "get", "pods")["items"]
    )
    for component in ("kube-apiserver-m", "coredns-", "kube-proxy-", "kube-scheduler-m"):
        assert component in names


def test_api_answers_through_the_vip_with_a_verified_certificate(cluster: Cluster) -> None:
    config = cluster.json("config", "view", "--raw")
    server = config["clusters"][0]["cluster"]["server"]
    assert server == f"https://{cluster.vip}:8443"
    assert "insecure-skip-tls-verify" not in config["clusters"][0]["cluster"]
    assert cluster.kubectl_run("get", "--raw", "/readyz").stdout.strip() == "ok"
    assert oct(cluster.kubeconfig.stat().st_mode & 0o777) == "0o600"


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> dict:
    """A web server pod on w2 behind a Service, and a client pod on w1."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    serve = (
        "/bin/busybox mkdir -p /www && /bin/busybox hostname > /www/index.html"
        " && exec /bin/busybox httpd -f -p 8080 -h /www"
    )
    cluster.apply(_pod("web", "w2", ["/bin/busybox", "sh", "-c", serve], {"app": "web"}))
    cluster.apply(_pod("client", "w1", ["/bin/busybox", "sleep", "3600"]))
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    server = _wait("web pod running on w2", lambda: _running(cluster, "web"))
    _wait("client pod running on w1", lambda: _running(cluster, "client"))
    service = cluster.json("-n", NAMESPACE, "get", "service", "web")
    return {"pod_ip": server["status"]["podIP"], "service_ip": service["spec"]["clusterIP"]}


def _from_client(cluster: Cluster, *command: str) -> subprocess.CompletedProcess:
    return cluster.kubectl_run(
        "-n", NAMESPACE, "exec", "client", "--", "/bin/busybox", *command, check=False
    )


def _http_get(cluster: Cluster, host: str, port: int) -> str:
    """GET / from the client pod with busybox nc (the static busybox's wget segfaults)."""
    request = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | /bin/busybox nc -w 5 {host} {port}'
    return _from_client(cluster, "sh", "-c", request).stdout


def test_a_pod_on_one_worker_reaches_a_pod_on_the_other_by_pod_ip(
    cluster: Cluster, web: dict
) -> None:
    out = _wait(
        "client on w1 -> web pod on w2",
        lambda: _http_get(cluster, web["pod_ip"], 8080),
        timeout=60,
    )
    assert "200 OK" in str(out) and str(out).rstrip().endswith("web")


def test_a_service_resolves_by_its_dns_name_and_answers(cluster: Cluster, web: dict) -> None:
    name = f"web.{NAMESPACE}.svc.cluster.local"
    lookup = _wait(
        "nslookup through CoreDNS",
        lambda: (p := _from_client(cluster, "nslookup", name)).returncode == 0 and p.stdout,
        timeout=60,
    )
    assert web["service_ip"] in str(lookup)
    body = _http_get(cluster, f"web.{NAMESPACE}", 80)
    assert "200 OK" in body and body.rstrip().endswith("web")


def test_a_second_deploy_changes_nothing(cluster: Cluster) -> None:
    _, summary, elapsed = deploy()
    print(f"\nno-op re-deploy: {elapsed:.0f}s")
    changed = {host: s["changed"] for host, s in summary["stats"].items() if s["changed"]}
    assert changed == {}, f"hosts that changed on the second deploy: {changed}"


def test_the_api_survives_the_first_control_plane_host(cluster: Cluster) -> None:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".airlock" / "containers.conf"))
    subprocess.run(["podman", "stop", "-t", "5", f"airlock-{LAB}-m1"], check=True, env=env)
    try:
        _wait(
            "API through the VIP with m1 stopped",
            lambda: (
                cluster.kubectl_run(
                    "get", "--raw", "/readyz", check=False, timeout=15
                ).stdout.strip()
                == "ok"
            ),
            timeout=90,
        )
        cluster.apply(_pod("after-failover", None, ["/bin/busybox", "sleep", "3600"]))
        pod = _wait(
            "a new pod scheduled and running without m1",
            lambda: _running(cluster, "after-failover"),
            timeout=180,
        )
        assert pod["spec"]["nodeName"] in ("w1", "w2")
    finally:
        subprocess.run(["podman", "start", f"airlock-{LAB}-m1"], check=False, env=env)
