"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, and the options match the spec.

ansible-doc (and ansible-lint) silently degrade on a module whose documentation does not
parse; a plain-YAML slip such as "first: the ..." in a description is enough.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def _docs(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in (
                    "DOCUMENTATION",
                    "EXAMPLES",
                    "RETURN",
                ):
                    found[target.id] = node.value.value
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_parses(path: Path) -> None:
    docs = _docs(path)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, f"{path.name}: {sorted(docs)}"
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert documentation["short_description"]
    assert isinstance(documentation.get("options", {}), dict)
    examples = yaml.safe_load(docs["EXAMPLES"])
    assert isinstance(examples, list) and examples
    for task in examples:
        assert task.get("name"), f"{path.name}: every example task is named"
        assert any(key.startswith("airlock.cluster.") for key in task), f"{path.name}: FQCN"
    assert isinstance(yaml.safe_load(docs["RETURN"]) or {}, dict)
