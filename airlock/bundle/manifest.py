"""The bundle manifest: one pinned list of everything a cluster needs, per architecture.

File format (YAML, see offline-bundle/manifest.yml for the documented production one)::

    schema: 1
    kube_version: v1.34.4
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
        sha256: {amd64: <64 hex>, arm64: <64 hex>}   # one per architecture it exists for
    slots:                        # planned content of later issues: no version, no download
      - {name: harbor-offline-installer, issue: 5}

Rules (each breach is an error naming the entry and the fix): every artifact has a
version; every architecture an artifact lists has a 64-hex sha256 (a version without a
checksum is an error); URL templates only use `{version}`, `{arch}` and `{mirror.NAME}`
of a declared mirror; names are unique; a slot that gains a version must move to
`artifacts` with its checksums.

Public API, used by the inventory checker::

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

import yaml

from airlock.errors import AirlockError

SCHEMA = 1
KINDS = ("binary", "archive", "image", "deb", "wheel", "file")
ARCHES = ("amd64", "arm64")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
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

    @property
    def arches(self) -> tuple[str, ...]:
        return tuple(sorted(self.sha256))


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
    sha256: str
    roles: tuple[str, ...]
    image: str = ""  # for kind image: the reference it is imported as


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
            if arch not in art.sha256:
                continue
            values = {"version": art.version, "arch": arch}
            out.append(
                ResolvedArtifact(
                    name=art.name,
                    component=art.component,
                    kind=art.kind,
                    version=art.version,
                    arch=arch,
                    url=_fill(art.url, values, bases),
                    target=_fill(art.target, values, bases),
                    sha256=art.sha256[arch],
                    roles=art.roles,
                    image=str(art.extra.get("image", "")),
                )
            )
        return out


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


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist; pass --manifest PATH") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest {path} is not valid YAML: {exc}") from None
    return parse_manifest(data, path)


def parse_manifest(data: Any, path: Path) -> Manifest:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path}: the top level must be a mapping")
    if data.get("schema") != SCHEMA:
        problems.append(f"schema must be {SCHEMA} (found {data.get('schema')!r})")
    kube_version = str(data.get("kube_version") or "")
    if not kube_version:
        problems.append("kube_version is missing; set it to the Kubernetes release, e.g. v1.34.4")
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
    return Manifest(path, kube_version, arches, dict(mirrors), tuple(artifacts), slots)


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
    for key in ("version", "url", "target"):
        if not raw.get(key):
            problems.append(f"{where}: {key} is missing")
    kind = raw.get("kind", "binary")
    if kind not in KINDS:
        problems.append(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    sums = raw.get("sha256")
    if not isinstance(sums, dict) or not sums:
        problems.append(
            f"{where}: version {raw.get('version')} has no sha256; add sha256: "
            "{ARCH: <64 hex digits>} for every architecture it ships for"
        )
        sums = {}
    for arch, digest in sums.items():
        if arches and arch not in arches:
            problems.append(f"{where}: sha256 for {arch!r}, which is not in architectures")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            problems.append(
                f"{where}: sha256 for {arch} is {digest!r}, not 64 lowercase hex digits; "
                "pin the checksum of the file (sha256sum FILE)"
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
