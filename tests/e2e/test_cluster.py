"""What a user expects of a deployed cluster, asserted on the real thing.

Order matters: services killed hard must be back before the idempotent re-deploys (which
then also prove they came back unchanged; the first skips every stage whose hosts are as
the full deploy left them, `--full` runs every task), the re-deploys run before the first
control-plane host is stopped (a deploy needs every host), `airlock status` sees a healthy
cluster and then a stopped etcd member, and the failover test comes last.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from airlock.lab.bundle.profile import DEFAULT_RELEASE
from airlock.lab.inventory import LAB_EVICTION_GIB
from tests.conftest import ROOT, VENV_BIN, run_airlock
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
    assert versions == {DEFAULT_RELEASE}  # the lab profile's default release
    # The runtime is the bundle's containerd (the version production's manifest pins), not
    # a distribution package.
    runtimes = {n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in nodes}
    assert runtimes == {"containerd://2.2.1"}


def test_kubelets_run_the_lab_eviction_thresholds_and_no_node_is_under_pressure(
    cluster: Cluster,
) -> None:
    """The lab's kubelets count free disk in GiB (kubernetes_kubelet_config_overrides, set by
    the lab's inventory): on the machine's large shared disk their default percentages
    marked every node DiskPressure with tens of GiB free."""
    for node in ("m1", "w2"):
        config = json.loads(
            cluster.kubectl_run("get", "--raw", f"/api/v1/nodes/{node}/proxy/configz").stdout
        )["kubeletconfig"]
        assert config["evictionHard"]["imagefs.available"] == f"{LAB_EVICTION_GIB}Gi", node
        assert config["evictionHard"]["nodefs.available"] == f"{LAB_EVICTION_GIB}Gi", node
        # airlock's own fields of the same drop-in are still there.
        assert config["tlsCertFile"] == "/etc/kubernetes/serving/kubelet/tls.crt", node
    pressure = [
        (n["metadata"]["name"], c["type"])
        for n in cluster.json("get", "nodes")["items"]
        for c in n["status"]["conditions"]
        if c["type"].endswith("Pressure") and c["status"] == "True"
    ]
    assert pressure == []


def test_every_bundle_image_is_pinned_on_every_node(cluster: Cluster) -> None:
    """The kubelet's image garbage collection never removes a pinned image: on an air-gapped
    node a removed bundle image (an upgrade's target CoreDNS, say) cannot come back."""
    for host in ("m1", "m2", "m3", "w1", "w2"):
        images = json.loads(_on(host, "crictl", "images", "--output", "json"))["images"]
        bundle = images  # the tests' own image is pinned too (conftest._load_toolbox)
        assert bundle, f"{host}: no images"
        unpinned = [i["repoTags"] for i in bundle if not i.get("pinned")]
        assert unpinned == [], f"{host}: bundle images the kubelet may remove: {unpinned}"


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


def _on(host: str, *command: str) -> str:
    return run_airlock("lab", "ssh", "--name", LAB, host, "--", *command, check=True).stdout


def _unit_state(host: str, unit: str) -> tuple[str, int]:
    out = _on(host, "systemctl", "show", "-p", "ActiveState", "-p", "NRestarts", unit)
    props = dict(line.split("=", 1) for line in out.split())
    return props["ActiveState"], int(props["NRestarts"])


def _vip_holders() -> list[str]:
    argv = [str(VENV_BIN / "python"), str(ROOT / "benchmarks" / "vip_failover.py")]
    out = subprocess.run(
        [*argv, "--lab", LAB, "holders"], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)["holders"]


# Every service airlock installs, killed hard as a crash would (SIGKILL). `main`: only the
# daemon (containerd's shims and the pods they run live in its cgroup and must survive);
# `all`: every process of the unit.
CRASHES = [
    ("m2", "airlock-etcd", "main"),
    ("m2", "kubelet", "main"),
    ("m2", "containerd", "main"),
    ("m2", "haproxy", "all"),
    ("w1", "kubelet", "main"),
    ("w1", "containerd", "main"),
    ("m1", "nginx", "all"),
]


@pytest.mark.parametrize(("host", "unit", "whom"), CRASHES, ids=[f"{h}-{u}" for h, u, _ in CRASHES])
def test_a_service_killed_hard_comes_back_by_itself(
    cluster: Cluster, host: str, unit: str, whom: str
) -> None:
    state, restarts = _unit_state(host, unit)
    assert state == "active", f"{unit} on {host} is {state} before the kill"
    _on(host, "systemctl", "kill", f"--kill-whom={whom}", "--signal=SIGKILL", unit)
    _wait(
        f"{unit} on {host} restarted by systemd",
        lambda: (s := _unit_state(host, unit))[0] == "active" and s[1] > restarts,
        timeout=60,
        interval=1,
    )
    _wait(
        f"the API through the VIP after {unit} on {host} came back",
        lambda: (
            cluster.kubectl_run("get", "--raw", "/readyz", check=False, timeout=15).stdout.strip()
            == "ok"
        ),
        timeout=120,
    )


def test_keepalived_killed_on_the_vip_holder_leaves_exactly_one_holder(cluster: Cluster) -> None:
    _wait("one VIP holder", lambda: len(_vip_holders()) == 1)
    holder = _vip_holders()[0]
    _, restarts = _unit_state(holder, "keepalived")
    _on(holder, "systemctl", "kill", "--signal=SIGKILL", "keepalived")
    _wait(
        f"keepalived on {holder} restarted by systemd",
        lambda: (s := _unit_state(holder, "keepalived"))[0] == "active" and s[1] > restarts,
        timeout=30,
        interval=1,
    )
    # The restarted keepalived starts without the VIP and, being the preferred host, takes
    # it back from whoever took over meanwhile: the VIP moves (once or twice) and must
    # settle on exactly one host within seconds, never two for good (the crash used to
    # leave it on this host next to the new holder until someone restarted keepalived).
    samples: list[list[str]] = []

    def settled() -> bool:
        samples.append(_vip_holders())
        return len(samples) >= 3 and all(len(h) == 1 for h in samples[-3:])

    _wait("the VIP settled on exactly one host", settled, timeout=20, interval=1)
    print(f"\nVIP holders after keepalived on {holder} was killed, one sample a second: {samples}")
    assert cluster.kubectl_run("get", "--raw", "/readyz", timeout=15).stdout.strip() == "ok"


def _changed(summary: dict) -> dict[str, int]:
    return {host: s["changed"] for host, s in summary["stats"].items() if s["changed"]}


def test_a_second_deploy_changes_nothing(cluster: Cluster) -> None:
    _, summary, elapsed = deploy()
    gated = [p["name"] for p in summary["plays"] if p["skipped_by_gate"]]
    print(f"\nno-op re-deploy: {elapsed:.0f}s; stages skipped at their gate: {gated}")
    assert _changed(summary) == {}, f"hosts that changed on the second deploy: {_changed(summary)}"
    # Every host-level stage was recorded by the first deploy and is untouched since.
    assert {"External etcd cluster", "HA API endpoint (haproxy + keepalived)"} <= set(gated)


def test_every_task_of_every_stage_changes_nothing_either(cluster: Cluster) -> None:
    # The gate must not hide a task that changes something on each run: --full runs all.
    _, summary, elapsed = deploy("--full")
    print(f"\nno-op re-deploy with --full: {elapsed:.0f}s")
    assert not any(p["skipped_by_gate"] for p in summary["plays"])
    assert _changed(summary) == {}, f"hosts that changed with --full: {_changed(summary)}"


def test_a_file_edited_by_hand_is_put_back_by_its_stage_alone(cluster: Cluster) -> None:
    _on("m2", "sh", "-c", "echo '# edited by hand' >> /etc/haproxy/haproxy.cfg")
    _, summary, _ = deploy()
    assert "edited by hand" not in _on("m2", "cat", "/etc/haproxy/haproxy.cfg")
    ran = [p["name"] for p in summary["plays"] if p["tasks"] and not p["skipped_by_gate"]]
    assert "HA API endpoint (haproxy + keepalived)" in ran
    assert "External etcd cluster" not in ran, ran
    assert set(_changed(summary)) == {"m2"}, _changed(summary)


def test_an_object_deleted_from_the_cluster_is_put_back_by_its_stage_alone(
    cluster: Cluster,
) -> None:
    """The pod network's gate asks the API server for each object of flannel.yml (its
    probe): no file on a host changes when one is deleted."""
    before = cluster.json("get", "clusterrolebinding", "flannel")["metadata"]["uid"]
    cluster.kubectl_run("delete", "clusterrolebinding", "flannel")
    _, summary, _ = deploy()
    after = cluster.json("get", "clusterrolebinding", "flannel")["metadata"]["uid"]
    assert after != before
    ran = [p["name"] for p in summary["plays"] if p["tasks"] and not p["skipped_by_gate"]]
    assert "Pod network" in ran, ran
    assert "Kubernetes control plane and nodes" not in ran, ran
    assert "External etcd cluster" not in ran, ran


def test_status_and_kubectl_then_status_names_a_stopped_etcd_member(cluster: Cluster) -> None:
    healthy = run_airlock("status", "-i", str(cluster.inventory), timeout=300)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "Nodes (5/5 Ready)" in healthy.stdout
    assert f"VIP {cluster.vip}: held by " in healthy.stdout
    assert healthy.stdout.rstrip().endswith("healthy"), healthy.stdout
    nodes = run_airlock("kubectl", "-i", str(cluster.inventory), "get", "nodes", "-o", "name")
    assert nodes.returncode == 0, nodes.stderr
    assert len(nodes.stdout.split()) == 5, nodes.stdout
    _on("m2", "systemctl", "stop", "airlock-etcd")
    try:
        down = run_airlock("status", "-i", str(cluster.inventory), timeout=300)
    finally:
        _on("m2", "systemctl", "start", "airlock-etcd")
    assert down.returncode == 1, down.stdout + down.stderr
    assert "etcd member m2 is not healthy" in down.stdout, down.stdout
    assert "m2: airlock-etcd is inactive" in down.stdout, down.stdout
    print("\n" + down.stdout)
    _wait("etcd on m2 back", lambda: _unit_state("m2", "airlock-etcd")[0] == "active")


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
