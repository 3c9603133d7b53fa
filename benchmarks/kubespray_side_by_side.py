#!/usr/bin/env python3
"""kubespray's cluster.yml and airlock's deploy, side by side on identical fresh labs.

    .venv/bin/python benchmarks/kubespray_side_by_side.py --kubespray DIR
        [--only both|kubespray|airlock] [--keep] [--render-only OUT]

DIR is a kubespray checkout (not part of airlock; docs/kubespray-side-by-side.md says how to
get one). The script:
1. makes kubespray's own virtualenv, DIR/.venv-bench, from DIR/requirements.txt (once; again
   when that file changes) and builds or reuses the lab bundle (`airlock bundle build
   --profile lab`), whose MANIFEST.json gives every path, version and sha256 used below;
2. builds kubespray's extras (.airlock/cache/kubespray): etcd's release tarball packed from the
   bundle's etcd, etcdctl and etcdutl; a nerdctl stand-in; a flat Debian 12 repository of the
   packages kubespray installs; the bundle's flannel image plus `cp` (see "host limits");
3. starts a fresh --internal lab for kubespray (3 control planes with etcd, 2 workers, the
   registry's mirror on m3: `airlock lab up --registry m3 --image-source registry`), sets up
   what kubespray's offline mode expects to exist (benchmarks/kubespray_infra.yml, untimed: m1
   serves the bundle and the extras over HTTPS, m3 the mirror of the bundle's images, the
   hosts trust both and use only that package mirror), writes kubespray's inventory with
   every override below, runs cluster.yml twice (full, then no-op) and removes the lab;
4. starts an identical fresh lab (same flags, its own name and subnet) and runs `airlock
   deploy` twice on it;
5. prints both full deploy times, both re-run times, airlock/kubespray ratios (goals: full
   <= 0.5, no-op <= 0.2) and the tasks run and changed per host (kubespray's PLAY RECAP,
   airlock's summary.json). Numbers only: never passes or fails on a stopwatch.

--render-only OUT writes kubespray's inventory, its extra vars and the infrastructure
variables for a lab of that shape into OUT without starting anything, then (when DIR's
virtualenv exists) runs `ansible-inventory --list`, `ansible-playbook --syntax-check
cluster.yml` and a play that prints what kubespray resolves from them (URLs, checksums,
images, versions) with kubespray's own role defaults, on this machine's facts.

Every kubespray override (inventory group_vars/all/airlock-lab.yml unless marked):
- the same cluster as airlock's: kube_version (the bundle's), container_manager containerd,
  etcd_deployment_type host, kube_network_plugin flannel (flannel_backend_type vxlan),
  kube_proxy_mode iptables, dns_mode coredns, download_run_once false (every node fetches
  its own files and pulls its own images, as airlock's nodes do), download_validate_certs
  true;
- where files come from, all under files_repo (https://M1:8843, the lab's bundle host, TLS
  verified with the bundle CA in the hosts' trust store): kubeadm_download_url,
  kubelet_download_url, kubectl_download_url, runc_download_url, containerd_download_url,
  crictl_download_url, cni_download_url (the bundle's files), etcd_download_url and
  nerdctl_download_url (the extras);
- versions: kube_version, containerd_version, runc_version, crictl_version, cni_version,
  etcd_version, nerdctl_version, flannel_version, pod_infra_version, coredns_version,
  snapshot_controller_image_tag (unused; set so nothing looks 1.37 up in a table that stops
  at 1.36);
- checksums (extra vars, -e @extra-vars.yml: they are role vars of kubespray_defaults, which
  outrank the inventory): kubeadm_checksums, kubelet_checksums, kubectl_checksums,
  etcd_binary_checksums, cni_binary_checksums, runc_checksums,
  containerd_archive_checksums, crictl_checksums, nerdctl_archive_checksums, each holding
  exactly the bundle's (or extra's) sha256 for its version; kubespray derives
  *_binary_checksum and *_archive_checksum from them;
- where images come from: registry_host (https://M3:5001, the registry's mirror, anonymous,
  TLS verified with the site CA), kube_image_repo, github_image_repo, docker_image_repo,
  quay_image_repo, gcr_image_repo (each registry_host/<upstream>, the path under which the
  mirror keeps that upstream's images), flannel_image_repo, flannel_image_tag,
  flannel_init_image_repo, flannel_init_image_tag, containerd_registries_mirrors (only the
  mirror, verified);
- what the bundle has no image or file for (airlock runs none of them either):
  enable_nodelocaldns false, enable_dns_autoscaler false, loadbalancer_apiserver_localhost
  false (kubespray's nginx proxy on workers: workers then use the first control plane
  directly, where airlock gives them a keepalived VIP in front of three haproxy), and
  image_command_tool crictl (nerdctl cannot be had here: the Go module proxy refuses
  github.com/containerd/nerdctl and Debian 12 has no package; kubespray's containerd role
  still installs a nerdctl, so a stand-in script is served that only answers `nerdctl
  completion bash`, which kubespray's handler runs).

Host limits of the lab and their workarounds, all in kubespray's inventory (airlock's run is
left exactly as cluster_deploy.py runs it):
- cgroup v1 hosts: kubelet_fail_cgroup_v1 false and kubeadm_ignore_preflight_errors
  [SystemVerification] (airlock's kubeadm modules do the same);
- no CAP_SYS_RESOURCE in the sandbox: containerd_extra_runtime_args
  {restrict_oom_score_adj: true} (airlock's lab sets containerd_restrict_oom_score_adj) and
  containerd_base_runtime_spec_rlimit_nofile 10000, the lab hosts' hard limit (runc cannot
  raise a pod's RLIMIT_NOFILE to kubespray's 65535 above it);
- nf_conntrack_max is read-only in a container: kube_proxy_conntrack_max_per_core 0 (airlock's
  lab sets kubernetes_proxy_conntrack_max_per_core 0);
- kernel.* and vm.* sysctls are the machine's own, shared by every lab host: with
  kubelet_protect_kernel_defaults true kubespray would set kernel.panic_on_oops=1 and
  vm.overcommit_memory=1 on the machine: kubelet_protect_kernel_defaults false;
- /etc/resolv.conf is a podman bind mount (a rename onto it fails) and airlock leaves the
  host resolver alone: resolvconf_mode none;
- no default route on an --internal lab: flannel_interface eth0 (flanneld otherwise looks
  for the default route's interface); the service-network route itself is added by
  benchmarks/kubespray_infra.yml (not persistent), as airlock's os_prep does on such hosts;
- no kernel modules can be loaded: nothing to set, kubespray modprobes br_netfilter only
  when modinfo finds it (it is built in here) and IPVS/nf_tables modules only in those
  kube-proxy modes;
- the flannel image of the bundle has flanneld, the CNI plugin and iptables but no shell or
  cp, and kubespray's flannel DaemonSet copies files with `cp` in two init containers: the
  extras add busybox (Debian's busybox-static) as /bin/cp and the CNI plugin as /flannel,
  tagged ghcr.io/flannel-io/flannel:<tag>-kubespray and loaded into m3's mirror.
kubespray's settings left at its defaults are not listed; its sample inventory is not used.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cluster_deploy import airlock  # benchmarks/ is sys.path[0] when run as a script

from airlock.runner import summary_from_output

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
ARCH = "amd64"
VENV = ".venv-bench"
CACHE = ROOT / ".airlock" / "cache" / "kubespray"
WORK = ROOT / ".airlock" / "bench" / "kubespray"
INFRA_PLAYBOOK = ROOT / "benchmarks" / "kubespray_infra.yml"
MASTERS, WORKERS, REGISTRY_HOST = 3, 2, "m3"
BUNDLE_PORT, MIRROR_PORT = 8843, 5001  # bundle_server_port, registry_mirror_port defaults
# kubespray's kube_service_addresses default: the route kubespray_infra.yml adds.
SERVICE_CIDR = "10.233.0.0/18"
NERDCTL_STANDIN = "standin"
FLANNEL_TAG_SUFFIX = "-kubespray"
# What kubespray's system_packages role installs on Debian 12 with the settings below
# (roles/system_packages/vars/main.yml: entries without conditions, plus those whose
# conditions hold for Debian 12, containerd, iptables kube-proxy, no NTP).
KUBESPRAY_PACKAGES = (
    "apparmor",
    "apt-transport-https",
    "bash-completion",
    "conntrack",
    "curl",
    "e2fsprogs",
    "ebtables",
    "gnupg",
    "iproute2",
    "ipset",
    "iptables",
    "iputils-ping",
    "libseccomp2",
    "mergerfs",
    "openssl",
    "python3-apt",
    "rsync",
    "socat",
    "software-properties-common",
    "tar",
    "unzip",
    "xfsprogs",
)
NERDCTL_SCRIPT = """#!/bin/sh
# Stand-in written by airlock's benchmarks/kubespray_side_by_side.py. nerdctl cannot be had on
# this machine (the Go module proxy refuses github.com/containerd/nerdctl, Debian 12 has no
# package). kubespray's containerd role installs nerdctl and its handler runs
# `nerdctl completion bash`; images are pulled with crictl (image_command_tool: crictl).
if [ "$1" = completion ]; then exit 0; fi
echo "nerdctl is not available in this lab (kubespray benchmark stand-in)" >&2
exit 1
"""
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)"
    r"(?:\s+rescued=(?P<rescued>\d+))?(?:\s+ignored=(?P<ignored>\d+))?"
)


# --- the lab bundle ------------------------------------------------------------------------
@dataclass(frozen=True)
class Artifact:
    """One artifact of the bundle's MANIFEST.json: its path on the bundle host, its sha256."""

    name: str
    kind: str
    path: str
    sha256: str
    version: str
    image: str


@dataclass(frozen=True)
class Bundle:
    path: Path
    kube_version: str  # v1.37.2
    artifacts: Mapping[str, Artifact]

    def art(self, name: str) -> Artifact:
        if name not in self.artifacts:
            raise SystemExit(f"the lab bundle {self.path} has no artifact {name!r}")
        return self.artifacts[name]

    def extract(self, name: str, dest: Path) -> Path:
        """The artifact's file, copied out of the bundle archive to `dest`."""
        with tarfile.open(self.path) as tar:
            source = tar.extractfile(self.art(name).path)
            if source is None:
                raise SystemExit(f"{self.path}: {self.art(name).path} is not a file")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as out:
                shutil.copyfileobj(source, out)
        return dest


def read_bundle(path: Path) -> Bundle:
    with tarfile.open(path) as tar:
        member = tar.extractfile("MANIFEST.json")
        if member is None:
            raise SystemExit(f"{path} has no MANIFEST.json: not an airlock bundle")
        doc = json.load(member)
    arts = {
        a["name"]: Artifact(
            a["name"], a["kind"], a["path"], a["sha256"], a.get("version", ""), a.get("image", "")
        )
        for a in doc["artifacts"]
        if a.get("arch") == ARCH and a["kind"] != "deb"
    }
    return Bundle(path, doc["kube_version"], arts)


def plain(version: str) -> str:
    return version.removeprefix("v")


# --- kubespray's extras ----------------------------------------------------------------------
@dataclass(frozen=True)
class Extras:
    """Files kubespray needs in a shape the bundle does not carry, under CACHE/extras."""

    root: Path  # served as https://M1:8843/kubespray/
    etcd_tarball: str  # file name under root
    etcd_sha256: str
    nerdctl_tarball: str
    nerdctl_sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_extras(bundle: Bundle) -> Extras:
    """etcd's release tarball (from the bundle's binaries) and the nerdctl stand-in."""
    from airlock.lab.bundle.profile import write_tar_gz

    root = CACHE / "extras" / "kubespray"
    root.mkdir(parents=True, exist_ok=True)
    etcd_version = plain(bundle.art("etcd").version)
    top = f"etcd-v{etcd_version}-linux-{ARCH}"
    etcd = root / f"{top}.tar.gz"
    nerdctl = root / f"nerdctl-{NERDCTL_STANDIN}-linux-{ARCH}.tar.gz"
    with tempfile.TemporaryDirectory() as tmp:
        files = [
            (bundle.extract(name, Path(tmp) / name), f"{top}/{name}", 0o755)
            for name in ("etcd", "etcdctl", "etcdutl")
        ]
        write_tar_gz(etcd, files)
        script = Path(tmp) / "nerdctl"
        script.write_text(NERDCTL_SCRIPT)
        write_tar_gz(nerdctl, [(script, "nerdctl", 0o755)])
    return Extras(root, etcd.name, sha256_of(etcd), nerdctl.name, sha256_of(nerdctl))


def package_extras(extras: Extras) -> Path:
    """kubespray's Debian 12 packages as a flat repository under root/debs/bookworm (the
    resolver airlock's bundle uses), and busybox-static's busybox, which is returned."""
    from airlock.bundle.build.archive import Member
    from airlock.bundle.build.debrepo import index_members
    from airlock.bundle.build.download import Cache, Request, fetch_all
    from airlock.bundle.pin import distros, ospackages
    from airlock.lab.bundle.profile import DEB_MIRRORS, LAB_DISTRO

    log("resolving kubespray's Debian 12 packages (and busybox-static)")
    debs = ospackages.resolve_distro(
        distros.distro(LAB_DISTRO),
        ARCH,
        [*KUBESPRAY_PACKAGES, "busybox-static"],
        DEB_MIRRORS,
        CACHE / "apt",
    )
    outcome = fetch_all(
        [Request(d.url, d.sha256, d.name) for d in debs], Cache(CACHE / "downloads"), progress=False
    )
    if outcome.errors:
        raise SystemExit("; ".join(str(e) for e in outcome.errors.values()))
    repo = extras.root / "debs" / "bookworm"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    members = []
    for deb in debs:
        name = Path(deb.filename).name
        shutil.copyfile(outcome.paths[deb.sha256], repo / name)
        members.append(Member(f"debs/bookworm/{name}", repo / name, deb.sha256, deb.size))
    index_members(members, extras.root, {})
    busybox_deb = next(repo / Path(d.filename).name for d in debs if d.name == "busybox-static")
    unpacked = CACHE / "busybox"
    shutil.rmtree(unpacked, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(busybox_deb), str(unpacked)], check=True)
    found = [p for p in unpacked.rglob("bin/busybox") if p.is_file() and not p.is_symlink()]
    if not found:
        raise SystemExit(f"{busybox_deb} holds no busybox program")
    log(f"{len(debs)} packages in {repo}")
    return found[0]


def flannel_reference(bundle: Bundle) -> str:
    """ghcr.io/flannel-io/flannel:v0.27.4-kubespray: a tag no upstream has."""
    return bundle.art("image-flannel").image + FLANNEL_TAG_SUFFIX


def flannel_archive(bundle: Bundle) -> Path:
    return CACHE / "images" / f"flannel_{flannel_reference(bundle).rsplit(':', 1)[1]}.oci.tar"


def flannel_image(bundle: Bundle, busybox: Path) -> tuple[Path, str]:
    """The bundle's flannel image plus one layer: busybox as /bin/cp and the bundle's flannel
    CNI plugin as /flannel, which kubespray's two init containers copy with `cp`."""
    from airlock.lab.bundle import oci

    reference = flannel_reference(bundle)
    out = flannel_archive(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = bundle.extract("image-flannel", Path(tmp) / "flannel.oci.tar")
        cni = bundle.extract("flannel", Path(tmp) / "flannel")
        blobs: dict[str, bytes] = {}
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member) if member.isfile() else None
                if data is not None and member.name.startswith("blobs/sha256/"):
                    blobs["sha256:" + member.name.rsplit("/", 1)[1]] = data.read()
                elif data is not None and member.name == "index.json":
                    index = json.loads(data.read())
        manifest = json.loads(blobs[index["manifests"][0]["digest"]])
        config = json.loads(blobs[manifest["config"]["digest"]])
        # airlock.lab.bundle.oci's own layer writer (private helpers, same format).
        diff_ids: list[str] = []
        layer = oci._layer(
            oci._files_tar([oci.ImageFile(busybox, "/bin/cp"), oci.ImageFile(cni, "/flannel")]),
            blobs,
            diff_ids,
        )
        config["rootfs"]["diff_ids"].append(diff_ids[0])
        config["history"] = [
            *config.get("history", []),
            {"created_by": "benchmarks/kubespray_side_by_side.py: /bin/cp (busybox), /flannel"},
        ]
        manifest["config"] = oci._blob(oci._json(config), oci.MEDIA_CONFIG, blobs)
        manifest["layers"].append(layer)
        descriptor = oci._blob(oci._json(manifest), oci.MEDIA_MANIFEST, blobs)
        descriptor["platform"] = {"architecture": ARCH, "os": "linux"}
        descriptor["annotations"] = {
            "io.containerd.image.name": reference,
            "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1],
        }
        used = {manifest["config"]["digest"], descriptor["digest"]}
        used |= {entry["digest"] for entry in manifest["layers"]}
        oci._write_archive(
            out,
            {"schemaVersion": 2, "manifests": [descriptor]},
            {d: b for d, b in blobs.items() if d in used},
        )
    return out, reference


def extras_tar(extras: Extras) -> Path:
    """The served tree as one tar (kubespray_infra.yml unpacks it on the bundle host)."""
    out = CACHE / "extras.tar"
    with tarfile.open(out, "w") as tar:
        for path in sorted(extras.root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(extras.root)))
    return out


# --- kubespray's inventory -------------------------------------------------------------------
@dataclass(frozen=True)
class Lab:
    name: str
    subnet: str

    @property
    def spec(self) -> Any:
        from airlock.lab.spec import LabSpec

        return LabSpec(
            name=self.name,
            masters=MASTERS,
            workers=WORKERS,
            subnet=self.subnet,
            internal=True,
            registry=(REGISTRY_HOST,),
            image_source="registry",
        )

    @property
    def inventory(self) -> Path:
        """Where `airlock lab up` writes this lab's inventory."""
        return Path(self.spec.inventory_dir)

    def ip(self, host: str) -> str:
        return next(h.ip for h in self.spec.hosts if h.name == host)

    def flags(self) -> list[str]:
        return [
            "--name",
            self.name,
            "--internal",
            "--masters",
            str(MASTERS),
            "--workers",
            str(WORKERS),
            "--subnet",
            self.subnet,
            "--registry",
            REGISTRY_HOST,
            "--image-source",
            "registry",
        ]


def kubespray_hosts(lab: Lab) -> dict[str, Any]:
    from airlock.lab.inventory import odd

    spec = lab.spec
    masters = [h.name for h in spec.hosts if h.role == "master"]
    workers = [h.name for h in spec.hosts if h.role == "worker"]
    return {
        "all": {
            "hosts": {
                h.name: {"ansible_host": h.ip, "ip": h.ip, "access_ip": h.ip} for h in spec.hosts
            },
            "children": {
                "kube_control_plane": {"hosts": dict.fromkeys(masters)},
                # the same members as the lab's etcd group (airlock's: an odd count)
                "etcd": {"hosts": dict.fromkeys(masters[: odd(len(masters))])},
                "kube_node": {"hosts": dict.fromkeys(workers)},
            },
        }
    }


def connection_vars(lab: Lab) -> dict[str, Any]:
    """How the lab's own inventory reaches its hosts (its key and known_hosts)."""
    state = lab.inventory.parent  # .airlock/labs/NAME: its key and known_hosts
    known = state / "known_hosts"
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(state / "id_ed25519"),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
        ),
    }


def kubespray_vars(lab: Lab, bundle: Bundle, extras: Extras) -> dict[str, Any]:
    """group_vars/all of kubespray's inventory: every override (see the module docstring)."""
    m1, m3 = lab.ip("m1"), lab.ip(REGISTRY_HOST)
    flannel_name, flannel_tag = flannel_reference(bundle).rsplit(":", 1)
    flannel_repo = flannel_name.split("/", 1)[1]  # flannel-io/flannel, below ghcr.io

    def files(name: str) -> str:
        return "{{ files_repo }}/" + bundle.art(name).path

    def tag_of(name: str) -> str:
        return bundle.art(name).image.rsplit(":", 1)[1]

    return {
        **connection_vars(lab),
        # -- the same cluster as airlock's
        "kube_version": plain(bundle.kube_version),
        "container_manager": "containerd",
        "etcd_deployment_type": "host",
        "kube_network_plugin": "flannel",
        "flannel_backend_type": "vxlan",
        "kube_proxy_mode": "iptables",
        "dns_mode": "coredns",
        "download_run_once": False,
        "download_localhost": False,
        "download_validate_certs": True,
        # -- files: the lab's bundle host (and kubespray's extras beside the bundle)
        "files_repo": f"https://{m1}:{BUNDLE_PORT}",
        "kubeadm_download_url": files("kubeadm"),
        "kubelet_download_url": files("kubelet"),
        "kubectl_download_url": files("kubectl"),
        "runc_download_url": files("runc"),
        "containerd_download_url": files("containerd"),
        "crictl_download_url": files("crictl"),
        "cni_download_url": files("cni-plugins"),
        "etcd_download_url": "{{ files_repo }}/kubespray/" + extras.etcd_tarball,
        "nerdctl_download_url": "{{ files_repo }}/kubespray/" + extras.nerdctl_tarball,
        # -- versions (kubespray's tables stop at 1.36)
        "containerd_version": plain(bundle.art("containerd").version),
        "runc_version": plain(bundle.art("runc").version),
        "crictl_version": plain(bundle.art("crictl").version),
        "cni_version": plain(bundle.art("cni-plugins").version),
        "etcd_version": plain(bundle.art("etcd").version),
        "nerdctl_version": NERDCTL_STANDIN,
        "flannel_version": plain(bundle.art("image-flannel").version),
        "pod_infra_version": tag_of("image-pause"),
        "coredns_version": plain(tag_of("image-coredns")),
        "snapshot_controller_image_tag": tag_of("image-snapshot-controller"),
        # -- images: the registry's mirror on m3 (each upstream under its own name)
        "registry_host": f"{m3}:{MIRROR_PORT}",
        "kube_image_repo": "{{ registry_host }}/registry.k8s.io",
        "github_image_repo": "{{ registry_host }}/ghcr.io",
        "docker_image_repo": "{{ registry_host }}/docker.io",
        "quay_image_repo": "{{ registry_host }}/quay.io",
        "gcr_image_repo": "{{ registry_host }}/gcr.io",
        "flannel_image_repo": "{{ github_image_repo }}/" + flannel_repo,
        "flannel_image_tag": flannel_tag,
        "flannel_init_image_repo": "{{ github_image_repo }}/" + flannel_repo,
        "flannel_init_image_tag": flannel_tag,
        "containerd_registries_mirrors": [
            {
                "prefix": "{{ registry_host }}",
                "mirrors": [
                    {
                        "host": "https://{{ registry_host }}",
                        "capabilities": ["pull", "resolve"],
                        "skip_verify": False,
                    }
                ],
            }
        ],
        # -- no image or file for these in the bundle (airlock runs none of them)
        "enable_nodelocaldns": False,
        "enable_dns_autoscaler": False,
        "loadbalancer_apiserver_localhost": False,
        "image_command_tool": "crictl",
        # -- host limits of the lab
        "kubelet_fail_cgroup_v1": False,
        "kubeadm_ignore_preflight_errors": ["SystemVerification"],
        "containerd_extra_runtime_args": {"restrict_oom_score_adj": True},
        "containerd_base_runtime_spec_rlimit_nofile": 10000,
        "kube_proxy_conntrack_max_per_core": 0,
        "kubelet_protect_kernel_defaults": False,
        "resolvconf_mode": "none",
        "flannel_interface": "eth0",
    }


def kubespray_extra_vars(bundle: Bundle, extras: Extras) -> dict[str, Any]:
    """Role vars of kubespray_defaults (vars/main/checksums.yml): only extra vars outrank them."""

    def one(version: str, sha256: str) -> dict[str, dict[str, str]]:
        return {ARCH: {plain(version): f"sha256:{sha256}"}}

    def art(name: str) -> dict[str, dict[str, str]]:
        return one(bundle.art(name).version, bundle.art(name).sha256)

    return {
        "kubeadm_checksums": art("kubeadm"),
        "kubelet_checksums": art("kubelet"),
        "kubectl_checksums": art("kubectl"),
        "runc_checksums": art("runc"),
        "containerd_archive_checksums": art("containerd"),
        "crictl_checksums": art("crictl"),
        "cni_binary_checksums": art("cni-plugins"),
        "etcd_binary_checksums": one(bundle.art("etcd").version, extras.etcd_sha256),
        "nerdctl_archive_checksums": one(NERDCTL_STANDIN, extras.nerdctl_sha256),
    }


def write_yaml(path: Path, header: str, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)
    path.write_text(f"# {header}\n---\n{body}")


def render(out: Path, lab: Lab, bundle: Bundle, extras: Extras, ks: Path) -> Path:
    """kubespray's inventory and extra vars in `out`; returns the hosts file."""
    source = f"written by benchmarks/kubespray_side_by_side.py for kubespray at {describe(ks)}"
    hosts = out / "inventory" / "hosts.yml"
    write_yaml(hosts, source, kubespray_hosts(lab))
    write_yaml(
        out / "inventory" / "group_vars" / "all" / "airlock-lab.yml",
        f"{source}; every override is explained in that script's docstring",
        kubespray_vars(lab, bundle, extras),
    )
    write_yaml(
        out / "extra-vars.yml",
        f"{source}; role vars of kubespray_defaults, passed with -e @",
        kubespray_extra_vars(bundle, extras),
    )
    return hosts


def infra_vars(out: Path, bundle: Bundle, tar: Path, flannel: Path) -> Path:
    path = out / "infra-vars.yml"
    write_yaml(
        path,
        "variables of benchmarks/kubespray_infra.yml",
        {
            "kubespray_bench_ca_dir": str(out / "site-ca"),
            "kubespray_bench_extras": str(tar),
            "kubespray_bench_flannel_archive": str(flannel),
            "kubespray_bench_images": sorted(
                a.name for a in bundle.artifacts.values() if a.kind == "image"
            ),
            "kubespray_bench_service_cidr": SERVICE_CIDR,
        },
    )
    return path


# --- running things ----------------------------------------------------------------------
def log(message: str) -> None:
    print(f"== {message}", file=sys.stderr, flush=True)


def describe(ks: Path) -> str:
    proc = subprocess.run(
        ["git", "-C", str(ks), "describe", "--tags", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    commit = subprocess.run(
        ["git", "-C", str(ks), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return f"{proc.stdout.strip() or '?'} ({commit.stdout.strip() or 'not a git checkout'})"


def kubespray_venv(ks: Path) -> Path:
    """DIR/.venv-bench with kubespray's requirements.txt (its pinned Ansible), made once."""
    venv = ks / VENV
    requirements = ks / "requirements.txt"
    stamp = venv / ".requirements.sha256"
    want = sha256_of(requirements)
    if stamp.is_file() and stamp.read_text().strip() == want:
        return venv
    log(f"making kubespray's virtualenv {venv} from {requirements}")
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(want + "\n")
    return venv


def kubespray_env(venv: Path, ks: Path, facts: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV"))}
    return {
        **env,
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        "ANSIBLE_CONFIG": str(ks / "ansible.cfg"),
        # per lab: every lab names its hosts m1, m2, ... (kubespray's default cache is /tmp)
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_FORCE_COLOR": "false",
    }


def ansible(venv: Path, ks: Path, facts: Path, program: str, *args: str, log_to: Path) -> float:
    started = time.monotonic()
    with log_to.open("w") as out:
        proc = subprocess.run(
            [str(venv / "bin" / program), *args],
            cwd=ks,
            env=kubespray_env(venv, ks, facts),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        tail = log_to.read_text(errors="replace")[-6000:]
        sys.stderr.write(tail)
        raise SystemExit(f"failed ({proc.returncode}): {program} {' '.join(args)}; log: {log_to}")
    return elapsed


def recap(log_file: Path) -> dict[str, dict[str, int]]:
    """Per host of the last PLAY RECAP: ok (changed included), changed, failed, skipped."""
    lines = log_file.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    if not starts:
        raise SystemExit(f"{log_file}: no PLAY RECAP")
    out: dict[str, dict[str, int]] = {}
    for line in lines[starts[-1] + 1 :]:
        match = RECAP.match(line.strip())
        if match is None:
            if out:
                break
            continue
        out[match["host"]] = {k: int(v or 0) for k, v in match.groupdict().items() if k != "host"}
    return out


def ks_tasks(host: Mapping[str, int]) -> int:
    return host["ok"] + host["failed"] + host["skipped"]


def al_tasks(host: Mapping[str, int]) -> int:
    return host["ok"] + host["failures"] + host["skipped"]


@dataclass
class Result:
    tool: str
    lab_s: float
    full_s: float
    noop_s: float
    full: dict[str, tuple[int, int, int]]  # host -> (tasks, of them skipped, changed)
    noop: dict[str, tuple[int, int, int]]
    setup_s: float = 0.0


@contextlib.contextmanager
def fresh_lab(lab: Lab, keep: bool) -> Iterator[float]:
    airlock("lab", "down", "--name", lab.name)
    lab_s, _ = airlock("lab", "up", *lab.flags())
    try:
        yield lab_s
    finally:
        if not keep:
            airlock("lab", "down", "--name", lab.name)


def run_kubespray(ks: Path, venv: Path, lab: Lab, bundle: Bundle, keep: bool) -> Result:
    extras = file_extras(bundle)
    busybox = package_extras(extras)
    flannel, reference = flannel_image(bundle, busybox)
    log(f"kubespray's flannel image: {reference} ({flannel})")
    tar = extras_tar(extras)
    out = WORK / lab.name
    shutil.rmtree(out, ignore_errors=True)
    hosts = render(out, lab, bundle, extras, ks)
    variables = infra_vars(out, bundle, tar, flannel)
    facts = out / "facts"
    with fresh_lab(lab, keep) as lab_s:
        log("kubespray's lab: files repository, registry mirror, trust, package mirror")
        setup_s, _ = airlock(
            "deploy",
            "-i",
            str(lab.inventory),
            "--playbook",
            str(INFRA_PLAYBOOK),
            "-e",
            f"@{variables}",
        )
        args = ("-i", str(hosts), "-e", f"@{out / 'extra-vars.yml'}", "cluster.yml")
        log(f"kubespray cluster.yml (full); log: {out / 'cluster-full.log'}")
        full_s = ansible(
            venv, ks, facts, "ansible-playbook", *args, log_to=out / "cluster-full.log"
        )
        log(f"kubespray cluster.yml (again); log: {out / 'cluster-noop.log'}")
        noop_s = ansible(
            venv, ks, facts, "ansible-playbook", *args, log_to=out / "cluster-noop.log"
        )
    full, noop = recap(out / "cluster-full.log"), recap(out / "cluster-noop.log")
    names = [h.name for h in lab.spec.hosts]
    return Result(
        "kubespray",
        lab_s,
        full_s,
        noop_s,
        {
            h: (ks_tasks(full[h]), full[h]["skipped"], full[h]["changed"])
            for h in names
            if h in full
        },
        {
            h: (ks_tasks(noop[h]), noop[h]["skipped"], noop[h]["changed"])
            for h in names
            if h in noop
        },
        setup_s,
    )


def run_airlock(lab: Lab, keep: bool) -> Result:
    with fresh_lab(lab, keep) as lab_s:
        log("airlock deploy (full)")
        full_s, full_out = airlock("deploy", "-i", str(lab.inventory))
        log("airlock deploy (again)")
        noop_s, noop_out = airlock("deploy", "-i", str(lab.inventory))
    full = summary_from_output(full_out)["stats"]
    noop = summary_from_output(noop_out)["stats"]
    return Result(
        "airlock",
        lab_s,
        full_s,
        noop_s,
        {h: (al_tasks(s), s["skipped"], s["changed"]) for h, s in full.items()},
        {h: (al_tasks(s), s["skipped"], s["changed"]) for h, s in noop.items()},
    )


def report(results: Sequence[Result], ks_version: str) -> None:
    by = {r.tool: r for r in results}
    print(f"kubespray {ks_version}; both on --internal 3+2 labs, registry mirror on m3")
    for r in results:
        extra = f", untimed site setup {r.setup_s:.1f} s" if r.tool == "kubespray" else ""
        print(
            f"{r.tool:9}  lab up {r.lab_s:6.1f} s  full deploy {r.full_s:7.1f} s  "
            f"no-op re-run {r.noop_s:7.1f} s{extra}"
        )
    if "kubespray" in by and "airlock" in by:
        ks, al = by["kubespray"], by["airlock"]
        full, noop = al.full_s / ks.full_s, al.noop_s / ks.noop_s
        for what, ratio, goal in (("full ", full, 0.5), ("no-op", noop, 0.2)):
            verdict = "met" if ratio <= goal else "missed"
            print(f"airlock/kubespray {what} {ratio:5.2f}  (goal <= {goal:.2f}: {verdict})")
    hosts = sorted({h for r in results for h in r.full})
    head = "".join(f" {r.tool + ' full':>18} {r.tool + ' no-op':>18}" for r in results)
    print(f"{'host':6}{head}")
    print(f"{'':6}" + f" {'tasks/skipped/chg':>18}" * 2 * len(results))
    for host in hosts:
        cells = ""
        for r in results:
            for stats in (r.full, r.noop):
                tasks, skipped, changed = stats.get(host, (0, 0, 0))
                cells += f" {f'{tasks}/{skipped}/{changed}':>18}"
        print(f"{host:6}{cells}")
    print("tasks: ok + failed + skipped per host (changed tasks count in ok), as cluster_deploy.py")


# --- render-only checks --------------------------------------------------------------------
RESOLVE_PLAY = """---
# What kubespray resolves from the rendered inventory and extra vars, with its own role
# defaults, on this machine's facts (written by benchmarks/kubespray_side_by_side.py).
- name: Resolve the overrides
  hosts: m1
  gather_facts: true
  roles:
    - role: kubespray_defaults
  tasks:
    - name: Versions and images
      ansible.builtin.debug:
        msg:
          kube_version: "{{ kube_version }}"
          kube_version_min_required: "{{ kube_version_min_required }}"
          etcd_version: "{{ etcd_version }}"
          containerd_version: "{{ containerd_version }}"
          runc_version: "{{ runc_version }}"
          crictl_version: "{{ crictl_version }}"
          cni_version: "{{ cni_version }}"
          kubeadm_image_repo: "{{ kubeadm_image_repo }}"
          pod_infra: "{{ pod_infra_image_repo }}:{{ pod_infra_image_tag }}"
          coredns: "{{ coredns_image_repo }}:{{ coredns_image_tag }}"
          flannel: "{{ flannel_image_repo }}:{{ flannel_image_tag }}"
          flannel_init: "{{ flannel_init_image_repo }}:{{ flannel_init_image_tag }}"
          mirrors: "{{ containerd_registries_mirrors }}"
          image_command_tool: "{{ image_command_tool }}"

    - name: Files kubespray downloads (url, checksum, enabled)
      ansible.builtin.debug:
        msg: >-
          {{ item }}: {{ downloads[item].url }} {{ downloads[item].checksum }}
          enabled={{ downloads[item].enabled }}
      loop: [etcd, cni, kubeadm, kubelet, kubectl, crictl, runc, containerd, nerdctl]

    - name: The assert kubespray makes on the version (validate_inventory)
      ansible.builtin.assert:
        that:
          - kube_version in kubeadm_checksums[image_arch]
          - kube_version in kubelet_checksums[image_arch]
          - kube_version in kubectl_checksums[image_arch]
          - kube_version is version(kube_version_min_required, '>=')
"""


def check_rendered(ks: Path, out: Path, hosts: Path) -> None:
    venv = ks / VENV
    if not (venv / "bin" / "ansible-playbook").is_file():
        log(f"no {venv}: run without --render-only once (or make it) to check with kubespray")
        return
    facts = out / "facts"
    extra = f"@{out / 'extra-vars.yml'}"
    checks = [
        ("ansible-inventory", ("-i", str(hosts), "--list"), "inventory.json"),
        (
            "ansible-playbook",
            ("-i", str(hosts), "-e", extra, "--syntax-check", "cluster.yml"),
            "syntax-check.log",
        ),
    ]
    resolve = ks / "airlock-bench-resolve.yml"
    resolve.write_text(RESOLVE_PLAY)
    checks.append(
        (
            "ansible-playbook",
            (
                "-i",
                str(hosts),
                "-e",
                extra,
                "-e",
                "ansible_connection=local",
                "-e",
                f"ansible_python_interpreter={venv / 'bin' / 'python'}",
                resolve.name,
            ),
            "resolve.log",
        )
    )
    try:
        for program, args, name in checks:
            ansible(venv, ks, facts, program, *args, log_to=out / name)
            log(f"{program} {args[-1]}: ok ({out / name})")
    finally:
        resolve.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Every kubespray override and lab workaround is listed in this script's docstring.",
    )
    parser.add_argument("--kubespray", required=True, type=Path, help="a kubespray checkout")
    parser.add_argument("--ks-name", default="bench-ks", help="kubespray's lab")
    parser.add_argument("--ks-subnet", default="10.77.71.0/24")
    parser.add_argument("--airlock-name", default="bench-al", help="airlock's lab")
    parser.add_argument("--airlock-subnet", default="10.77.72.0/24")
    parser.add_argument("--only", choices=["both", "kubespray", "airlock"], default="both")
    parser.add_argument("--keep", action="store_true", help="leave the labs running")
    parser.add_argument(
        "--render-only",
        type=Path,
        metavar="OUT",
        help="write kubespray's inventory and vars into OUT (and check them); start nothing",
    )
    args = parser.parse_args()
    os.environ.setdefault("AIRLOCK_HOME", str(ROOT))  # this checkout, as the CLI runs below
    ks = args.kubespray.resolve()
    if not (ks / "cluster.yml").is_file() or not (ks / "requirements.txt").is_file():
        raise SystemExit(f"--kubespray {ks}: not a kubespray checkout (no cluster.yml)")
    ks_lab = Lab(args.ks_name, args.ks_subnet)
    if args.render_only:
        bundle = read_bundle(lab_bundle_path())
        out = args.render_only.resolve()
        hosts = render(out, ks_lab, bundle, file_extras(bundle), ks)
        infra_vars(out, bundle, CACHE / "extras.tar", flannel_archive(bundle))
        log(f"kubespray's inventory: {hosts}; extra vars: {out / 'extra-vars.yml'}")
        check_rendered(ks, out, hosts)
        return
    results: list[Result] = []
    airlock("bundle", "build", "--profile", "lab")
    bundle = read_bundle(lab_bundle_path())
    if args.only in ("both", "kubespray"):
        venv = kubespray_venv(ks)
        results.append(run_kubespray(ks, venv, ks_lab, bundle, args.keep))
    if args.only in ("both", "airlock"):
        results.append(run_airlock(Lab(args.airlock_name, args.airlock_subnet), args.keep))
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(
        json.dumps([r.__dict__ for r in results], indent=2, default=str) + "\n"
    )
    report(results, describe(ks))


def lab_bundle_path() -> Path:
    from airlock.lab.bundle import lab_archive

    path = lab_archive()
    if not path.is_file():
        raise SystemExit(f"no lab bundle at {path}: run `airlock bundle build --profile lab`")
    return path


if __name__ == "__main__":
    main()
