"""The lab profile: make here what production downloads, then feed the same pipeline.

This machine reaches only the Go module proxy, PyPI and Debian's archive, so:
- Kubernetes programs, etcd, coredns, flannel, its CNI plugin, crictl, pause, containerd,
  runc and the CNI plugins are built from their Go modules (airlock.lab.bundle.gobuild);
  containerd, the CNI plugins and crictl are packed like their upstream release files,
  under production's artifact names, so hosts install both bundles the same way;
- every OS package the hosts need comes from Debian's archive, resolved with its
  dependencies by the resolver production uses (airlock.bundle.pin: ospackages, aptroot);
- the container images kubeadm pulls are assembled here as OCI archives from those
  binaries, under the names and tags kubeadm expects (airlock.lab.bundle.oci).

The result is a manifest of the same schema as production's, written to
`<cache>/manifest.yml`: local artifacts under the `lab` mirror (file:// URLs), .debs under
the `debian` mirrors (their real archive URLs). `airlock bundle build` then downloads,
verifies and packs it exactly as it does production.

One bundle per Kubernetes release (RELEASES: the newest served patch of each minor the lab
builds, with the etcd, CoreDNS, pause and crictl versions kubeadm of that release expects):
a bundle is what one cluster runs, `airlock check` compares the inventory's version with
the bundle's, and an upgrade is carried by the target release's bundle. `make lab` builds
only DEFAULT_RELEASE; the upgrade e2e builds the older one when it needs it. Programs are
cached per version (<cache>/bin/<arch>/<version>/), so two releases share containerd,
runc and the CNI plugins, which do not depend on the Kubernetes minor here.

1.35 and later refuse cgroup v1 (this kernel) unless the kubelet configuration sets
failCgroupV1: false and kubeadm's SystemVerification preflight is skipped; the kubeadm
modules do both per host (plugins/module_utils/kubeadm.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from airlock.bundle.build.download import Cache, Request, fetch_all, sha256_file
from airlock.bundle.pin import distros, ospackages
from airlock.bundle.pin.aptroot import ResolvedDeb
from airlock.errors import AirlockError, CommandError
from airlock.lab.bundle import estimate, gobuild, oci, webui
from airlock.tarball import tar_writer


@dataclass(frozen=True)
class Release:
    """A Kubernetes release and what kubeadm of it expects next to it.

    etcd: a patch of the minor kubeadm's DefaultEtcdVersion names for it
    (cmd/kubeadm/app/constants); coredns and pause: its CoreDNSVersion and PauseVersion;
    crictl: cri-tools of the same minor.
    """

    kube: str
    etcd: str
    coredns: str
    pause: str
    crictl: str


RELEASES = {
    # kubeadm v1.37.2: etcd 3.7.0-0, coredns v1.14.6, pause 3.10.2
    "v1.37.2": Release("v1.37.2", "v3.7.3", "v1.14.6", "3.10.2", "v1.37.0"),
    # kubeadm v1.36.3: etcd 3.6.8-0, coredns v1.14.2, pause 3.10.2. etcd v3.6.14, the
    # newest 3.6 production's manifest can pin with a cited checksum (not 3.6.16), so the
    # lab runs what production does.
    "v1.36.3": Release("v1.36.3", "v3.6.14", "v1.14.2", "3.10.2", "v1.36.0"),
}
DEFAULT_RELEASE = "v1.37.2"
FLANNEL_VERSION = "v0.27.4"
# containernetworking/plugins v0.9.1 is the last release with plugins/meta/flannel (v1.0
# moved it to flannel-io/cni-plugin, which the module proxy here does not serve).
FLANNEL_CNI_VERSION = "v0.9.1"
# The runtime: the versions production's manifest pins, built here and packed in the
# shape of their upstream release files, so the hosts install both bundles one way.
CONTAINERD_VERSION = "v2.2.1"
RUNC_VERSION = "v1.3.4"
CNI_PLUGINS_VERSION = "v1.8.0"
CNI_BUILDVERSION = "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion"
# The standard plugins a flannel node uses: flannel delegates to bridge + host-local;
# containerd's CRI sets up loopback in every pod; portmap serves hostPort.
CNI_PLUGINS = {
    "bridge": "plugins/main/bridge",
    "host-local": "plugins/ipam/host-local",
    "loopback": "plugins/main/loopback",
    "portmap": "plugins/meta/portmap",
}
# The monitoring stack, from the Go modules the proxy serves (see docs/monitoring.md):
# Prometheus 3.15.1 is module v0.315.1, the newest whose web UI builds from the npm
# registry; Alertmanager v0.31.1, the newest whose module still carries its built UI.
PROMETHEUS_MODULE_VERSION = "v0.315.1"
PROMETHEUS_VERSION = "3.15.1"
ALERTMANAGER_VERSION = "v0.31.1"
NODE_EXPORTER_VERSION = "v1.12.1"
BLACKBOX_EXPORTER_VERSION = "v0.28.0"
KUBE_STATE_METRICS_VERSION = "v2.20.0"
# The CSI snapshot pieces roles/ceph_csi applies for real (ceph-csi itself is refused by the
# module proxy): the snapshot-controller from external-snapshotter/v8 and the three
# VolumeSnapshot CRDs from its client/v8 module (v8.1.0, v8.2.1, v8.3.0 are refused).
SNAPSHOTTER_VERSION = "v8.4.0"
SNAPSHOTTER_MODULE = "github.com/kubernetes-csi/external-snapshotter/v8"
SNAPSHOT_CLIENT_MODULE = "github.com/kubernetes-csi/external-snapshotter/client/v8"
SNAPSHOT_CRDS = ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
# The lab's Prometheus keeps the service discoveries airlock configures (static, file,
# HTTP, DNS, Kubernetes) and drops the cloud ones: half the compile time on 2 cores.
# Production installs upstream's release archive, which has them all.
PROMETHEUS_TAGS = (
    "netgo",
    "builtinassets",
    "remove_all_sd",
    "enable_kubernetes_sd",
    "enable_dns_sd",
)
MONITORING = ("monitoring",)
NODE = ("kube_control_plane", "kube_node")
CONTROL = ("kube_control_plane",)
# What hosts install from the OS package repository (Debian 12 names).
HOST_PACKAGES = (
    "conntrack",
    "socat",
    "ipset",
    "iptables",
    "ebtables",
    "ethtool",
    "chrony",
    "haproxy",
    "keepalived",
    "nginx-light",
    "ca-certificates",
    "curl",
    "docker-registry",
    # roles/ceph (Ceph 16.2.15 from Debian 12; about 90 MiB more with its dependencies)
    "ceph-mon",
    "ceph-mgr",
    "ceph-osd",
    "ceph-common",
    # roles/registry's mirror of the bundle's images (airlock_image_source: registry)
    "skopeo",
)
# Userland the kube-proxy and flannel images need besides their own binary.
NET_IMAGE_PACKAGES = ("iptables", "conntrack")
IPTABLES_COMMANDS = tuple(
    f"{family}{suffix}"
    for family in ("iptables", "ip6tables")
    for suffix in ("", "-save", "-restore")
)


def _k8s(name: str, kube: str) -> gobuild.GoTarget:
    return gobuild.GoTarget(
        name,
        "k8s.io/kubernetes",
        kube,
        f"k8s.io/kubernetes/cmd/{name}",
        "kubernetes",
        gobuild.kube_ldflags(kube),
    )


def _containerd(name: str) -> gobuild.GoTarget:
    module = "github.com/containerd/containerd/v2"
    return gobuild.GoTarget(
        name,
        module,
        CONTAINERD_VERSION,
        f"{module}/cmd/{name}",
        "containerd",
        (
            f"-X {module}/version.Version={CONTAINERD_VERSION}",
            f"-X {module}/version.Package=github.com/containerd/containerd/v2",
        ),
        tags=("no_btrfs",),
    )


def _prom_ldflags(version: str) -> tuple[str, ...]:
    """What promu stamps (github.com/prometheus/common/version), reproducibly."""
    pkg = "github.com/prometheus/common/version"
    return (
        f"-X {pkg}.Version={version.lstrip('v')}",
        f"-X {pkg}.Revision={version}",
        f"-X {pkg}.Branch=HEAD",
        f"-X {pkg}.BuildUser=airlock@lab",
        f"-X {pkg}.BuildDate=19700101-00:00:00",
    )


# kube-state-metrics' go.mod requires inet.af/netaddr (indirect), which the module proxy
# here refuses (403); the same commit is served under its GitHub path.
KSM_REPLACES = ("inet.af/netaddr=github.com/inetaf/netaddr@v0.0.0-20230525184311-b8eac61e914a",)


def _ksm_replaces(src: Path, cache: Path) -> None:
    for replace in KSM_REPLACES:
        subprocess.run(
            ["go", "mod", "edit", f"-replace={replace}"],
            cwd=src,
            check=True,
            env={**os.environ, "GOWORK": "off"},
        )


def monitoring_targets() -> tuple[gobuild.GoTarget, ...]:
    """The monitoring stack's programs, each built inside its own module, as upstream does."""
    prom = "github.com/prometheus/prometheus"
    am = "github.com/prometheus/alertmanager"
    ksm = "k8s.io/kube-state-metrics/v2"
    return (
        gobuild.GoTarget(
            "prometheus",
            prom,
            PROMETHEUS_MODULE_VERSION,
            "./cmd/prometheus",
            "prometheus",
            _prom_ldflags(PROMETHEUS_VERSION),
            tags=PROMETHEUS_TAGS,
            in_module=True,
            prepare=("web-ui", webui.build_prometheus_ui),
        ),
        gobuild.GoTarget(
            "promtool",
            prom,
            PROMETHEUS_MODULE_VERSION,
            "./cmd/promtool",
            "prometheus",
            _prom_ldflags(PROMETHEUS_VERSION),
            tags=PROMETHEUS_TAGS[:1] + PROMETHEUS_TAGS[2:],
            in_module=True,
        ),
        *(
            gobuild.GoTarget(
                name,
                am,
                ALERTMANAGER_VERSION,
                f"./cmd/{name}",
                "alertmanager",
                _prom_ldflags(ALERTMANAGER_VERSION),
                tags=("netgo",),
                in_module=True,
            )
            for name in ("alertmanager", "amtool")
        ),
        *(
            gobuild.GoTarget(
                name,
                f"github.com/prometheus/{name}",
                version,
                ".",
                name,
                _prom_ldflags(version),
                tags=("netgo",),
                in_module=True,
            )
            for name, version in (
                ("node_exporter", NODE_EXPORTER_VERSION),
                ("blackbox_exporter", BLACKBOX_EXPORTER_VERSION),
            )
        ),
        gobuild.GoTarget(
            "kube-state-metrics",
            ksm,
            KUBE_STATE_METRICS_VERSION,
            ".",
            "kube-state-metrics",
            (
                *_prom_ldflags(KUBE_STATE_METRICS_VERSION),
                f"-X {ksm}/pkg/app.ClientGoVersion=unknown",
            ),
            in_module=True,
            prepare=("replaces", _ksm_replaces),
        ),
    )


def go_targets(rel: Release) -> tuple[gobuild.GoTarget, ...]:
    """Every Go program of `rel`'s bundle."""
    return (
        *(
            _k8s(n, rel.kube)
            for n in (
                "kubeadm",
                "kubectl",
                "kubelet",
                "kube-scheduler",
                "kube-proxy",
                "kube-controller-manager",
                "kube-apiserver",
            )
        ),
        gobuild.GoTarget(
            "etcd",
            "go.etcd.io/etcd/server/v3",
            rel.etcd,
            "go.etcd.io/etcd/server/v3",
            "etcd-server",
        ),
        gobuild.GoTarget(
            "etcdctl",
            "go.etcd.io/etcd/etcdctl/v3",
            rel.etcd,
            "go.etcd.io/etcd/etcdctl/v3",
            "etcdctl",
        ),
        # etcd 3.6's etcdctl has no `snapshot status`/`restore`: they live in etcdutl
        # (shipped in the same upstream release archive), which etcd_snapshot needs.
        gobuild.GoTarget(
            "etcdutl",
            "go.etcd.io/etcd/etcdutl/v3",
            rel.etcd,
            "go.etcd.io/etcd/etcdutl/v3",
            "etcdutl",
        ),
        gobuild.GoTarget(
            "coredns",
            "github.com/coredns/coredns",
            rel.coredns,
            "github.com/coredns/coredns",
            "coredns",
        ),
        # flannel's udp backend is cgo on amd64: link it statically against glibc, as upstream.
        gobuild.GoTarget(
            "flanneld",
            "github.com/flannel-io/flannel",
            FLANNEL_VERSION,
            "github.com/flannel-io/flannel",
            "flannel",
            (
                f"-X github.com/flannel-io/flannel/pkg/version.Version={FLANNEL_VERSION}",
                "-extldflags=-static",
            ),
            env=(("CGO_ENABLED", "1"),),
        ),
        gobuild.GoTarget(
            "flannel",
            "github.com/containernetworking/plugins",
            FLANNEL_CNI_VERSION,
            "github.com/containernetworking/plugins/plugins/meta/flannel",
            "cni-plugins",
        ),
        gobuild.GoTarget(
            "crictl",
            "sigs.k8s.io/cri-tools",
            rel.crictl,
            "sigs.k8s.io/cri-tools/cmd/crictl",
            "cri-tools",
        ),
        *(_containerd(n) for n in ("containerd", "containerd-shim-runc-v2", "ctr")),
        # runc needs cgo (its nsenter is C) and libseccomp: linked statically, as upstream's
        # release (`make static`), so it runs on any glibc.
        gobuild.GoTarget(
            "runc",
            "github.com/opencontainers/runc",
            RUNC_VERSION,
            "github.com/opencontainers/runc",
            "runc",
            (f"-X main.version={RUNC_VERSION.lstrip('v')}", "-extldflags=-static"),
            tags=("seccomp", "urfave_cli_no_docs", "netgo", "osusergo"),
            env=(("CGO_ENABLED", "1"),),
        ),
        *(
            gobuild.GoTarget(
                name,
                "github.com/containernetworking/plugins",
                CNI_PLUGINS_VERSION,
                f"github.com/containernetworking/plugins/{package}",
                "cni-plugins",
                (f"-X {CNI_BUILDVERSION}={CNI_PLUGINS_VERSION}",),
            )
            for name, package in CNI_PLUGINS.items()
        ),
        *monitoring_targets(),
        snapshot_controller_target(),
    )


def snapshot_controller_target() -> gobuild.GoTarget:
    """The CSI snapshot-controller, built inside its module (its own go.mod), as upstream."""
    return gobuild.GoTarget(
        "snapshot-controller",
        SNAPSHOTTER_MODULE,
        SNAPSHOTTER_VERSION,
        "./cmd/snapshot-controller",
        "external-snapshotter",
        (f"-X main.version={SNAPSHOTTER_VERSION}",),
        in_module=True,
        prepare=("client-module", _snapshotter_client),
    )


def _snapshotter_client(src: Path, cache: Path) -> None:
    """external-snapshotter's go.mod replaces its client module with ./client, a nested
    module its module zip leaves out: use the published client module of the same tag."""
    subprocess.run(
        [
            "go",
            "mod",
            "edit",
            f"-replace={SNAPSHOT_CLIENT_MODULE}={SNAPSHOT_CLIENT_MODULE}@{SNAPSHOTTER_VERSION}",
        ],
        cwd=src,
        check=True,
        env={**os.environ, "GOWORK": "off"},
    )


@dataclass(frozen=True)
class LabImage:
    """An image kubeadm (or the CNI manifest) pulls, and the binaries it is made of."""

    name: str
    reference: str
    binaries: Sequence[tuple[str, str]]  # (built program, path in image)
    entrypoint: Sequence[str] = ()
    roles: Sequence[str] = NODE
    needs_net_tools: bool = False


def images(rel: Release) -> tuple[LabImage, ...]:
    """Every image of `rel`'s bundle (kubeadm's and the CNI manifest's)."""
    return (
        *(
            LabImage(
                n, f"registry.k8s.io/{n}:{rel.kube}", [(n, f"/usr/local/bin/{n}")], roles=CONTROL
            )
            for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ),
        LabImage(
            "kube-proxy",
            f"registry.k8s.io/kube-proxy:{rel.kube}",
            [("kube-proxy", "/usr/local/bin/kube-proxy")],
            needs_net_tools=True,
        ),
        LabImage(
            "etcd",
            f"registry.k8s.io/etcd:{rel.etcd.lstrip('v')}-0",
            [("etcd", "/usr/local/bin/etcd"), ("etcdctl", "/usr/local/bin/etcdctl")],
            roles=CONTROL,
        ),
        LabImage(
            "coredns",
            f"registry.k8s.io/coredns/coredns:{rel.coredns}",
            [("coredns", "/coredns")],
            entrypoint=["/coredns"],
        ),
        LabImage(
            "pause",
            f"registry.k8s.io/pause:{rel.pause}",
            [("pause", "/pause")],
            entrypoint=["/pause"],
        ),
        LabImage(
            "kube-state-metrics",
            f"registry.k8s.io/kube-state-metrics/kube-state-metrics:{KUBE_STATE_METRICS_VERSION}",
            [("kube-state-metrics", "/kube-state-metrics")],
            entrypoint=["/kube-state-metrics", "--port=8080", "--telemetry-port=8081"],
        ),
        LabImage(
            "snapshot-controller",
            f"registry.k8s.io/sig-storage/snapshot-controller:{SNAPSHOTTER_VERSION}",
            [("snapshot-controller", "/snapshot-controller")],
            entrypoint=["/snapshot-controller"],
        ),
        LabImage(
            "flannel",
            f"ghcr.io/flannel-io/flannel:{FLANNEL_VERSION}",
            [("flanneld", "/opt/bin/flanneld"), ("flannel", "/opt/cni/bin/flannel")],
            entrypoint=["/opt/bin/flanneld"],
            needs_net_tools=True,
        ),
    )


BINARY_ROLES = {
    "kubeadm": NODE,
    "kubelet": NODE,
    "kubectl": NODE,
    "runc": NODE,
    "flannel": NODE,
    "etcd": ("etcd",),
    "etcdctl": ("etcd",),
    "etcdutl": ("etcd",),
}


@dataclass(frozen=True)
class LabArchive:
    """Programs packed like an upstream release file, under the production artifact's name."""

    name: str
    version: str  # as production's manifest writes it
    filename: str  # upstream's file name, for the cache
    target: str  # as production's manifest has it ({arch}, {version})
    members: Sequence[tuple[str, str]]  # (built program, path in the archive)
    roles: Sequence[str] = NODE
    # Files of a program's Go module, as upstream's archive has them (0644):
    # (program, path in its module, path in the archive).
    files: Sequence[tuple[str, str, str]] = ()


def _prometheus_style(
    name: str, version: str, programs: Sequence[str], files: Sequence[str], roles: Sequence[str]
) -> LabArchive:
    """An archive laid out as promu's release tarballs: NAME-VERSION.linux-ARCH/..."""
    plain = version.lstrip("v")
    top = f"{name}-{plain}.linux-{{arch}}"
    return LabArchive(
        name,
        plain,
        f"{top}.tar.gz",
        f"archives/{{arch}}/{name}-{{version}}.tar.gz",
        [(p, f"{top}/{p}") for p in programs],
        roles,
        [(programs[0], f, f"{top}/{f.rsplit('/', 1)[-1]}") for f in files],
    )


def monitoring_archives() -> tuple[LabArchive, ...]:
    """The monitoring stack, packed like its upstream release archives."""
    return (
        _prometheus_style(
            "prometheus",
            PROMETHEUS_VERSION,
            ("prometheus", "promtool"),
            ("LICENSE", "NOTICE", "documentation/examples/prometheus.yml"),
            MONITORING,
        ),
        _prometheus_style(
            "alertmanager",
            ALERTMANAGER_VERSION,
            ("alertmanager", "amtool"),
            ("LICENSE", "NOTICE", "examples/ha/alertmanager.yml"),
            MONITORING,
        ),
        _prometheus_style(
            "node_exporter",
            NODE_EXPORTER_VERSION,
            ("node_exporter",),
            ("LICENSE", "NOTICE"),
            ("all",),
        ),
        _prometheus_style(
            "blackbox_exporter",
            BLACKBOX_EXPORTER_VERSION,
            ("blackbox_exporter",),
            ("LICENSE", "NOTICE", "blackbox.yml"),
            MONITORING,
        ),
    )


def archives(rel: Release) -> tuple[LabArchive, ...]:
    """Programs packed like their upstream release files."""
    return (
        LabArchive(
            "containerd",
            CONTAINERD_VERSION.lstrip("v"),
            f"containerd-{CONTAINERD_VERSION.lstrip('v')}-linux-{{arch}}.tar.gz",
            "archives/{arch}/containerd-{version}.tar.gz",
            [(n, f"bin/{n}") for n in ("containerd", "containerd-shim-runc-v2", "ctr")],
        ),
        LabArchive(
            "cni-plugins",
            CNI_PLUGINS_VERSION,
            f"cni-plugins-linux-{{arch}}-{CNI_PLUGINS_VERSION}.tgz",
            "archives/{arch}/cni-plugins-{version}.tgz",
            [(n, f"./{n}") for n in CNI_PLUGINS],
        ),
        LabArchive(
            "crictl",
            rel.crictl,
            f"crictl-{rel.crictl}-linux-{{arch}}.tar.gz",
            "archives/{arch}/crictl-{version}.tar.gz",
            [("crictl", "crictl")],
        ),
        *monitoring_archives(),
    )


@dataclass(frozen=True)
class LabFile:
    """A file of a Go module, carried as production carries it (kind file, same name)."""

    name: str
    module: str
    version: str
    path: str  # in the module
    target: str  # as production's manifest has it
    roles: Sequence[str] = CONTROL


def files() -> tuple[LabFile, ...]:
    """The VolumeSnapshot CRDs of external-snapshotter's client module."""
    return tuple(
        LabFile(
            f"crd-{crd}",
            SNAPSHOT_CLIENT_MODULE,
            SNAPSHOTTER_VERSION,
            f"config/crd/snapshot.storage.k8s.io_{crd}.yaml",
            f"manifests/snapshot-crds/snapshot.storage.k8s.io_{crd}.yaml",
        )
        for crd in SNAPSHOT_CRDS
    )


def _copy_files(cache: Path) -> dict[str, tuple[LabFile, Path]]:
    """Each LabFile copied from Go's module cache into `cache`/files (downloaded if need be)."""
    out = {}
    for item in files():
        path = cache / "files" / item.version / Path(item.path).name
        if not path.is_file():
            _log(f"copying {item.path} from {item.module}@{item.version}")
            source = gobuild.module_dir(
                gobuild.GoTarget(item.name, item.module, item.version, ".", item.name), cache
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / item.path, f"{path}.tmp")
            os.replace(f"{path}.tmp", path)
        out[item.name] = (item, path)
    return out


# Every member's mtime: fixed, so the same programs make the same archive.
ARCHIVE_MTIME = 1_700_000_000


def prepare_lab(
    cache_dir: Path,
    arches: Sequence[str],
    manifest: Path | None = None,
    dry_run: bool = False,
    downloads: Cache | None = None,
    kube_version: str | None = None,
) -> Path:
    """Build what is missing (Go programs, images), resolve packages; write the manifest.

    `kube_version`: one of RELEASES ("1.36.3" or "v1.36.3"; default DEFAULT_RELEASE).
    """
    rel = release(kube_version)
    if manifest is not None:
        raise AirlockError(
            "--manifest cannot be combined with --profile lab: the lab profile "
            "writes its own manifest (under .airlock/cache/lab/manifest-VERSION.yml)"
        )
    for arch in arches:
        if arch != "amd64":
            raise AirlockError(
                f"the lab profile builds for amd64 only (asked: {arch}); "
                "drop --arch or use --arch amd64"
            )
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"manifest-{rel.kube}.yml"
    if dry_run and out.is_file():
        return out
    arch = "amd64"
    binaries, failed = _build_programs(cache_dir, arch, rel)
    debs = _resolve_debs(cache_dir, arch, sorted(set(HOST_PACKAGES) | set(NET_IMAGE_PACKAGES)))
    built = _build_images(
        cache_dir, arch, rel, binaries, debs, downloads or Cache(cache_dir / "downloads")
    )
    packed = _pack_archives(cache_dir, arch, rel, binaries)
    copied = _copy_files(cache_dir)
    doc = _manifest_doc(cache_dir, arch, rel, binaries, built, debs, packed, copied)
    doc["slots"] = [
        {"name": name, "note": f"not built on this machine: {why}"[:400]}
        for name, why in sorted(failed.items())
    ]
    skipped = sorted({i.name for i in images(rel)} - set(built))
    doc["slots"] += [
        {"name": f"image-{n}", "note": "left out: a program it needs was not built"}
        for n in skipped
    ]
    if failed:
        _log(
            f"bundle WITHOUT {', '.join(sorted(failed))} (images left out: "
            f"{', '.join(skipped) or 'none'}); see the manifest's slots"
        )
    out.write_text(
        "# Generated by `airlock bundle build --profile lab`; do not edit.\n"
        + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )
    return out


def _log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def release(kube_version: str | None) -> Release:
    """The Release for `kube_version` (with or without its `v`); DEFAULT_RELEASE for None."""
    if kube_version is None:
        return RELEASES[DEFAULT_RELEASE]
    want = f"v{kube_version.removeprefix('v')}"
    if want not in RELEASES:
        raise AirlockError(
            f"--kube-version {kube_version}: the lab profile builds Kubernetes "
            f"{' and '.join(RELEASES)}; pass one of those"
        )
    return RELEASES[want]


def _build_programs(cache: Path, arch: str, rel: Release) -> tuple[dict[str, Path], dict[str, str]]:
    """Build what is missing; returns (name -> binary, name -> why it could not be built).

    A program that fails to build is left out of the bundle (with the images that need
    it) and named in the manifest's slots and on stderr, rather than failing the bundle.
    """
    out: dict[str, Path] = {}
    failed: dict[str, str] = {}
    pause = cache / "bin" / arch / rel.pause / "pause"
    targets = go_targets(rel)
    if not pause.is_file() or any(
        not gobuild.output_path(cache, t, arch).is_file() for t in targets
    ):
        gobuild.require_go()
    todo = [t for t in targets if not gobuild.output_path(cache, t, arch).is_file()]
    recorded, table = gobuild.build_times(cache), estimate.typical()
    items = [
        estimate.Item(
            f"{t.name} {t.version}", *estimate.estimate(t.name, t.version, arch, recorded, table)
        )
        for t in todo
    ]
    with estimate.BuildClock(items) as clock:
        for index, target in enumerate(todo):
            clock.start(index)
            try:
                gobuild.build(target, arch, cache)
            except CommandError as exc:
                failed[target.name] = f"{target.module}@{target.version}: {exc}"
                clock.done(index, failed=str(exc))
                continue
            clock.done(index)
    for target in targets:
        if target.name not in failed:
            out[target.name] = gobuild.output_path(cache, target, arch)
    out["pause"] = _build_pause(cache, arch, rel.pause)
    return out, failed


def _build_pause(cache: Path, arch: str, version: str) -> Path:
    from airlock.paths import project_root

    out = cache / "bin" / arch / version / "pause"
    if out.is_file():
        return out
    src = project_root() / "offline-bundle" / "lab" / "pause"
    work = cache / "gomod" / "pause"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."],
        cwd=work,
        check=True,
        env={**_go_env(arch)},
    )
    return out


def _go_env(arch: str) -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch}


def _resolve_debs(cache: Path, arch: str, packages: Sequence[str]) -> list[ResolvedDeb]:
    """`packages` of Debian 12 with their dependencies, by the resolver production's
    `airlock bundle pin-packages` uses: a private apt root over Debian's signed archive
    (airlock.bundle.pin.aptroot), each sha256 from the signed index."""
    return ospackages.resolve_distro(
        distros.distro(LAB_DISTRO), arch, packages, DEB_MIRRORS, cache / "apt"
    )


def _net_tree(cache: Path, arch: str, debs: Sequence[ResolvedDeb], downloads: Cache) -> Path:
    """iptables, conntrack and their libraries, unpacked: a layer for kube-proxy/flannel."""
    wanted = {d.name for d in _resolve_debs(cache, arch, NET_IMAGE_PACKAGES)}
    chosen = [d for d in debs if d.name in wanted]
    key = sha256_text("".join(d.sha256 for d in chosen))[:16]
    tree = cache / "trees" / f"net-{key}"
    if tree.is_dir():
        return tree
    outcome = fetch_all(
        [Request(d.url, d.sha256, d.name) for d in chosen], downloads, progress=False
    )
    if outcome.errors:
        raise AirlockError("; ".join(str(e) for e in outcome.errors.values()))
    tmp = tree.with_name(tree.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in chosen:
        subprocess.run(["dpkg-deb", "-x", str(outcome.paths[deb.sha256]), str(tmp)], check=True)
    for doc in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(tmp / doc, ignore_errors=True)
    # Debian's postinst would make these with update-alternatives; nft, Debian 12's default.
    for name in IPTABLES_COMMANDS:
        link = tmp / "usr" / "sbin" / name
        if not link.exists():
            link.symlink_to("xtables-nft-multi")
    tmp.rename(tree)
    return tree


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _build_images(
    cache: Path,
    arch: str,
    rel: Release,
    binaries: dict[str, Path],
    debs: Sequence[ResolvedDeb],
    downloads: Cache,
) -> dict[str, tuple[LabImage, Path]]:
    out = {}
    net_tree: Path | None = None
    for image in images(rel):
        if any(b not in binaries for b, _ in image.binaries):
            continue
        inputs = "".join(sha256_file(binaries[b]) for b, _ in image.binaries)
        if image.needs_net_tools:
            net_tree = net_tree or _net_tree(cache, arch, debs, downloads)
            inputs += net_tree.name
        key = sha256_text(image.reference + inputs)[:16]
        tag = image.reference.rsplit(":", 1)[1]
        path = cache / "images" / arch / f"{image.name}_{tag}_{key}.oci.tar"
        if not path.is_file():
            _log(f"assembling image {image.reference}")
            files = [oci.ImageFile(binaries[b], dest) for b, dest in image.binaries]
            spec = oci.ImageSpec(
                image.reference,
                arch,
                [files],
                entrypoint=image.entrypoint,
                tree_layers=[net_tree] if image.needs_net_tools and net_tree else [],
            )
            oci.write_oci_archive(spec, path)
        out[image.name] = (image, path)
    return out


def _pack_archives(
    cache: Path, arch: str, rel: Release, binaries: dict[str, Path]
) -> dict[str, tuple[LabArchive, Path]]:
    """Each archive whose programs were all built, packed once per set of inputs."""
    out = {}
    for archive in archives(rel):
        if any(b not in binaries for b, _ in archive.members):
            continue
        key = sha256_text(
            "".join(sha256_file(binaries[b]) for b, _ in archive.members)
            + repr((archive.members, archive.files))
        )[:16]
        path = cache / "archives" / arch / key / archive.filename.format(arch=arch)
        if not path.is_file():
            _log(f"packing {path.name}")
            files = [(binaries[b], dest, 0o755) for b, dest in archive.members]
            files += [
                (_module_file(cache, program, src), dest, 0o644)
                for program, src, dest in archive.files
            ]
            write_tar_gz(path, [(f, d.format(arch=arch), m) for f, d, m in files])
        out[archive.name] = (archive, path)
    return out


def _module_file(cache: Path, program: str, relpath: str) -> Path:
    """A file of `program`'s Go module, from the module cache (downloaded if need be)."""
    target = next(t for t in monitoring_targets() if t.name == program)
    return gobuild.module_dir(target, cache) / relpath


def write_tar_gz(path: Path, files: Sequence[tuple[Path, str, int]]) -> None:
    """A reproducible .tar.gz (root-owned, fixed mtime) of (source, name, mode)."""
    with tar_writer(
        path,
        fmt=tarfile.GNU_FORMAT,
        gzipped=True,
        mtime=ARCHIVE_MTIME,
        owner="root",
        part_suffix=".tmp",
    ) as tar:
        for source, arcname, mode in files:
            tar.add_file(arcname, source, mode)


def _manifest_doc(
    cache: Path,
    arch: str,
    rel: Release,
    binaries: dict[str, Path],
    built: dict[str, tuple[LabImage, Path]],
    debs: Sequence[ResolvedDeb],
    packed: dict[str, tuple[LabArchive, Path]],
    copied: dict[str, tuple[LabFile, Path]],
) -> dict[str, Any]:
    def local(path: Path, **entry: Any) -> dict[str, Any]:
        """An entry for a file made here: URL under the `lab` mirror, its sha256."""
        rel = str(path.relative_to(cache)).replace(f"/{arch}/", "/{arch}/")
        return {**entry, "url": "{mirror.lab}/" + rel, "sha256": {arch: sha256_file(path)}}

    versions = {t.name: t.version for t in go_targets(rel)} | {"pause": rel.pause}
    artifacts = [
        local(
            path,
            name=name,
            kind="binary",
            version=versions[name],
            target=f"bin/{{arch}}/{name}",
            roles=list(BINARY_ROLES[name]),
        )
        for name, path in sorted(binaries.items())
        if name in BINARY_ROLES
    ]
    for name, (image, path) in sorted(built.items()):
        tag = image.reference.rsplit(":", 1)[1]
        artifacts.append(
            local(
                path,
                name=f"image-{name}",
                component=name,
                kind="image",
                version=tag,
                image=image.reference,
                target=f"images/{{arch}}/{name}_{tag}.oci.tar",
                roles=list(image.roles),
            )
        )
    artifacts += [
        local(
            path,
            name=name,
            kind="archive",
            version=archive.version,
            target=archive.target,
            roles=list(archive.roles),
        )
        for name, (archive, path) in sorted(packed.items())
    ]
    artifacts += [
        local(
            path,
            name=name,
            kind="file",
            version=item.version,
            target=item.target,
            roles=list(item.roles),
        )
        for name, (item, path) in sorted(copied.items())
    ]
    artifacts += deb_artifacts(debs, arch)
    return {
        "schema": 1,
        "kube_version": rel.kube,
        "architectures": [arch],
        "mirrors": {"lab": cache.resolve().as_uri(), **DEB_MIRRORS},
        "artifacts": artifacts,
    }


# Debian's archive, under the mirror names of production's manifest.
DEB_MIRRORS = {
    "debian": "http://deb.debian.org/debian",
    "debian-security": "http://deb.debian.org/debian-security",
}
LAB_DISTRO = "debian-12"


def deb_artifacts(debs: Sequence[ResolvedDeb], arch: str) -> list[dict[str, Any]]:
    """Manifest entries for resolved .debs (as production's pinned files have them)."""
    dist = distros.distro(LAB_DISTRO)
    return [ospackages.deb_entry(deb, dist, arch, DEB_MIRRORS) for deb in debs]
