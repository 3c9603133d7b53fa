"""The bundle manifest: one pinned list of everything a cluster needs, per architecture.

File format (YAML, see offline-bundle/manifest.yml for the documented production one)::

    schema: 1
    kube_version: v1.37.2         # the release a bundle carries unless --kube-version says
    kube_versions: [v1.37.2, v1.36.3, v1.35.4]   # every release pinned (default: kube_version)
    architectures: [amd64, arm64]
    mirrors:                      # name -> base URL; `--mirror NAME=URL` overrides one,
      k8s: https://dl.k8s.io      # `--mirror URL` points every mirror at URL/NAME
    artifacts:
      - name: kubeadm             # unique
        component: kubeadm        # what the inventory checker asks about (default: name)
        kind: binary              # binary | archive | image | deb | wheel | file
        version: v1.34.4
        url: "{mirror.k8s}/release/{version}/bin/linux/{arch}/kubeadm"
        target: "bin/{arch}/kubeadm"        # path inside the bundle
        roles: [kube_control_plane, kube_node]
        kube: [v1.37.2]           # the releases it belongs to (default: every one)
        sha256: {amd64: <64 hex>, arm64: <64 hex>}   # one per architecture it exists for
      - name: kube-apiserver      # kind image from a registry: `ref` + `digest` instead of
        kind: image               # url + sha256 (a registry serves manifests by digest)
        version: v1.34.4
        ref: "{mirror.registry-k8s}/kube-apiserver:{version}"   # the mirror is docker://HOST[/PATH]
        image: registry.k8s.io/kube-apiserver:{version}  # name it is imported as (default:
                                                         # ref with the manifest's own mirrors)
        digest: sha256:<64 hex>   # the multi-arch index: every architecture; or one per
                                  # architecture {amd64: sha256:.., arm64: sha256:..}
        target: "images/{arch}/kube-apiserver_{version}.oci.tar"
    slots:                        # planned content of later issues: no version, no download
      - {name: harbor-offline-installer, issue: 5}
    os_packages:                  # per distribution: what hosts install, and the file
      debian-12:                  # `airlock bundle pin-packages` pinned it to (one kind
        pinned: packages/debian-12.yml    # deb artifact per .deb and architecture,
        packages: [conntrack, socat]      # added by load_manifest; see ospackages.py)

Rules (each breach is an error naming the entry and the fix): every artifact has a
version; every architecture an artifact lists has a 64-hex sha256 (a version without a
checksum is an error); URL templates only use `{version}`, `{arch}` and `{mirror.NAME}`
of a declared mirror; names are unique among the artifacts of one release (`kube` lists
the releases an entry belongs to, each in kube_versions); a slot that gains a version
must move to `artifacts` with its checksums. A registry image (kind image with `ref`) is pinned by
`digest` (`sha256:` + 64 hex) instead of `sha256`; its archive's sha256 is only known once
it is fetched (airlock/bundle/build/images.py) and is then recorded in the bundle like any other.

Public API (airlock.bundle.manifest), used by the inventory checker::

    m = load_manifest(path)
    m.kube_version                  # "v1.34.4"
    m.version_of("etcd")            # "v3.6.4"; raises ManifestError if absent
    m.components                    # {"etcd": "v3.6.4", "kubeadm": "v1.34.4", ...}
    m.has_version("etcd", "v3.6.4") # bool
    m.resolve("amd64", mirrors={})  # [ResolvedArtifact(url, target, sha256, ...)]
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airlock.arch import ARCHES
from airlock.errors import AirlockError

SCHEMA = 1
KINDS = ("binary", "archive", "image", "deb", "wheel", "file")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TEMPLATE_FIELDS = re.compile(r"^(version|arch|mirror\.[A-Za-z0-9_-]+)$")


class ManifestError(AirlockError):
    """The manifest is malformed; the message names the entry and the fix."""


@dataclass(frozen=True)
class Artifact:
    """One pinned entry of the manifest, before its templates are filled in."""

    name: str
    component: str
    kind: str
    version: str
    url: str
    target: str
    sha256: Mapping[str, str]
    roles: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    digest: Mapping[str, str] = field(default_factory=dict)  # registry images: arch -> digest

    @property
    def arches(self) -> tuple[str, ...]:
        return tuple(sorted(self.digest or self.sha256))

    @property
    def from_registry(self) -> bool:
        return bool(self.digest)


@dataclass(frozen=True)
class ResolvedArtifact:
    """An artifact for one architecture: a concrete URL, bundle path and checksum."""

    name: str
    component: str
    kind: str
    version: str
    arch: str
    url: str
    target: str
    sha256: str  # registry images: empty until fetched (images.fetch_images fills it in)
    roles: tuple[str, ...]
    image: str = ""  # for kind image: the reference it is imported as
    digest: str = ""  # registry images: the pinned manifest digest; url is docker://REF@DIGEST


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. See the module docstring for the API."""

    path: Path
    kube_version: str
    architectures: tuple[str, ...]
    mirrors: Mapping[str, str]
    artifacts: tuple[Artifact, ...]
    slots: tuple[Mapping[str, Any], ...] = ()

    @property
    def components(self) -> dict[str, str]:
        """Component name -> pinned version (the first entry of a component wins)."""
        out: dict[str, str] = {}
        for art in self.artifacts:
            out.setdefault(art.component, art.version)
        return out

    def version_of(self, component: str) -> str:
        try:
            return self.components[component]
        except KeyError:
            known = ", ".join(sorted(self.components))
            raise ManifestError(
                f"{self.path}: no component {component!r}; the manifest pins: {known}"
            ) from None

    def has_version(self, component: str, version: str) -> bool:
        """Whether `component` is pinned at `version` ("1.34.4" and "v1.34.4" are equal)."""
        want = version.removeprefix("v")
        return any(
            a.component == component and a.version.removeprefix("v") == want for a in self.artifacts
        )

    def resolve(
        self, arch: str, mirrors: Mapping[str, str] | None = None
    ) -> list[ResolvedArtifact]:
        """Every artifact that exists for `arch`, with mirrors overridden by `mirrors`."""
        if arch not in self.architectures:
            raise ManifestError(
                f"{self.path}: architecture {arch!r} is not in this manifest "
                f"(it has {', '.join(self.architectures)}); pick one of those with --arch"
            )
        bases = {**self.mirrors, **(mirrors or {})}
        out = []
        for art in self.artifacts:
            if arch not in art.arches:
                continue
            values = {"version": art.version, "arch": arch}
            image = _fill(str(art.extra.get("image", "")), values, self.mirrors)
            url, digest = _fill(art.url, values, bases), ""
            if art.from_registry:
                digest = art.digest[arch]
                url = f"docker://{_untagged(registry_ref(_fill(art.url, values, bases)))}@{digest}"
                image = image or registry_ref(_fill(art.url, values, self.mirrors))
            out.append(
                ResolvedArtifact(
                    name=art.name,
                    component=art.component,
                    kind=art.kind,
                    version=art.version,
                    arch=arch,
                    url=url,
                    target=_fill(art.target, values, bases),
                    sha256=art.sha256.get(arch, ""),
                    roles=art.roles,
                    image=image,
                    digest=digest,
                )
            )
        return out


def registry_ref(filled: str) -> str:
    """`docker://registry.k8s.io/pause:3.10.1` (or https://...) -> `registry.k8s.io/pause:3.10.1`.

    A registry mirror is written as a URL so that `--mirror URL` (every mirror -> URL/NAME)
    also serves registries: `https://mirror.internal/registry-k8s` names the registry path
    `mirror.internal/registry-k8s`, as a Harbor proxy project or `registry:2` laid out by
    mirror name would serve it.
    """
    return filled.split("://", 1)[1] if "://" in filled else filled


def override_mirrors(manifest: Manifest, specs: list[str]) -> dict[str, str]:
    """Turn `--mirror` values into a mirror map: `NAME=URL` sets one, `URL` sets all to URL/NAME."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if sep and "://" not in name:
            if name not in manifest.mirrors:
                raise ManifestError(
                    f"--mirror {spec}: no mirror named {name!r}; "
                    f"the manifest declares: {', '.join(sorted(manifest.mirrors))}"
                )
            out[name] = url.rstrip("/")
        else:
            out.update({n: f"{spec.rstrip('/')}/{n}" for n in manifest.mirrors})
    return out


def parse_manifest(data: Any, path: Path, kube_version: str | None = None) -> Manifest:
    """The manifest of one Kubernetes release: `kube_version` (one of kube_versions;
    default the document's kube_version) and the artifacts that belong to it."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path}: the top level must be a mapping")
    if data.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA} (found {data.get('schema')!r})")
    releases, default = _releases(data, path, kube_version, problems)
    arches = tuple(data.get("architectures") or ())
    for arch in arches:
        if arch not in ARCHES:
            problems.append(f"architectures: {arch!r} is not one of {', '.join(ARCHES)}")
    mirrors = data.get("mirrors") or {}
    if not isinstance(mirrors, dict):
        problems.append("mirrors must be a mapping of name -> base URL")
        mirrors = {}
    artifacts = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("artifacts") or []):
        art = _parse_artifact(raw, index, arches, mirrors, problems)
        if art is None:
            continue
        if not _belongs(art, releases, default, problems):
            continue
        if art.name in seen:
            problems.append(f"artifact {art.name}: the name is used twice; names must be unique")
        seen.add(art.name)
        artifacts.append(art)
    slots = tuple(data.get("slots") or ())
    for slot in slots:
        if isinstance(slot, dict) and slot.get("version"):
            problems.append(
                f"slot {slot.get('name')}: has a version; move it to artifacts with url, "
                "target and a sha256 per architecture"
            )
    if problems:
        raise ManifestError(f"manifest {path} is invalid:\n  - " + "\n  - ".join(problems))
    return Manifest(path, default, arches, dict(mirrors), tuple(artifacts), slots)


def _releases(
    data: dict[str, Any], path: Path, kube_version: str | None, problems: list[str]
) -> tuple[list[str], str]:
    """(every release the manifest pins, the one selected)."""
    default = str(data.get("kube_version") or "")
    if not default:
        problems.append("kube_version is missing; set it to the Kubernetes release, e.g. v1.37.2")
    releases = [str(v) for v in data.get("kube_versions") or [default]]
    if default and default not in releases:
        problems.append(f"kube_version {default} is not in kube_versions ({', '.join(releases)})")
    if kube_version is not None:
        wanted = f"v{kube_version.removeprefix('v')}"
        if wanted not in releases:
            raise ManifestError(
                f"--kube-version {kube_version}: manifest {path} pins Kubernetes "
                f"{', '.join(releases)}; pick one of those"
            )
        default = wanted
    return releases, default


def _belongs(art: Artifact, releases: list[str], selected: str, problems: list[str]) -> bool:
    """Whether `art` is part of release `selected` (its `kube` list; default every one)."""
    belongs = [str(v) for v in art.extra.get("kube") or releases]
    problems += [
        f"artifact {art.name}: kube lists {r}, which is not in kube_versions"
        for r in belongs
        if r not in releases
    ]
    return selected in belongs


def _parse_artifact(
    raw: Any,
    index: int,
    arches: tuple[str, ...],
    mirrors: Mapping[str, Any],
    problems: list[str],
) -> Artifact | None:
    if not isinstance(raw, dict) or not raw.get("name"):
        problems.append(f"artifacts[{index}]: needs at least a name")
        return None
    name = str(raw["name"])
    where = f"artifact {name}"
    before = len(problems)
    kind = raw.get("kind", "binary")
    if kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if "ref" in raw:
        return _parse_registry_image(raw, name, kind, arches, mirrors, problems)
    for key in ("version", "url", "target"):
        if not raw.get(key):
            problems.append(f"{where}: {key} is missing")
    sums = raw.get("sha256")
    if not isinstance(sums, dict) or not sums:
        problems.append(
            f"{where}: version {raw.get('version')} has no sha256; add sha256: "
            "{ARCH: <64 hex digits>} for every architecture it ships for"
        )
        sums = {}
    _check_pins(
        where,
        "sha256",
        sums,
        arches,
        _SHA256,
        "not 64 lowercase hex digits; pin the checksum of the file (sha256sum FILE)",
        problems,
    )
    for key in ("url", "target"):
        _check_template(str(raw.get(key) or ""), f"{where}: {key}", mirrors, problems)
    if len(problems) > before:
        return None
    known = {"name", "component", "kind", "version", "url", "target", "sha256", "roles"}
    return Artifact(
        name=name,
        component=str(raw.get("component") or name),
        kind=kind,
        version=str(raw["version"]),
        url=str(raw["url"]),
        target=str(raw["target"]),
        sha256=dict(sums),
        roles=tuple(raw.get("roles") or ()),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _check_pins(
    where: str,
    label: str,
    pins: Mapping[str, Any],
    arches: tuple[str, ...],
    pattern: re.Pattern[str],
    fix: str,
    problems: list[str],
) -> None:
    """Each architecture's pin (sha256 or digest): a declared architecture, well formed."""
    for arch, pin in pins.items():
        if arches and arch not in arches:
            problems.append(f"{where}: {label} for {arch!r}, which is not in architectures")
        if not isinstance(pin, str) or not pattern.match(pin):
            problems.append(f"{where}: {label} for {arch} is {pin!r}, {fix}")


def _untagged(ref: str) -> str:
    """`host:5000/pause:3.10.1` -> `host:5000/pause`: the digest alone names what is fetched
    (skopeo refuses a reference with both a tag and a digest)."""
    head, _, last = ref.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _parse_registry_image(
    raw: dict[str, Any],
    name: str,
    kind: str,
    arches: tuple[str, ...],
    mirrors: Mapping[str, Any],
    problems: list[str],
) -> Artifact | None:
    """kind image with `ref` + `digest`: pinned by the registry's manifest digest."""
    where = f"artifact {name}"
    before = len(problems)
    if kind != "image":
        problems.append(f"{where}: ref is only for kind image (found kind {kind!r})")
    for key in ("version", "ref", "target"):
        if not raw.get(key):
            problems.append(f"{where}: {key} is missing")
    if "sha256" in raw or "url" in raw:
        problems.append(
            f"{where}: a registry image (ref) is pinned by digest, not url/sha256; "
            "the archive's sha256 is recorded in the bundle when it is fetched"
        )
    pinned = raw.get("digest")
    if isinstance(pinned, str):
        digests = dict.fromkeys(arches, pinned)
    elif isinstance(pinned, dict) and pinned:
        digests = {str(a): d for a, d in pinned.items()}
    else:
        problems.append(
            f"{where}: version {raw.get('version')} has no digest; add digest: sha256:<64 hex> "
            "(the multi-arch index) or {ARCH: sha256:<64 hex>} (per-architecture manifests)"
        )
        digests = {}
    _check_pins(
        where,
        "digest",
        digests,
        arches,
        _DIGEST,
        "not sha256:<64 lowercase hex>; pin the manifest digest "
        "(skopeo inspect --format '{{.Digest}}' docker://REF)",
        problems,
    )
    ref = str(raw.get("ref") or "")
    _check_template(ref, f"{where}: ref", mirrors, problems)
    _check_template(str(raw.get("target") or ""), f"{where}: target", mirrors, problems)
    _check_template(str(raw.get("image") or ""), f"{where}: image", mirrors, problems)
    if "@" in ref:
        problems.append(f"{where}: ref {ref!r} has a digest; put it under digest: instead")
    if len(problems) > before:
        return None
    known = {"name", "component", "kind", "version", "ref", "target", "digest", "roles"}
    return Artifact(
        name=name,
        component=str(raw.get("component") or name),
        kind=kind,
        version=str(raw["version"]),
        url=ref,
        target=str(raw["target"]),
        sha256={},
        roles=tuple(raw.get("roles") or ()),
        extra={k: v for k, v in raw.items() if k not in known},
        digest=digests,
    )


def _check_template(text: str, where: str, mirrors: Mapping[str, Any], problems: list[str]) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        problems.append(f"{where}: bad template {text!r}: {exc}")
        return
    for name in fields:
        if not _TEMPLATE_FIELDS.match(name):
            problems.append(
                f"{where}: unknown placeholder {{{name}}}; use {{version}}, {{arch}} or "
                "{mirror.NAME}"
            )
        elif name.startswith("mirror.") and name[7:] not in mirrors:
            problems.append(f"{where}: {{{name}}} names no mirror; declare it under mirrors:")


def _fill(template: str, values: Mapping[str, str], mirrors: Mapping[str, str]) -> str:
    def field_value(name: str) -> str:
        if name.startswith("mirror."):
            return mirrors[name[7:]].rstrip("/")
        return values[name]

    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(field_value(name))
    return "".join(out)
