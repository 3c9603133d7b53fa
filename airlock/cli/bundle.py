"""The `airlock bundle` command: build and verify offline bundles.

The main CLI calls `register(subparsers)`; each handler takes the argparse Namespace and
returns an exit code, raising AirlockError subclasses for problems a user can fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airlock.arch import ARCHES, host_arch
from airlock.errors import AirlockError

if TYPE_CHECKING:
    from airlock.bundle.manifest import Manifest, ResolvedArtifact

PROFILES = ("production", "lab")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bundle build`, `bundle verify` and `bundle pin-packages` to the command line."""
    bundle = subparsers.add_parser(
        "bundle",
        help="build and verify the offline bundle",
        description="The offline bundle: every binary, image, OS package and wheel a "
        "cluster needs, pinned by checksum, in one archive.",
    )
    sub = bundle.add_subparsers(dest="bundle_command", required=True, metavar="COMMAND")
    _add_build(sub)
    _add_verify(sub)
    _add_pin_packages(sub)


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="download, verify and pack everything the manifest pins",
        description="On a connected machine: fetch every artifact of the manifest (in "
        "parallel, resumable, cached), verify each checksum and write one archive with "
        "MANIFEST.json and SHA256SUMS. The lab profile builds its artifacts locally first.",
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="production",
        help="production: upstream sources; lab: built here (default production)",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="manifest file (default offline-bundle/manifest.yml; the lab profile "
        "generates its own)",
    )
    p.add_argument(
        "--arch",
        action="append",
        default=None,
        choices=ARCHES,
        help="architecture to include; repeat for several (default: this machine's)",
    )
    p.add_argument(
        "--kube-version",
        default=None,
        metavar="VERSION",
        help="the Kubernetes release the bundle carries (one bundle per release; default: "
        "the manifest's kube_version); one of the manifest's kube_versions",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="archive to write (default .airlock/bundles/airlock-PROFILE-KUBEVERSION.tar)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="download cache (default .airlock/cache/bundle)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list every source and its target; fetch nothing"
    )
    p.add_argument("--jobs", type=int, default=4, help="parallel downloads (default 4)")
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="NAME=URL replaces one mirror of the manifest; a bare URL replaces "
        "all of them with URL/NAME (an internal mirror)",
    )
    p.add_argument(
        "--signing-key",
        type=Path,
        default=None,
        help="PEM private key (ed25519, RSA or ECDSA) to sign the bundle's INDEX with",
    )
    p.add_argument(
        "--no-wheels",
        action="store_true",
        help="leave out airlock's own wheels (faster; the bundle then cannot "
        "install airlock on the deploy machine)",
    )
    p.set_defaults(handler=build_command)


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check every member of a bundle, offline",
        description="Check every member of BUNDLE (a regular file, a plain relative name, "
        "mode 0644/0755, owned by root, once) against INDEX, SHA256SUMS and MANIFEST.json; "
        "name each bad, missing, extra, truncated or altered member. Exit 1 if any.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE")
    p.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="PEM public key; INDEX.sig must then be a valid signature",
    )
    p.set_defaults(handler=verify_command)


def _add_pin_packages(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pin-packages",
        help="resolve the manifest's OS packages and pin every .deb (connected machine)",
        description="For each distribution of the manifest's os_packages and each "
        "architecture: resolve the packages with their dependencies from the signed "
        "archive (a private apt; this machine's apt is not touched) and write the pinned "
        "file the manifest names (version, URL under a mirror, sha256 per .deb).",
    )
    p.add_argument(
        "--manifest", type=Path, default=None, help="default offline-bundle/manifest.yml"
    )
    p.add_argument(
        "--distro",
        action="append",
        default=[],
        help="distribution to pin (debian-12, ubuntu-22.04, ubuntu-24.04); repeat for "
        "several (default: every one in os_packages)",
    )
    p.add_argument(
        "--arch",
        action="append",
        default=[],
        choices=ARCHES,
        help="architecture to resolve; the pinned file keeps the others as they were "
        "(default: the manifest's architectures)",
    )
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="resolve from this mirror instead (as for build); URLs stay under {mirror.NAME}",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="private apt roots and keyrings (default .airlock/cache/apt)",
    )
    p.set_defaults(handler=pin_packages_command)


def pin_packages_command(args: argparse.Namespace) -> int:
    from airlock.bundle.manifest import default_manifest_path
    from airlock.bundle.pin.ospackages import pin
    from airlock.paths import state_dir

    cache = args.cache_dir or state_dir() / "cache" / "apt"
    manifest = args.manifest or default_manifest_path()
    for result in pin(manifest, args.distro, args.arch, args.mirror, cache):
        counts = ", ".join(
            f"{arch} {n} .debs {size / 2**20:.1f} MiB" for arch, (n, size) in result.counts.items()
        )
        print(f"{result.distro}: {counts} -> {result.path}")
    return 0


def build_command(args: argparse.Namespace) -> int:
    from airlock.bundle.build import pipeline as builder
    from airlock.bundle.build.download import Cache
    from airlock.bundle.build.signing import signer
    from airlock.bundle.manifest import default_manifest_path, load_manifest, override_mirrors
    from airlock.paths import state_dir

    if args.jobs < 1:
        raise AirlockError(f"--jobs {args.jobs}: give at least 1")
    cache_dir = args.cache_dir or state_dir() / "cache" / "bundle"
    arches = args.arch or [host_arch()]
    extra = []
    manifest_path = args.manifest
    if args.profile == "lab":
        from airlock.lab.bundle.profile import prepare_lab

        manifest_path = prepare_lab(
            state_dir() / "cache" / "lab",
            arches,
            manifest_path,
            dry_run=args.dry_run,
            downloads=Cache(cache_dir),
            kube_version=args.kube_version,
        )
    manifest = load_manifest(
        manifest_path or default_manifest_path(),
        None if args.profile == "lab" else args.kube_version,
    )
    if args.profile == "production":
        _refuse_incomplete(manifest)
    _warn_unpinned(manifest.path, arches)
    if not args.no_wheels:
        from airlock.bundle.build.wheels import wheel_members

        extra += wheel_members(cache_dir / "wheels", dry_run=args.dry_run)
    output = args.output or builder.default_archive(args.profile, manifest.kube_version)
    opts = builder.BuildOptions(
        manifest=manifest,
        arches=arches,
        output=output,
        cache=Cache(cache_dir),
        mirrors=override_mirrors(manifest, args.mirror),
        jobs=args.jobs,
        profile=args.profile,
        extra_members=extra,
        sign=signer(args.signing_key) if args.signing_key else None,
        generated=[] if args.dry_run else _generated(manifest, cache_dir, arches),
    )
    if args.dry_run:
        builder.print_plan(builder.plan(opts), extra)
        return 0
    result = builder.build(opts)
    print(
        f"bundle {result.output}: {result.artifacts} files, {result.size / 2**20:.1f} MiB, "
        f"{result.fetched} fetched, {result.reused} from cache, {result.seconds:.1f} s"
    )
    return 0


def _generated(manifest: Manifest, cache_dir: Path, arches: list[str]) -> list[ResolvedArtifact]:
    """What the build makes itself: the upstream alert rules, rendered from their mixins,
    when the bundle carries the monitoring stack (an artifact for group monitoring)."""
    if not any("monitoring" in a.roles for a in manifest.artifacts):
        return []
    from airlock.bundle.build import mixins
    from airlock.bundle.build.download import sha256_file
    from airlock.bundle.manifest import ResolvedArtifact

    path = mixins.render_bundle_file(cache_dir / "mixins")
    version = mixins.version_key()
    return [
        ResolvedArtifact(
            name=mixins.ARTIFACT,
            component=mixins.ARTIFACT,
            kind="file",
            version=version,
            arch=arch,
            url=path.resolve().as_uri(),
            target=f"files/{mixins.ARTIFACT}-{version}.tar.gz",
            sha256=sha256_file(path),
            roles=("monitoring",),
        )
        for arch in arches
    ]


def _refuse_incomplete(manifest: Manifest) -> None:
    """Refuse, before any download, a release whose slots name it (not pinned yet)."""
    from airlock.bundle.manifest import missing_for

    missing = missing_for(manifest)
    if missing:
        raise AirlockError(
            f"Kubernetes {manifest.kube_version}: {manifest.path} does not pin "
            f"{', '.join(missing)} yet (slots of this release); nothing was downloaded. "
            "Pin them first: each slot's note says how (docs/bundle.md, production manifest)"
        )


def _warn_unpinned(manifest: Path, arches: list[str]) -> None:
    from airlock.bundle.manifest.ospackages import unpinned

    for what in unpinned(manifest, arches):
        print(
            f"airlock: warning: os_packages {what} is not pinned: this bundle has no OS "
            "packages for those hosts (airlock bundle pin-packages --distro D --arch A)",
            file=sys.stderr,
        )


def verify_command(args: argparse.Namespace) -> int:
    from airlock.bundle.build.verify import verify_bundle

    report = verify_bundle(args.bundle, args.public_key)
    if report.ok:
        signed = ", signature valid" if report.signed else ""
        print(
            f"bundle {args.bundle}: {report.members} members, "
            f"{report.bytes / 2**20:.1f} MiB, all checksums match{signed}"
        )
        return 0
    for problem in report.problems:
        print(f"bundle {args.bundle}: {problem}", file=sys.stderr)
    print(
        f"bundle {args.bundle}: FAILED, {len(report.problems)} "
        f"problem{'' if len(report.problems) == 1 else 's'}; do not install it",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """`python -m airlock.bundle`: the bundle commands alone (used by playbooks on hosts
    where only the controller's venv runs, and before the main CLI registers them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["bundle"]:  # `python -m airlock.bundle verify X` == `... bundle verify X`
        argv.insert(0, "bundle")
    parser = argparse.ArgumentParser(prog="python -m airlock.bundle")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except AirlockError as exc:
        print(f"airlock: {exc}", file=sys.stderr)
        return 2
