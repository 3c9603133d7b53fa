"""The collection's metadata agrees with airlock, and its staging names playbooks as FQCNs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from airlock import __version__, collection
from airlock.errors import AirlockError
from tests.conftest import ROOT


def test_galaxy_yml_has_airlocks_version_and_the_collections_the_roles_call() -> None:
    data = collection.galaxy(ROOT)
    assert data["version"] == __version__
    called = {
        ".".join(key.split(".")[:2])
        for path in [*(ROOT / "roles").rglob("*.yml"), *(ROOT / "playbooks").rglob("*.yml")]
        for task in _tasks(yaml.safe_load(path.read_text()))
        for key in task
        if key.count(".") == 2 and not key.startswith(("ansible.builtin.", "airlock.cluster."))
    }
    assert called and called <= set(data["dependencies"]), called - set(data["dependencies"])


def _tasks(node: object) -> list[dict]:
    """Every mapping with a `name` and an `action`-like key, anywhere in a YAML document."""
    found: list[dict] = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item)
    elif isinstance(node, dict):
        if "name" in node and isinstance(node.get("name"), str):
            found.append(node)
        for value in node.values():
            found += _tasks(value)
    return found


def test_a_version_that_is_not_airlocks_is_one_line_naming_the_file(tmp_path: Path) -> None:
    source = collection.source_dir(tmp_path)
    source.mkdir(parents=True)
    (source / "galaxy.yml").write_text(yaml.safe_dump({"namespace": "airlock", "version": "9.9.9"}))
    with pytest.raises(AirlockError, match=r"galaxy.yml: version '9.9.9' is not airlock's"):
        collection.galaxy(tmp_path)


def test_staged_playbooks_have_fqcn_names_and_their_imports_follow(tmp_path: Path) -> None:
    staged = collection.stage(ROOT, tmp_path / "cluster")
    names = {p.name for p in (staged / "playbooks").glob("*.yml")}
    assert "certs_renew.yml" in names and "registry_pull_secret.yml" in names
    assert not [n for n in names if "-" in n]
    site = (staged / "playbooks" / "site.yml").read_text()
    assert "import_playbook: registry_pull_secret.yml" in site
    assert (staged / "plugins" / "modules" / "kubeadm_init.py").is_file()
    assert not (staged / "plugins").is_symlink()
    assert not list(staged.rglob("__pycache__"))
    shutil.rmtree(staged)
