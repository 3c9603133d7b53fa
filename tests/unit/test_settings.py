"""The cluster settings stay consistent across the role, its specs and the bundle."""

from __future__ import annotations

from pathlib import Path

import yaml

from airlock.bundle.manifest import load_manifest
from airlock.inventory import known_settings

ROOT = Path(__file__).resolve().parents[2]


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def test_every_role_default_is_in_its_argument_spec() -> None:
    for defaults_file in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        role = defaults_file.parent.parent.name
        specs = yaml.safe_load(
            (defaults_file.parent.parent / "meta" / "argument_specs.yml").read_text()
        )
        options = specs["argument_specs"]["main"]["options"]
        for name in _defaults(role):
            assert name in options, f"roles/{role}: {name} is in defaults but not argument_specs"
            assert name.startswith(f"{role}_"), f"roles/{role}: {name} lacks the role prefix"


def test_default_kubernetes_version_is_the_one_the_bundle_pins() -> None:
    manifest = load_manifest(ROOT / "offline-bundle" / "manifest.yml")
    assert _defaults("airlock")["airlock_kube_version"] == manifest.kube_version.lstrip("v")


def test_known_settings_cover_every_role() -> None:
    known = known_settings(ROOT)
    for role_dir in ROOT.glob("roles/*/meta/argument_specs.yml"):
        role = role_dir.parent.parent.name
        assert any(k.startswith(f"{role}_") for k in known), role
