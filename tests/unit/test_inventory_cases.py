"""Broken inventories, one ordinary mistake each: `airlock check --static` refuses every
one with a one-line message (and FILE:LINE where the mistake is in a file), never a
traceback.

Each case copies inventories/example into tmp_path, applies one edit and runs the CLI
in-process. The example's lines referred to below: hosts.yml 10-15 are the hosts cp1..cp3,
node1..node3, 18 etcd, 21 kube_control_plane, 24 kube_node, 27 lb, 30 bundle_host;
group_vars/all/cluster.yml 6 cluster name, 12 host cidr, 15 VIP, 16 API port, 19 pod
cidr, 20 service cidr.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from airlock.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
HOSTS = "hosts.yml"
CLUSTER = "group_vars/all/cluster.yml"
CONN = "group_vars/all/connection.yml"

Edit = Callable[[Path], None]


def write(rel: str, text: str | bytes) -> Edit:
    def edit(inv: Path) -> None:
        path = inv / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    return edit


def append(rel: str, text: str) -> Edit:
    def edit(inv: Path) -> None:
        with (inv / rel).open("a") as f:
            f.write(text)

    return edit


def replace(rel: str, old: str, new: str) -> Edit:
    def edit(inv: Path) -> None:
        path = inv / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    return edit


def both(*edits: Edit) -> Edit:
    def edit(inv: Path) -> None:
        for e in edits:
            e(inv)

    return edit


def setting(name: str, value: str) -> Edit:
    """Set a cluster setting in group_vars/all/cluster.yml (replacing it when present)."""

    def edit(inv: Path) -> None:
        path = inv / CLUSTER
        lines = path.read_text().splitlines()
        out = [ln for ln in lines if not ln.startswith(f"{name}:")]
        path.write_text("\n".join([*out, f"{name}: {value}"]) + "\n")

    return edit


SIX_HOSTS = "cp1: {}, cp2: {}, cp3: {}"

# id, edit, every string the output must hold
CASES: list[tuple[str, Edit, list[str]]] = [
    # --- files that cannot be read (item 1) --------------------------------------------
    (
        "vars yaml syntax",
        write("group_vars/all/x.yml", "a: [1, 2\nb: 3\n"),
        ["x.yml:", "YAML syntax error"],
    ),
    (
        "vars tab",
        write("group_vars/all/x.yml", "airlock_cni:\n\tflannel\n"),
        ["x.yml:2:", "never tabs"],
    ),
    (
        "vars not utf-8",
        write("group_vars/all/x.yml", b"# ok\nairlock_cluster_name: caf\xe9\n"),
        ["x.yml:2:", "not UTF-8"],
    ),
    (
        "vars is a list",
        write("group_vars/all/x.yml", "- airlock_cni: flannel\n"),
        ["x.yml:1:", "holds a list, not a mapping"],
    ),
    (
        "vars is a string",
        write("group_vars/all/x.yml", "just text\n"),
        ["x.yml:1:", "holds a string"],
    ),
    (
        "host_vars syntax",
        write("host_vars/cp1.yml", "ip: 10.20.0.11\n  x: [\n"),
        ["host_vars/cp1.yml:", "YAML syntax error"],
    ),
    (
        "host_vars is a list",
        write("host_vars/cp1.yml", "- ip\n"),
        ["host_vars/cp1.yml:1:", "not a mapping"],
    ),
    (
        "host_vars two documents",
        write("host_vars/cp1.yml", "a: 1\n---\nb: 2\n"),
        ["host_vars/cp1.yml:", "one YAML document"],
    ),
    (
        "hosts.yml syntax",
        replace(HOSTS, "  children:\n", "  children: [\n"),
        ["hosts.yml:", "YAML syntax error"],
    ),
    ("hosts.yml tab", replace(HOSTS, "    cp2:", "\tcp2:"), ["hosts.yml:11:", "never tabs"]),
    (
        "hosts.yml is a list",
        write(HOSTS, "- cp1\n- cp2\n"),
        ["hosts.yml:1:", "not a mapping of groups"],
    ),
    (
        "hosts.yml not utf-8",
        write(HOSTS, b"all:\n  hosts:\n    cp\xff1: {}\n"),
        ["hosts.yml:3:", "not UTF-8"],
    ),
    (
        "unknown yaml tag",
        write("group_vars/all/x.yml", "a: !secret 1\n"),
        ["x.yml:1:", "YAML error"],
    ),
    ("empty inventory", write(HOSTS, "---\n"), ["no hosts or groups"]),
    (
        "variable name invalid",
        append(CLUSTER, "airlock-cni: flannel\n"),
        ["cluster.yml:24:", "not a valid variable name"],
    ),
    (
        "vars file shadowed by a directory",
        write("group_vars/all.yml", "airlock_api_port: 9443\n"),
        ["group_vars/all.yml:1:", "is never read: Ansible reads group_vars/all/ instead"],
    ),
    # --- shapes and duplicates ----------------------------------------------------------
    (
        "group is a list",
        replace(
            HOSTS,
            "    kube_node:\n      hosts: {node1: {}, node2: {}, node3: {}}",
            "    kube_node: [node1, node2, node3]",
        ),
        ["hosts.yml:24:", "group kube_node", "is a list, not a mapping", "hosts: {node1: {}"],
    ),
    (
        "group hosts a list",
        replace(HOSTS, "hosts: {node1: {}, node2: {}, node3: {}}", "hosts: [node1, node2, node3]"),
        ["hosts.yml:25:", "its hosts are a list", "hosts: {node1: {}, node2: {}}"],
    ),
    (
        "group key typo",
        replace(
            HOSTS,
            "      hosts: {node1: {}, node2: {}, node3: {}}",
            "      host: {node1: {}, node2: {}, node3: {}}",
        ),
        ["hosts.yml:25:", "has a key `host`", "did you mean `hosts`?"],
    ),
    (
        "children a list",
        replace(
            HOSTS,
            "    etcd:\n      hosts:",
            "    etcd:\n      children: [a]\n      hosts:",
        ),
        ["its children are a list"],
    ),
    (
        "group vars a list",
        replace(HOSTS, "    etcd:\n", "    etcd:\n      vars: [a]\n"),
        ["hosts.yml:19:", "its vars are a list"],
    ),
    (
        "duplicate setting key",
        append(CLUSTER, "airlock_api_vip: 10.20.0.101\n"),
        ["cluster.yml:24:", "`airlock_api_vip` is given twice", "first at line 15"],
    ),
    (
        "duplicate host key",
        replace(
            HOSTS,
            "    node3: {ip: 10.20.0.23, ansible_host: 10.20.0.23}\n",
            "    node3: {ip: 10.20.0.23, ansible_host: 10.20.0.23}\n    node1: {ip: 10.20.0.24}\n",
        ),
        ["hosts.yml:16:", "`node1` is given twice"],
    ),
    (
        "duplicate key in flow map",
        replace(HOSTS, "cp1: {ip: 10.20.0.11,", "cp1: {ip: 10.20.0.11, ip: 10.20.0.19,"),
        ["hosts.yml:10:", "`ip` is given twice"],
    ),
    (
        "children loop",
        replace(HOSTS, "    etcd:\n", "    etcd:\n      children: {lb: {children: {etcd: {}}}}\n"),
        ["its own ancestor"],
    ),
    (
        "group its own child",
        replace(HOSTS, "    etcd:\n", "    etcd:\n      children: {etcd: {}}\n"),
        ["hosts.yml:19:", "group etcd: is listed among its own children"],
    ),
    (
        "bad value given twice",
        append(CLUSTER, "airlock_api_port: eighty\n"),
        ["cluster.yml:24: setting airlock_api_port: 'eighty' is not a whole number"],
    ),
    (
        "control character in a name",
        replace(HOSTS, "    etcd:\n", '    "etc\\x1ed":\n      hosts: {cp1: {}}\n    etcd:\n'),
        ["group etc\\x1ed: is not a group airlock knows"],
    ),
    # --- names ----------------------------------------------------------------------------
    (
        "group typo",
        replace(HOSTS, "    kube_control_plane:", "    kube_contol_plane:"),
        ["hosts.yml:21:", "group kube_contol_plane", "did you mean `kube_control_plane`?"],
    ),
    (
        "setting typo",
        append(CLUSTER, "airlock_api_vipp: 10.20.0.100\n"),
        ["cluster.yml:24:", "setting airlock_api_vipp", "did you mean `airlock_api_vip`?"],
    ),
    (
        "setting typo in host_vars",
        write("host_vars/cp1.yml", "etcd_client_prot: 2379\n"),
        ["host_vars/cp1.yml:1:", "did you mean `etcd_client_port`?"],
    ),
    (
        "ansible var typo",
        write("host_vars/cp1.yml", "ansible_hsot: 10.20.0.11\n"),
        ["host_vars/cp1.yml:1:", "ansible_hsot", "did you mean `ansible_host`?"],
    ),
    (
        "ansible var typo in group",
        append(CONN, "ansible_becom: true\n"),
        ["connection.yml:", "did you mean `ansible_become`?"],
    ),
    (
        "ansible var typo inline",
        replace(
            HOSTS, "cp2: {ip: 10.20.0.12, ansible_host:", "cp2: {ip: 10.20.0.12, ansible_hots:"
        ),
        ["hosts.yml:11:", "did you mean `ansible_host`?"],
    ),
    (
        "group_vars for no group",
        write("group_vars/kube_nodes.yml", "airlock_cni: flannel\n"),
        ["group_vars/kube_nodes.yml:1:", "no such group", "did you mean `kube_node`?"],
    ),
    (
        "group_vars dir for no group",
        write("group_vars/workers/a.yml", "x: 1\n"),
        ["group_vars/workers/a.yml:1:", "no such group"],
    ),
    (
        "host_vars for no host",
        write("host_vars/cp4.yml", "ip: 10.20.0.14\n"),
        ["host_vars/cp4.yml:1:", "no such host", "did you mean `cp"],
    ),
    (
        "invalid node name",
        replace(HOSTS, "    node3: {ip", "    Node_3: {ip"),
        ["host Node_3", "not a valid node name"],
    ),
    # --- types, choices, ranges --------------------------------------------------------------
    (
        "port not a number",
        setting("airlock_api_port", "eighty"),
        ["setting airlock_api_port", "'eighty' is not a whole number"],
    ),
    (
        "port out of range",
        setting("airlock_api_port", "70000"),
        ["cluster.yml:", "70000 is outside 1-65535"],
    ),
    ("port zero", setting("airlock_apiserver_port", "0"), ["0 is outside 1-65535"]),
    (
        "etcd port out of range",
        write("group_vars/etcd.yml", "etcd_client_port: 123456\n"),
        ["group_vars/etcd.yml:1:", "outside 1-65535"],
    ),
    ("port a list", setting("airlock_api_port", "[8443]"), ["is a list, not a number"]),
    # --- kubelet configuration fields (airlock/data/kubelet-config-fields.json) ------------
    (
        "kubelet field misspelt",
        setting("kubernetes_kubelet_config_overrides", "{evictionHrad: {memory.available: 1Gi}}"),
        [
            "cluster.yml:",
            "has `evictionHrad`, which is not a KubeletConfiguration field of kubelet 1.37",
            "did you mean `evictionHard`?",
        ],
    ),
    (
        "kubelet field of the wrong kind",
        setting("kubernetes_kubelet_config_overrides", "{maxPods: '110', serializeImagePulls: 1}"),
        ["its `maxPods` is string '110', and the kubelet reads a number"],
    ),
    (
        "kubelet field airlock sets",
        setting("kubernetes_kubelet_config_overrides", "{tlsCertFile: /etc/my.crt}"),
        ["has `tlsCertFile`, which airlock's drop-in sets itself"],
    ),
    (
        "kubelet field newer than the release deployed",
        both(
            setting("airlock_kube_version", '"1.35.4"'),
            setting("kubernetes_kubelet_config_overrides", "{memoryReservationPolicy: None}"),
        ),
        ["has `memoryReservationPolicy`", "not a KubeletConfiguration field of kubelet 1.35"],
    ),
    (
        "cni unknown",
        setting("airlock_cni", "calico"),
        ["airlock_cni", "'calico' is not one of flannel"],
    ),
    (
        "proxy mode unknown",
        setting("airlock_kube_proxy_mode", "ipvss"),
        ["'ipvss' is not one of iptables, ipvs", "did you mean `ipvs`?"],
    ),
    (
        "install source unknown",
        setting("airlock_install_source", "internet"),
        ["'internet' is not one of bundle, distro"],
    ),
    (
        "flannel backend unknown",
        setting("airlock_flannel_backend", "wireguard"),
        ["is not one of vxlan, host-gw"],
    ),
    (
        "extra vars not a list",
        setting("airlock_extra_vars", "1"),
        ["airlock_extra_vars", "is a number, not a list"],
    ),
    (
        "extra groups a mapping",
        setting("airlock_extra_groups", "{a: 1}"),
        ["is a mapping, not a list"],
    ),
    ("bool not a bool", setting("airlock_disable_swap", "maybe"), ["'maybe' is not true or false"]),
    (
        "version a float",
        setting("airlock_kube_version", "1.30"),
        ["read as the number 1.3", "quote it"],
    ),
    ("cluster name a list", setting("airlock_cluster_name", "[a, b]"), ["is a list, not a string"]),
    ("min free negative", setting("airlock_min_free_gb", "-5"), ["-5 is outside 0-1000000"]),
    (
        "vrid out of range",
        write("group_vars/lb.yml", "loadbalancer_virtual_router_id: 300\n"),
        ["group_vars/lb.yml:1:", "300 is outside 1-255"],
    ),
    # --- hosts disagree ----------------------------------------------------------------------
    (
        "vip overridden per group",
        write("group_vars/kube_node.yml", "airlock_api_vip: 10.20.0.9\n"),
        [
            "group_vars/kube_node.yml:1 sets 10.20.0.9 but "
            "group_vars/all/cluster.yml:15 sets 10.20.0.100"
        ],
    ),
    (
        "port overridden per host",
        write("host_vars/cp2.yml", "airlock_api_port: 9443\n"),
        ["host_vars/cp2.yml:1 sets 9443 but group_vars/all/cluster.yml:16 sets 8443"],
    ),
    (
        "setting only on one host",
        replace(
            HOSTS,
            "cp3: {ip: 10.20.0.13,",
            "cp3: {airlock_cni_x: 1, airlock_kube_proxy_mode: ipvs, ip: 10.20.0.13,",
        ),
        [
            "hosts.yml:12 sets ipvs but the default in "
            "roles/airlock/meta/argument_specs.yml sets iptables"
        ],
    ),
    # --- addresses --------------------------------------------------------------------------
    (
        "ip 0.0.0.0",
        replace(HOSTS, "{ip: 10.20.0.21,", "{ip: 0.0.0.0,"),
        ["hosts.yml:13:", "host node1", "unspecified address"],
    ),
    (
        "ip loopback",
        replace(HOSTS, "{ip: 10.20.0.21,", "{ip: 127.0.0.1,"),
        ["hosts.yml:13:", "loopback"],
    ),
    ("ip multicast", replace(HOSTS, "{ip: 10.20.0.21,", "{ip: 224.0.0.5,"), ["multicast"]),
    (
        "ip is the network address",
        replace(HOSTS, "{ip: 10.20.0.21,", "{ip: 10.20.0.0,"),
        ["network address of airlock_host_cidr"],
    ),
    (
        "ip not an address",
        replace(HOSTS, "{ip: 10.20.0.21,", "{ip: 10.20.0.300,"),
        ["'10.20.0.300' is not an IPv4 address"],
    ),
    (
        "ip missing",
        replace(HOSTS, "node1: {ip: 10.20.0.21, ", "node1: {"),
        ["hosts.yml:13:", "host node1: has no `ip`"],
    ),
    (
        "two hosts one ip",
        replace(HOSTS, "{ip: 10.20.0.22,", "{ip: 10.20.0.21,"),
        ["hosts.yml:14:", "the same as node1"],
    ),
    (
        "ip template unresolved",
        replace(HOSTS, "{ip: 10.20.0.21,", "{ip: '{{ node1_address }}',"),
        ["hosts.yml:13:", "uses node1_address, which no inventory file defines"],
    ),
    (
        "ip template resolves to a duplicate",
        replace(
            HOSTS,
            "{ip: 10.20.0.22, ansible_host: 10.20.0.22}",
            "{ip: '{{ ansible_host }}', ansible_host: 10.20.0.21}",
        ),
        ["has ip 10.20.0.21, the same as node1"],
    ),
    ("vip 0.0.0.0", setting("airlock_api_vip", "0.0.0.0"), ["airlock_api_vip", "unspecified"]),
    ("vip loopback", setting("airlock_api_vip", "127.0.0.1"), ["loopback"]),
    (
        "vip is broadcast",
        setting("airlock_api_vip", "10.20.0.255"),
        ["broadcast address of airlock_host_cidr"],
    ),
    (
        "vip is network",
        setting("airlock_api_vip", "10.20.0.0"),
        ["network address of airlock_host_cidr"],
    ),
    (
        "vip in service network",
        both(setting("airlock_host_cidr", '""'), setting("airlock_api_vip", "10.96.0.20")),
        ["lies inside airlock_service_cidr 10.96.0.0/12"],
    ),
    ("vip is a host", setting("airlock_api_vip", "10.20.0.12"), ["is the ip of host cp2"]),
    (
        "vip outside host net",
        setting("airlock_api_vip", "10.30.0.1"),
        ["outside the hosts' network"],
    ),
    (
        "vip missing with 3 masters",
        setting("airlock_api_vip", '""'),
        ["is empty but kube_control_plane has 3 hosts"],
    ),
    (
        "vip not an address",
        setting("airlock_api_vip", "vip.example"),
        ["'vip.example' is not an IPv4 address"],
    ),
    # --- networks ---------------------------------------------------------------------------
    (
        "service network tiny",
        setting("airlock_service_cidr", "10.96.0.0/30"),
        ["cluster.yml:", "has only 4 addresses"],
    ),
    (
        "service network huge",
        setting("airlock_service_cidr", "10.0.0.0/8"),
        ["larger than kube-apiserver accepts"],
    ),
    (
        "pod network too small for nodes",
        setting("airlock_pod_cidr", "10.244.0.0/23"),
        ["gives 2 node subnets of /24 but the cluster has 6 nodes"],
    ),
    (
        "pod network smaller than a node",
        setting("airlock_pod_cidr", "10.244.0.0/25"),
        ["smaller than the /24 each node gets"],
    ),
    (
        "pod overlaps service",
        setting("airlock_pod_cidr", "10.96.0.0/16"),
        ["overlaps airlock_service_cidr"],
    ),
    (
        "pod overlaps hosts",
        setting("airlock_pod_cidr", "10.20.0.0/16"),
        ["overlaps the hosts' network"],
    ),
    (
        "cidr host bits",
        setting("airlock_pod_cidr", "10.244.1.0/16"),
        ["is not a valid network", "has host bits set"],
    ),
    # --- groups and ports ------------------------------------------------------------------
    (
        "four etcd members",
        replace(
            HOSTS,
            "etcd:\n      hosts: {cp1: {}, cp2: {}, cp3: {}}",
            "etcd:\n      hosts: {cp1: {}, cp2: {}, cp3: {}, node1: {}}",
        ),
        ["group etcd: has 4 members"],
    ),
    (
        "no control plane",
        replace(
            HOSTS,
            "kube_control_plane:\n      hosts: {cp1: {}, cp2: {}, cp3: {}}",
            "kube_control_plane:\n      hosts: {}",
        ),
        ["group kube_control_plane: has no host"],
    ),
    (
        "vip without lb",
        replace(HOSTS, "lb:\n      hosts: {cp1: {}, cp2: {}, cp3: {}}", "lb:\n      hosts: {}"),
        ["hosts.yml:27:", "group lb: has no host but airlock_api_vip is set"],
    ),
    (
        "bundle without bundle_host",
        replace(HOSTS, "bundle_host:\n      hosts: {cp1: {}}", "bundle_host:\n      hosts: {}"),
        ["group bundle_host: has no host but airlock_install_source is bundle"],
    ),
    (
        "harbor on a kubernetes node",
        replace(HOSTS, "registry:\n      hosts: {}", "registry:\n      hosts: {node3: {}}"),
        [
            "host node3: is a Kubernetes node and a Harbor registry host (registry_impl harbor)",
            "or set registry_impl: distribution",
        ],
    ),
    (
        "image source registry without registry hosts",
        setting("airlock_image_source", "registry"),
        [
            "group registry: has no host but airlock_image_source is registry",
            "or set airlock_image_source: import",
        ],
    ),
    (
        "image source registry with harbor",
        both(
            setting("airlock_image_source", "registry"),
            replace(HOSTS, "registry:\n      hosts: {}", "registry:\n      hosts: {reg1: {}}"),
        ),
        ["host reg1: runs registry_impl harbor but airlock_image_source is registry"],
    ),
    (
        "two ceph monitors",
        replace(HOSTS, "ceph:\n      hosts: {}", "ceph:\n      hosts: {node1: {}, node2: {}}"),
        ["group ceph: runs 2 monitors (node1, node2)", "run 1, 3 or 5"],
    ),
    (
        "ceph lab-file osd outside a lab",
        both(
            replace(HOSTS, "ceph:\n      hosts: {}", "ceph:\n      hosts: {node1: {}}"),
            write(
                "host_vars/node1.yml",
                "ceph_osd_devices:\n  - {mode: lab-file, path: /srv/osd0.img, size: 4G}\n",
            ),
        ),
        ["host node1: has an OSD of mode lab-file (/srv/osd0.img)", "ceph_allow_lab_osds: true"],
    ),
    (
        "api port equals apiserver port",
        setting("airlock_api_port", "6443"),
        ["setting airlock_api_port: 6443 equals airlock_apiserver_port on host cp1 (and 2 more)"],
    ),
    (
        "etcd port equals bundle port",
        write("group_vars/etcd.yml", "etcd_client_port: 8843\n"),
        ["8843 equals bundle_server_port on host cp1", "etcd (clients) and the bundle server"],
    ),
    (
        "apiserver on kubelet port",
        setting("airlock_apiserver_port", "10250"),
        ["10250 equals kubelet's fixed port"],
    ),
]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    return inv


def test_example_is_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--static", "-i", str(example)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_inventory_is_refused(
    example: Path, capsys: pytest.CaptureFixture[str], edit: Edit, expected: list[str]
) -> None:
    edit(example)
    rc = main(["check", "--static", "-i", str(example)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "Traceback" not in err
    problems = [ln.strip() for ln in err.splitlines() if ln.startswith("  ")]
    assert problems, err
    for text in expected:
        assert any(text in line for line in problems), f"{text!r} not in:\n{err}"


def test_deploy_refuses_the_same(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setting("airlock_cni", "calico")(example)
    assert main(["deploy", "-i", str(example)]) == 1
    err = capsys.readouterr().err
    assert "'calico' is not one of flannel" in err
    assert "nothing was changed" in err


def test_unexpected_error_is_one_line_with_a_log(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import airlock.check

    def boom(_: Path) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(airlock.check, "static_problems", boom)
    monkeypatch.setattr("airlock.paths.state_dir", lambda: example.parent)
    assert main(["check", "--static", "-i", str(example)]) == 70
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "internal error (RuntimeError: kaboom)" in err
    assert "Traceback" not in err
    logs = list((example.parent / "logs").glob("error-*.log"))
    assert len(logs) == 1
    assert "Traceback" in logs[0].read_text()
    assert main(["--debug", "check", "--static", "-i", str(example)]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_case_count() -> None:
    assert len(CASES) >= 60
