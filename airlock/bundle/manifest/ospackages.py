"""OS packages, the read side: the manifest's `os_packages:` section and the pinned files.

In offline-bundle/manifest.yml::

    os_packages:
      debian-12:                         # a distribution of airlock/bundle/pin/distros.py
        pinned: packages/debian-12.yml   # relative to the manifest
        packages: [conntrack, socat]     # what hosts install; dependencies are added
        architectures: [amd64]           # optional: pinned for these only (default: the
                                         # manifest's architectures)

`airlock bundle pin-packages` resolves each list with its dependencies for every
architecture (airlock.bundle.pin.ospackages) and writes the pinned file::

    distro: debian-12
    codename: bookworm
    packages: [conntrack, socat]         # the list it was resolved for
    architectures: [amd64, arm64]
    debs:                                # manifest artifacts, one per .deb and architecture
      - name: deb-bookworm-amd64-socat
        component: socat
        kind: deb
        version: 1.7.4.4-2
        url: "{mirror.debian}/pool/main/s/socat/socat_1.7.4.4-2_amd64.deb"
        target: debs/bookworm/socat_1.7.4.4-2_amd64.deb
        roles: [all]
        size: 374324
        sha256: {amd64: <64 hex>}

`load_manifest` adds every pinned file's `debs` to the manifest's artifacts, where the
usual rules apply (a version without a sha256 is an error). A pinned file that was made
for another package list, or lacks an architecture of the manifest, is an error that says
to run pin-packages again. A distribution pinned for fewer architectures than the
manifest's says so with `architectures:`; `unpinned()` names what a bundle then lacks.
An arch-independent .deb appears once per architecture with the same target and sha256;
the build keeps one copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from airlock.arch import ARCHES
from airlock.bundle.manifest.model import ManifestError

# The pinned files are a few thousand lines; libyaml reads them ~10x faster (every
# `airlock check` loads the manifest).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class OsPackages:
    """One distribution's entry of `os_packages:`."""

    distro: str
    packages: tuple[str, ...]
    pinned: Path  # absolute
    architectures: tuple[str, ...] = ()  # pinned for these only; empty: the manifest's

    def arches(self, manifest_arches: Sequence[str]) -> tuple[str, ...]:
        return self.architectures or tuple(manifest_arches)


def read_os_packages(data: Any, manifest_path: Path) -> dict[str, OsPackages]:
    """The `os_packages:` section of a loaded manifest document, validated."""
    section = data.get("os_packages") if isinstance(data, dict) else None
    if not section:
        return {}
    if not isinstance(section, dict):
        raise ManifestError(f"manifest {manifest_path}: os_packages must map distro -> entry")
    out = {}
    for key, raw in section.items():
        where = f"manifest {manifest_path}: os_packages {key}"
        if not isinstance(raw, dict) or not raw.get("pinned") or not raw.get("packages"):
            raise ManifestError(
                f"{where}: needs `pinned: packages/{key}.yml` and `packages: [NAME, ...]`"
            )
        names = raw["packages"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ManifestError(f"{where}: packages must be a list of package names")
        arches = raw.get("architectures") or []
        if not isinstance(arches, list) or not set(arches) <= set(ARCHES):
            raise ManifestError(f"{where}: architectures must be a list of {', '.join(ARCHES)}")
        out[str(key)] = OsPackages(
            str(key),
            tuple(names),
            (manifest_path.parent / str(raw["pinned"])).resolve(),
            tuple(arches),
        )
    return out


def with_pinned_packages(data: Any, manifest_path: Path) -> Any:
    """The manifest document with every pinned .deb added to its artifacts."""
    entries = read_os_packages(data, manifest_path)
    if not entries:
        return data
    arches = [str(a) for a in data.get("architectures") or ()]
    debs: list[Any] = []
    for entry in entries.values():
        debs += _pinned_debs(entry, arches)
    return {**data, "artifacts": [*(data.get("artifacts") or []), *debs]}


def _pinned_debs(entry: OsPackages, arches: Sequence[str]) -> list[Any]:
    fix = f"run `airlock bundle pin-packages --distro {entry.distro}`"
    try:
        doc = yaml.load(entry.pinned.read_text(encoding="utf-8"), Loader=_LOADER)
    except FileNotFoundError:
        raise ManifestError(
            f"os_packages {entry.distro}: {entry.pinned} is missing; {fix}"
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{entry.pinned} is not valid YAML ({exc}); {fix}") from None
    if not isinstance(doc, dict) or doc.get("distro") != entry.distro:
        raise ManifestError(f"{entry.pinned} is not the pinned file of {entry.distro}; {fix}")
    if sorted(doc.get("packages") or ()) != sorted(entry.packages):
        raise ManifestError(
            f"{entry.pinned} was pinned for other packages than os_packages {entry.distro} "
            f"lists (pinned: {', '.join(sorted(doc.get('packages') or ()))}); {fix}"
        )
    missing = [a for a in entry.arches(arches) if a not in (doc.get("architectures") or ())]
    if missing:
        raise ManifestError(
            f"{entry.pinned} has no packages for {', '.join(missing)}; {fix} --arch "
            + " --arch ".join(missing)
        )
    return [d for d in doc.get("debs") or () if not isinstance(d, dict) or _in(d, arches)]


def _in(deb: Mapping[str, Any], arches: Sequence[str]) -> bool:
    sums = deb.get("sha256")
    return not isinstance(sums, dict) or any(a in sums for a in arches)


def unpinned(manifest_path: Path, arches: Sequence[str]) -> list[str]:
    """What a bundle for `arches` lacks: "ubuntu-22.04 (arm64)" per distribution not
    pinned for an architecture (os_packages `architectures:`)."""
    data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    return [
        f"{key} ({arch})"
        for key, entry in read_os_packages(data, manifest_path).items()
        for arch in arches
        if arch not in entry.arches(arches)
    ]
