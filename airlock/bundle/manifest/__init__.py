"""The bundle manifest, the read side: what every `airlock check` and every build reads.

Modules: model (the format, its rules, Manifest and ResolvedArtifact; see its docstring),
ospackages (the `os_packages:` section and the pinned files it points at), load
(load_manifest: a file, with its pinned .debs), releases (missing_for: the slots a
Kubernetes release still lacks). Imports only the leaves (airlock.errors,
airlock.paths, airlock.arch); pinning and building sit above it.
"""

from airlock.bundle.manifest.load import default_manifest_path, load_manifest
from airlock.bundle.manifest.model import (
    Artifact,
    Manifest,
    ManifestError,
    ResolvedArtifact,
    override_mirrors,
    parse_manifest,
    registry_ref,
)
from airlock.bundle.manifest.releases import missing_for

__all__ = [
    "Artifact",
    "Manifest",
    "ManifestError",
    "ResolvedArtifact",
    "default_manifest_path",
    "load_manifest",
    "missing_for",
    "override_mirrors",
    "parse_manifest",
    "registry_ref",
]
