"""The lab profile of the bundle (`airlock bundle build --profile lab`).

Modules: profile (prepare_lab: make here what production downloads, write a manifest
pointing at it), gobuild (Go programs from their Go modules), oci (OCI images assembled
from files). The result goes through airlock.bundle.build like production's.
"""

from __future__ import annotations

from pathlib import Path

from airlock.bundle.build.pipeline import default_archive


def lab_archive(kube_version: str | None = None) -> Path:
    """The lab bundle of one Kubernetes release (default: the lab's default release)."""
    from airlock.lab.bundle.profile import release

    return default_archive("lab", release(kube_version).kube)
