"""Build what the conformance run needs: e2e.test, ginkgo and the suite's test images.

Programs come from their Go modules (airlock.lab.bundle.gobuild), the Kubernetes ones from
the same release the lab bundle runs (k8s.io/kubernetes DEFAULT_RELEASE) in a wrapper module
of their own (`kubernetes-e2e`: its go.mod gains the test dependencies, and must not change
what the bundle's own kubernetes module resolves).

The images are what the `[Conformance]` specs of that release run, under the references
its test/utils/image/manifest.go gives (`e2e.test --list-images` prints them). Upstream
builds them on Alpine or Debian images pulled from Docker Hub; here each root file system
is unpacked from Debian 12 packages resolved with their dependencies by the resolver the
bundle uses (airlock.bundle.pin: signed indexes, each .deb's sha256 checked), with what
the image's Dockerfile adds. Where the content differs from upstream's, IMAGES says how
(`note`); docs/conformance.md lists it. Outputs are cached by their inputs under
`<cache>/conformance/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from airlock.bundle.build.download import Cache, Request, fetch_all, sha256_file
from airlock.bundle.pin import distros, ospackages
from airlock.bundle.pin.aptroot import ResolvedDeb
from airlock.errors import AirlockError
from airlock.lab.bundle import gobuild, oci, profile

E2E_REGISTRY = "registry.k8s.io/e2e-test-images"
# The suite's own programs (the images name theirs).
SUITE = frozenset({"e2e.test", "ginkgo"})
# ginkgo of the version k8s.io/kubernetes' go.mod requires (the CLI runs e2e.test in parallel).
GINKGO_VERSION = "v2.32.0"
# The sample API server the Aggregator spec deploys: the module of the image's tag.
SAMPLE_APISERVER_VERSION = "v0.29.2"
# busybox 1.37.0, the release upstream's e2e image is made from, built here from its
# release tarball (Debian's archive carries it as the source package's orig tarball; this
# sha256 is the one Debian's signed trixie Sources index and busybox.net give). Not Debian's
# binary packages: a Debian patch (revert-9c143ce5...) makes their ash drop environment
# variables whose names are not shell identifiers ("data-1"), which upstream's ash passes
# on and the ConfigMap/Secret envFrom specs print with `sh -c env`.
BUSYBOX_VERSION = "1.37.0"
BUSYBOX_SOURCE = (
    "http://deb.debian.org/debian/pool/main/b/busybox/busybox_1.37.0.orig.tar.bz2",
    "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4",
)

# What every Debian-based image holds (Debian's Essential set, less the package tools).
BASE_PACKAGES = (
    "base-files",
    "base-passwd",
    "bash",
    "bsdutils",
    "coreutils",
    "dash",
    "debianutils",
    "diffutils",
    "findutils",
    "grep",
    "gzip",
    "hostname",
    "libc-bin",
    "login",
    "mawk",
    "ncurses-bin",
    "procps",
    "sed",
    "sysvinit-utils",
    "tar",
    "util-linux",
)
# agnhost's Dockerfile: apk add bind-tools curl netcat-openbsd iproute2 iperf bash
# util-linux-misc socat; Alpine's busybox adds ping, wget, netstat and the rest.
AGNHOST_PACKAGES = (
    *BASE_PACKAGES,
    "bind9-dnsutils",
    "curl",
    "iperf",
    "iproute2",
    "iputils-ping",
    "net-tools",
    "netcat-openbsd",
    "socat",
    "wget",
)
# What Debian's postinst scripts would link with update-alternatives (not run here).
ALTERNATIVES = {
    "usr/bin/awk": "mawk",
    "bin/nc": "nc.openbsd",
    "bin/netcat": "nc.openbsd",
    "bin/sh": "dash",
    "usr/bin/which": "which.debianutils",
}
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"
NGINX_CONF = """\
user www-data;
worker_processes auto;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events {
    worker_connections 1024;
}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
    }
}
"""
NGINX_INDEX = """\
<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1></body></html>
"""


def go_targets(kube: str) -> dict[str, gobuild.GoTarget]:
    """The programs: e2e.test, ginkgo, agnhost, nnp (nonewprivs), sample-apiserver."""
    k8s = "k8s.io/kubernetes"
    stamp = gobuild.kube_ldflags(kube)
    return {
        "e2e.test": gobuild.GoTarget(
            "e2e.test", k8s, kube, f"{k8s}/test/e2e", "kubernetes-e2e", stamp, test_binary=True
        ),
        "agnhost": gobuild.GoTarget(
            "agnhost", k8s, kube, f"{k8s}/test/images/agnhost", "kubernetes-e2e", stamp
        ),
        "nnp": gobuild.GoTarget(
            "nnp", k8s, kube, f"{k8s}/test/images/nonewprivs", "kubernetes-e2e", stamp
        ),
        "ginkgo": gobuild.GoTarget(
            "ginkgo",
            "github.com/onsi/ginkgo/v2",
            GINKGO_VERSION,
            "./ginkgo",
            "ginkgo",
            in_module=True,
        ),
        "sample-apiserver": gobuild.GoTarget(
            "sample-apiserver",
            "k8s.io/sample-apiserver",
            SAMPLE_APISERVER_VERSION,
            ".",
            "sample-apiserver",
            gobuild.kube_ldflags(f"v1.{SAMPLE_APISERVER_VERSION.split('.', 1)[1]}"),
            in_module=True,
        ),
    }


@dataclass(frozen=True)
class TestImage:
    """One image of the suite: its root file system and how it starts."""

    reference: str
    packages: Sequence[str] = ()  # Debian 12 packages unpacked (with their dependencies)
    busybox: bool = False  # busybox built from source, its applets linked in /bin
    programs: Sequence[tuple[str, str, int]] = ()  # (program, path in the image, mode)
    module_files: Sequence[tuple[str, str]] = ()  # (path in k8s.io/kubernetes, in image)
    texts: Sequence[tuple[str, str]] = ()  # (path in image, content)
    dirs: Sequence[str] = ()
    links: Sequence[tuple[str, str]] = ()  # (path in the image, what it points to)
    users: Sequence[str] = ()  # passwd lines added
    groups: Sequence[str] = ()  # group lines added
    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    user: str = ""
    note: str = ""  # how it differs from upstream's image
    env: Sequence[str] = field(default=(f"PATH={oci.DEFAULT_PATH}",))

    @property
    def name(self) -> str:
        return self.reference.rsplit("/", 1)[1].split(":")[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def images(kube: str, etcd_tag: str) -> tuple[TestImage, ...]:
    """The images the `[Conformance]` specs of `kube` run (see test/utils/image)."""
    agnhost = {
        "packages": AGNHOST_PACKAGES,
        "programs": (("agnhost", "/agnhost", 0o755), ("coredns", "/coredns", 0o755)),
        "module_files": (
            ("test/images/agnhost/porter/localhost.crt", "/localhost.crt"),
            ("test/images/agnhost/porter/localhost.key", "/localhost.key"),
        ),
        "dirs": ("/uploads",),
        "links": (("/agnhost-2", "agnhost"),),
        "texts": (),
        "users": ("user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh",),
        "groups": (
            "user-defined-in-image:x:1000:",
            "group-defined-in-image:x:50000:user-defined-in-image",
        ),
        "entrypoint": ("/agnhost",),
    }
    agnhost_note = (
        f"Debian 12 instead of Alpine 3.21; agnhost of Kubernetes {kube}; /coredns is the "
        "bundle's CoreDNS (upstream: 1.6.2); no /var/registry (the fake registry server's "
        "images come from the internet)"
    )
    html = "test/images/{0}/html"
    return (
        TestImage(f"{E2E_REGISTRY}/agnhost:2.66.1", cmd=("pause",), note=agnhost_note, **agnhost),
        TestImage(
            f"{E2E_REGISTRY}/agnhost:2.55",
            cmd=("pause",),
            note=agnhost_note + "; the same agnhost as 2.66.1 (2.55 is an older agnhost)",
            **agnhost,
        ),
        *(
            TestImage(
                f"{E2E_REGISTRY}/{pet}:1.8",
                cmd=("test-webserver",),
                note=f"agnhost as above, plus {pet}'s page",
                **{
                    **agnhost,
                    "module_files": (
                        *agnhost["module_files"],
                        (f"{html.format(pet)}/{pet}.jpg", f"/{pet}.jpg"),
                        (f"{html.format(pet)}/data.json", "/data.json"),
                    ),
                },
            )
            for pet in ("kitten", "nautilus")
        ),
        TestImage(
            f"{E2E_REGISTRY}/busybox:1.37.0-2",
            busybox=True,
            cmd=("sh",),
            packages=("base-passwd",),
            note="busybox 1.37.0 built here (static, glibc, defconfig: upstream's image is "
            "the glibc variant), with passwd and group of Debian's base-passwd",
        ),
        *(
            TestImage(
                f"{E2E_REGISTRY}/nginx:{tag}",
                packages=(*BASE_PACKAGES, "nginx"),
                texts=(
                    ("/etc/nginx/nginx.conf", NGINX_CONF),
                    ("/usr/share/nginx/html/index.html", NGINX_INDEX),
                ),
                dirs=("/var/lib/nginx/body", "/var/log/nginx", "/run"),
                cmd=("nginx", "-g", "daemon off;"),
                note=f"Debian 12's nginx 1.22 instead of nginx {tag.split('-')[0]} on Alpine",
            )
            for tag in ("1.27.0-2", "1.28.0-2")
        ),
        TestImage(
            f"{E2E_REGISTRY}/nonewprivs:1.4",
            packages=BASE_PACKAGES,
            programs=(("nnp", "/usr/local/bin/nnp", 0o4755),),
            cmd=("nnp",),
            note="Debian 12 instead of Alpine 3.22",
        ),
        TestImage(
            f"{E2E_REGISTRY}/nonroot:1.5",
            packages=BASE_PACKAGES,
            user="1234",
            cmd=("/bin/sh",),
            note="Debian 12's Essential packages (upstream: debian-base bookworm)",
        ),
        TestImage(
            f"{E2E_REGISTRY}/glibc-dns-testing:2.1.1",
            packages=(*BASE_PACKAGES, "bind9-dnsutils"),
            programs=(("coredns", "/coredns", 0o755),),
            cmd=("/bin/bash",),
            note="/coredns is the bundle's CoreDNS (upstream: 1.5.0)",
        ),
        TestImage(
            f"{E2E_REGISTRY}/sample-apiserver:1.29.2",
            programs=(("sample-apiserver", "/sample-apiserver", 0o755),),
            dirs=("/tmp",),
            entrypoint=("/sample-apiserver",),
            note="the static binary alone (upstream: on Alpine 3.22)",
        ),
        TestImage(
            f"registry.k8s.io/etcd:{etcd_tag}",
            programs=(
                ("etcd", "/usr/local/bin/etcd", 0o755),
                ("etcdctl", "/usr/local/bin/etcdctl", 0o755),
            ),
            dirs=("/tmp", "/var/lib/etcd"),
            note="the bundle's etcd (the same minor) as a static binary, without a shell",
        ),
    )


@dataclass(frozen=True)
class Built:
    """What build() made: programs by name and image archives by reference."""

    programs: dict[str, Path]
    archives: dict[str, Path]
    notes: dict[str, str]


def build(
    cache: Path, arch: str = "amd64", kube: str | None = None, only: Sequence[str] = ()
) -> Built:
    """Build (or reuse) the programs and images; `cache` is the lab bundle's cache.

    `only`: just these images (references) and the programs they are made of; by default
    every image, e2e.test and ginkgo.
    """
    if arch != "amd64":
        raise AirlockError(f"the conformance images are built for amd64 only (asked: {arch})")
    rel = profile.release(kube)
    etcd_tag = f"{rel.etcd.lstrip('v').rsplit('.', 1)[0]}.0-0"
    chosen = [i for i in images(rel.kube, etcd_tag) if not only or i.reference in only]
    if unknown := sorted(set(only) - {i.reference for i in chosen}):
        raise AirlockError(f"no conformance test image {', '.join(unknown)}")
    needed = {p for i in chosen for p, _, _ in i.programs} | (set() if only else SUITE)
    targets = {
        **{t.name: t for t in profile.go_targets(rel)},
        **go_targets(rel.kube),
    }
    if any(not gobuild.output_path(cache, targets[n], arch).is_file() for n in needed):
        gobuild.require_go()
    programs = {name: _program(cache, targets[name], arch) for name in sorted(needed)}
    downloads = Cache(cache / "downloads")
    if any(i.busybox for i in chosen):
        programs["busybox"] = _busybox(cache, arch, downloads)
    # k8s.io/kubernetes in Go's module cache, for the files images take from it.
    module = (
        gobuild.module_dir(go_targets(rel.kube)["agnhost"], cache)
        if any(i.module_files for i in chosen)
        else Path()
    )
    archives: dict[str, Path] = {}
    notes: dict[str, str] = {}
    for image in chosen:
        archives[image.reference] = _image(cache, arch, image, programs, module, downloads)
        notes[image.reference] = image.note
    return Built(programs, archives, notes)


def _program(cache: Path, target: gobuild.GoTarget, arch: str) -> Path:
    path = gobuild.output_path(cache, target, arch)
    if not path.is_file():
        _log(f"building {target.name} {target.version} from {target.module} (slow)")
        gobuild.build(target, arch, cache)
    return path


def _image(
    cache: Path,
    arch: str,
    image: TestImage,
    programs: dict[str, Path],
    module: Path,
    downloads: Cache,
) -> Path:
    debs = _debs(cache, arch, image)
    inputs = [image.reference, repr(image), *(d.sha256 for d in debs)]
    inputs += [sha256_file(programs[p]) for p, _, _ in image.programs]
    inputs += [sha256_file(programs["busybox"])] if image.busybox else []
    inputs += [sha256_file(module / src) for src, _ in image.module_files]
    key = hashlib.sha256("\n".join(inputs).encode()).hexdigest()[:16]
    out = cache / "conformance" / "images" / arch / f"{image.name}_{image.tag}_{key}.oci.tar"
    if out.is_file():
        return out
    _log(f"assembling image {image.reference}")
    # A tree of its own per build, so two builds at once (make conformance beside make
    # test's image tests) never share one; the archive is written atomically.
    trees = cache / "conformance" / "trees"
    trees.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix=f"{image.name}-{key}-", dir=trees))
    try:
        _unpack(debs, tree, downloads)
        if image.busybox:
            _link_busybox(tree, programs["busybox"])
        _add_accounts(tree, image)
        for program, dest, mode in image.programs:
            _place(tree, dest, programs[program].read_bytes(), mode)
        for src, dest in image.module_files:
            _place(tree, dest, (module / src).read_bytes(), 0o644)
        for dest, text in image.texts:
            _place(tree, dest, text.encode(), 0o644)
        for link, target in image.links:
            (tree / link.lstrip("/")).symlink_to(target)
        for directory in (*image.dirs, "/tmp"):
            (tree / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (tree / "tmp").chmod(0o1777)
        spec = oci.ImageSpec(
            image.reference,
            arch,
            [],
            entrypoint=image.entrypoint,
            cmd=image.cmd,
            env=image.env,
            user=image.user,
            tree_layers=[tree],
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        oci.write_oci_archive(spec, out)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return out


def _debs(cache: Path, arch: str, image: TestImage) -> list[ResolvedDeb]:
    if not image.packages:
        return []
    found = ospackages.resolve_distro(
        distros.distro(profile.LAB_DISTRO),
        arch,
        sorted(image.packages),
        profile.DEB_MIRRORS,
        cache / "apt",
    )
    # busybox's image takes only the account files of base-passwd, not its dependencies.
    return [d for d in found if d.name in image.packages] if image.busybox else found


def _busybox(cache: Path, arch: str, downloads: Cache) -> Path:
    """busybox built from its release tarball: static, glibc, defconfig (cached)."""
    out = cache / "bin" / arch / f"busybox-{BUSYBOX_VERSION}" / "busybox"
    if out.is_file():
        return out
    url, sha256 = BUSYBOX_SOURCE
    outcome = fetch_all([Request(url, sha256, "busybox-source")], downloads, progress=False)
    if outcome.errors:
        raise AirlockError("; ".join(str(e) for e in outcome.errors.values()))
    work = cache / "conformance" / "busybox-build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _log(f"building busybox {BUSYBOX_VERSION} from source")
    with tarfile.open(outcome.paths[sha256], "r:bz2") as tar:  # checked by its sha256
        tar.extractall(work)
    src = work / f"busybox-{BUSYBOX_VERSION}"
    _make(src, "defconfig")
    config = src / ".config"
    config.write_text(config.read_text().replace("# CONFIG_STATIC is not set", "CONFIG_STATIC=y"))
    _make(src, f"-j{os.cpu_count() or 1}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "busybox", f"{out}.tmp")
    os.chmod(f"{out}.tmp", 0o755)
    os.replace(f"{out}.tmp", out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _make(src: Path, target: str) -> None:
    proc = subprocess.run(
        ["nice", "-n", "19", "make", target],
        cwd=src,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    if proc.returncode:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise AirlockError(
            f"busybox {BUSYBOX_VERSION}: make {target} failed in {src}: {last}; "
            "gcc, make and libc6-dev (Debian's build-essential) are needed"
        )


def _unpack(debs: Sequence[ResolvedDeb], tree: Path, downloads: Cache) -> None:
    if not debs:
        return
    outcome = fetch_all([Request(d.url, d.sha256, d.name) for d in debs], downloads, progress=False)
    if outcome.errors:
        raise AirlockError("; ".join(str(e) for e in outcome.errors.values()))
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(outcome.paths[deb.sha256]), str(tree)], check=True)
    for doc in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"):
        shutil.rmtree(tree / doc, ignore_errors=True)
    for link, target in ALTERNATIVES.items():
        path = tree / link
        if (path.parent / target).exists() and not path.exists():
            path.symlink_to(target)
    masters = tree / "usr" / "share" / "base-passwd"
    for name in ("passwd", "group"):
        if (masters / f"{name}.master").is_file():
            (tree / "etc").mkdir(exist_ok=True)
            shutil.copyfile(masters / f"{name}.master", tree / "etc" / name)
    if (tree / "usr" / "sbin").is_dir() or (tree / "bin").is_dir():
        _place(tree, "/etc/nsswitch.conf", NSSWITCH.encode(), 0o644)


def _link_busybox(tree: Path, binary: Path) -> None:
    """busybox in /bin with a link per applet, as upstream's image has (busybox --list)."""
    _place(tree, "/bin/busybox", binary.read_bytes(), 0o755)
    applets = subprocess.run(
        [str(binary), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox" and not (tree / "bin" / applet).exists():
            (tree / "bin" / applet).symlink_to("busybox")


def _add_accounts(tree: Path, image: TestImage) -> None:
    for name, lines in (("passwd", image.users), ("group", image.groups)):
        if not lines:
            continue
        path = tree / "etc" / name
        path.write_text(path.read_text() + "".join(f"{line}\n" for line in lines))


def _place(tree: Path, dest: str, data: bytes, mode: int) -> None:
    path = tree / dest.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _log(message: str) -> None:
    print(f"conformance: {message}", file=sys.stderr, flush=True)
