"""Run a test playbook through this venv's ansible-playbook against a throw-away inventory.

The render tests (tests/unit/*/test_render.py) write an inventory and extra variables, run
their render.yml, and read what it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "ansible-playbook"


def run_playbook(
    playbook: Path, tmp_path: Path, inventory: dict[str, Any], extra: dict[str, Any]
) -> None:
    """Write `inventory` and `extra` into `tmp_path`, run `playbook`; fail with its output."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", "-e", f"@{tmp_path / 'extra.json'}",
         playbook],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
