"""The settings stay consistent across the roles, their specs, their docs and the bundle.

Each role's meta/argument_specs.yml is the source of its settings (type, choices, default,
description); defaults/main.yml must say the same, and the README tables are generated
from the specs by scripts/gen-settings-docs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from airlock.bundle.manifest import load_manifest
from airlock.inventory import known_settings

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
GENERATOR = ROOT / "scripts" / "gen-settings-docs"


def _defaults(role: str) -> dict:
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def _options(role: str) -> dict:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"] or {}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same YAML type: 1 is not true, "1" is not 1, 1 is not 1.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_defaults_and_argument_specs_agree() -> None:
    problems = []
    for role in ROLES:
        defaults, options = _defaults(role), _options(role)
        where = f"roles/{role}"
        for name, value in defaults.items():
            option = options.get(name)
            if not name.startswith(f"{role}_"):
                problems.append(f"{where}: {name} lacks the role prefix {role}_")
            if option is None:
                problems.append(f"{where}: {name} is in defaults/main.yml but not in the spec")
            elif "default" not in (option or {}):
                problems.append(
                    f"{where}: {name} has no default in the spec; defaults/main.yml has {value!r}"
                )
            elif not _same(option["default"], value):
                problems.append(
                    f"{where}: {name} is {option['default']!r} in the spec but {value!r} in "
                    "defaults/main.yml"
                )
        for name, option in options.items():
            if "default" in (option or {}) and name not in defaults:
                problems.append(
                    f"{where}: {name} has a spec default but is not in defaults/main.yml"
                )
    assert not problems, "meta/argument_specs.yml is the source of defaults:\n" + "\n".join(
        problems
    )


def test_spec_descriptions_hold_no_jinja() -> None:
    """Ansible templates the whole spec when a role starts (ansible-core 2.19): Jinja in a
    description would be evaluated, and fail where its variables are undefined."""
    for role in ROLES:
        text = yaml.safe_dump({n: (o or {}).get("description") for n, o in _options(role).items()})
        assert "{{" not in text and "{%" not in text, f"roles/{role}: Jinja in a description"


# --- every role-prefixed variable a role or playbook uses is a documented setting

_JINJA = re.compile(r"{{.*?}}|{%.*?%}", re.S)
# Keys whose value is a bare Jinja expression.
_EXPRESSION_KEYS = {"when", "changed_when", "failed_when", "until", "that"}


class _Loader(yaml.SafeLoader):
    """safe_load that reads Ansible's tags (!unsafe, !vault) as plain values."""


_Loader.add_multi_constructor(
    "!",
    lambda loader, _tag, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    ),
)


def _expressions(node: Any, key: Any, out: list[str], registered: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "register" and isinstance(v, str):
                registered.add(v)
            if k != "tags":  # role-scoped tags (etcd_install) are not variables
                _expressions(v, k, out, registered)
    elif isinstance(node, list):
        for v in node:
            _expressions(v, key, out, registered)
    elif isinstance(node, str):
        if key in _EXPRESSION_KEYS and "{{" not in node:
            out.append(node)
        else:
            out.extend(_JINJA.findall(node))


def _used_variables() -> tuple[dict[str, set[str]], set[str]]:
    """Role-prefixed names in the Jinja of roles/*/{tasks,templates,handlers,vars,defaults}
    and playbooks/, with the files using them; and every registered variable."""
    files = [
        f
        for role in ROLES
        for sub in ("tasks", "templates", "handlers", "vars", "defaults")
        for f in sorted((ROOT / "roles" / role / sub).rglob("*"))
        if f.is_file()
    ] + sorted((ROOT / "playbooks").glob("*.yml"))
    # Not preceded by a word character or a dot: `_etcd_members` is internal,
    # `airlock.cluster.etcd_member` a module, `result.etcd_x` an attribute.
    name = re.compile(rf"(?<![\w.])(?:{'|'.join(ROLES)})_\w*[a-z0-9]")
    used: dict[str, set[str]] = {}
    registered: set[str] = set()
    for f in files:
        text = f.read_text()
        expressions: list[str] = []
        if f.suffix in (".yml", ".yaml"):
            _expressions(yaml.load(text, _Loader), None, expressions, registered)
        else:
            expressions = _JINJA.findall(text)
        for expression in expressions:
            for match in name.finditer(expression):
                used.setdefault(match.group(0), set()).add(str(f.relative_to(ROOT)))
    return used, registered


def _role_vars() -> set[str]:
    """Derived values a role defines for the others (e.g. airlock_arch in roles/airlock/vars)."""
    names: set[str] = set()
    for path in ROOT.glob("roles/*/vars/main.yml"):
        names.update(yaml.safe_load(path.read_text()) or {})
    return names


def _published_facts() -> set[str]:
    """Facts our modules set (RETURN's ansible_facts), e.g. bundle_artifacts' artifact map."""
    names: set[str] = set()
    for path in ROOT.glob("plugins/modules/*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "RETURN" for t in node.targets)
                and isinstance(node.value, ast.Constant)
            ):
                facts = (yaml.safe_load(node.value.value) or {}).get("ansible_facts") or {}
                names.update((facts.get("contains") or {}).keys())
    return names


def test_every_role_variable_in_use_is_a_setting() -> None:
    used, registered = _used_variables()
    known = {n for role in ROLES for n in (*_defaults(role), *_options(role))}
    known |= _role_vars() | _published_facts()
    missing = sorted(n for n in used if n not in known and n not in registered)
    assert not missing, (
        "role-prefixed variables used but in neither defaults/main.yml nor "
        "meta/argument_specs.yml (document them, or name them _<role>_... if internal):\n"
        + "\n".join(f"{n} (used in {', '.join(sorted(used[n]))})" for n in missing)
    )


def test_the_scan_finds_variables() -> None:
    """Guards the test above against a scanner that silently finds nothing."""
    used, registered = _used_variables()
    assert {"etcd_client_port", "loadbalancer_port", "airlock_api_port"} <= set(used)
    assert "etcd_install" not in used  # a tag, not a variable
    assert registered


# --- the READMEs' settings tables are generated from the specs


def test_settings_docs_are_generated_from_the_specs() -> None:
    result = subprocess.run(
        [sys.executable, GENERATOR, "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (
        "a README's settings table differs from the argument specs; run "
        f".venv/bin/python scripts/gen-settings-docs and commit the result:\n{result.stderr}"
    )


def test_default_kubernetes_version_is_the_one_the_bundle_pins() -> None:
    manifest = load_manifest(ROOT / "offline-bundle" / "manifest.yml")
    assert _defaults("airlock")["airlock_kube_version"] == manifest.kube_version.lstrip("v")


def test_known_settings_cover_every_role() -> None:
    known = known_settings(ROOT)
    for role in ROLES:
        assert any(k.startswith(f"{role}_") for k in known), role


def test_known_settings_carry_the_defaults() -> None:
    """`airlock check` reads the spec defaults; they are the roles' own."""
    known = known_settings(ROOT)
    for role in ROLES:
        for name, value in _defaults(role).items():
            assert _same(known[name], value), name
