"""execution-environment.yml pins what pyproject.toml pins."""

from __future__ import annotations

import tomllib

import yaml

from tests.conftest import ROOT


def _pins(specs: list[str]) -> dict[str, str]:
    return {s.split("==")[0].lower(): s.split("==")[1] for s in specs if "==" in s}


def test_the_ees_python_packages_are_airlocks_pins() -> None:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = _pins(project["dependencies"]) | _pins(project["optional-dependencies"]["ee"])
    deps = ee["dependencies"]
    listed = _pins(deps["python"]) | _pins(
        [deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"]]
    )
    assert listed, "execution-environment.yml lists no pinned Python package"
    assert {name: pinned.get(name) for name in listed} == listed
    steps = "\n".join(ee["additional_build_steps"]["prepend_base"])
    assert f"pip-{pinned['pip']}-py3-none-any.whl/pip install pip=={pinned['pip']}" in steps
