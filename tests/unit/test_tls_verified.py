"""Nothing airlock writes onto a host turns TLS verification off.

No role template, file or default says skip_verify, insecure or plain-http
(tests.registry.UNVERIFIED), and no task or playbook sets `validate_certs` false. What the
containerd role renders for a set of registries is checked the same way, and pulled through,
in tests/integration/containerd/test_registry_tls.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tests.registry import UNVERIFIED

ROOT = Path(__file__).resolve().parents[2]
VALIDATE_CERTS_OFF = re.compile(r"^\s*validate_certs:\s*(false|no|off)\s*$", re.I | re.M)


def _files(*patterns: str) -> Iterator[Path]:
    for pattern in patterns:
        yield from (p for p in sorted(ROOT.glob(pattern)) if p.is_file())


def _lines_matching(pattern: re.Pattern[str], paths: Iterator[Path]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]


def test_no_template_file_or_default_turns_verification_off() -> None:
    written = list(_files("roles/*/templates/**/*", "roles/*/files/**/*", "roles/*/defaults/*"))
    assert any(p.name == "hosts.toml.j2" for p in written)  # the search sees the templates
    assert _lines_matching(UNVERIFIED, iter(written)) == []


def test_no_task_turns_certificate_validation_off() -> None:
    tasks = _files("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/**/*.yml")
    assert _lines_matching(VALIDATE_CERTS_OFF, tasks) == []
