"""The committed pinned OS package files: they load into the production manifest, and each
distribution and architecture has its whole package list, every .deb pinned by sha256."""

from __future__ import annotations

import functools
import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from airlock.bundle.manifest import load_manifest
from airlock.bundle.pin.distros import DISTROS

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "offline-bundle" / "manifest.yml"
RAW = yaml.safe_load(MANIFEST.read_text())
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@functools.cache
def _resolved(arch: str):
    return load_manifest(MANIFEST).resolve(arch)


def _debs(arch: str, codename: str):
    return [
        a for a in _resolved(arch) if a.kind == "deb" and a.target.startswith(f"debs/{codename}/")
    ]


# Every architecture of the manifest, unless the entry names fewer (`architectures:`,
# which `airlock bundle build` warns about).
PINNED = [
    (distro, arch)
    for distro, entry in sorted(RAW["os_packages"].items())
    for arch in entry.get("architectures") or RAW["architectures"]
]


@pytest.mark.parametrize(("distro", "arch"), PINNED)
def test_every_listed_package_is_pinned_for_each_architecture(distro, arch):
    dist = DISTROS[distro]
    debs = _debs(arch, dist.codename)
    assert set(RAW["os_packages"][distro]["packages"]) <= {d.component for d in debs}
    bases = tuple(RAW["mirrors"][s.mirror] + "/" for s in dist.sources_for(arch))
    for deb in debs:
        assert SHA256.match(deb.sha256), deb.name
        assert deb.target.endswith((f"_{arch}.deb", "_all.deb")), deb.target
        assert deb.url.startswith(bases), deb.url
        assert urllib.parse.unquote(deb.url).endswith("/" + deb.target.rsplit("/", 1)[1])


@pytest.mark.parametrize("distro", sorted(RAW["os_packages"]))
def test_pinned_urls_are_under_mirror_variables(distro):
    pinned = MANIFEST.parent / RAW["os_packages"][distro]["pinned"]
    doc = yaml.safe_load(pinned.read_text())
    assert doc["distro"] == distro and doc["codename"] == DISTROS[distro].codename
    mirrors = {f"{{mirror.{s.mirror}}}/" for ss in DISTROS[distro].sources.values() for s in ss}
    for deb in doc["debs"]:
        assert deb["url"].startswith(tuple(mirrors)), deb["url"]
        assert len(deb["sha256"]) == 1 and deb["size"] > 0


def test_an_arch_independent_deb_is_one_file_for_every_architecture():
    seen: dict[str, str] = {}
    for arch in RAW["architectures"]:
        for deb in _resolved(arch):
            if deb.kind == "deb" and deb.target.endswith("_all.deb"):
                assert seen.setdefault(deb.target, deb.sha256) == deb.sha256, deb.target
