"""The README's table of what `airlock check` verifies is generated from the rules."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

from airlock.inventory import RULES

ROOT = Path(__file__).resolve().parents[2]


def _script():  # scripts/gen-check-docs has no .py suffix
    loader = importlib.machinery.SourceFileLoader(
        "gen_check_docs", str(ROOT / "scripts" / "gen-check-docs")
    )
    spec = importlib.util.spec_from_loader("gen_check_docs", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_readme_table_is_current() -> None:
    assert _script().main(["--check"]) == 0, "run .venv/bin/python scripts/gen-check-docs"


def test_a_stale_table_is_noticed(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    readme.write_text(text.replace(f"`{RULES[0].id}`", "`renamed`", 1))
    assert _script().expected(readme) == text


def test_every_rule_is_documented() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)), ids
    for r in RULES:
        assert r.text and r.example and "\n" not in r.example, r.id
