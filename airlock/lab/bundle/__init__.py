"""The lab profile of the bundle (`airlock bundle build --profile lab`).

Modules: profile (prepare_lab: make here what production downloads, write a manifest
pointing at it), gobuild (Go programs from their Go modules), oci (OCI images assembled
from files). The result goes through airlock.bundle.build like production's.
"""

from __future__ import annotations

from pathlib import Path

from airlock.bundle.build.pipeline import default_archive
from airlock.bundle.manifest import default_manifest_path, load_manifest


def lab_archive() -> Path:
    """The lab bundle for the Kubernetes version offline-bundle/manifest.yml pins."""
    return default_archive("lab", load_manifest(default_manifest_path()).kube_version)
