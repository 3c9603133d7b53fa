"""Reading a manifest file: the document, plus the .debs its os_packages pinned."""

from __future__ import annotations

from pathlib import Path

import yaml

from airlock.bundle.manifest.model import Manifest, ManifestError, parse_manifest
from airlock.bundle.manifest.ospackages import with_pinned_packages
from airlock.paths import project_root


def default_manifest_path() -> Path:
    """offline-bundle/manifest.yml of this checkout: the production manifest."""
    return project_root() / "offline-bundle" / "manifest.yml"


def load_manifest(path: str | Path, kube_version: str | None = None) -> Manifest:
    """Read and validate a manifest file; raise ManifestError listing every problem.

    `kube_version` selects one of the manifest's kube_versions (default its kube_version).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist; pass --manifest PATH") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest {path} is not valid YAML: {exc}") from None
    return parse_manifest(with_pinned_packages(data, path), path, kube_version)
