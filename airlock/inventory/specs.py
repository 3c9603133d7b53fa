"""What the roles accept (their argument specs) and the variables Ansible itself reads."""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib.util
from collections.abc import Iterable
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from airlock.paths import project_root

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Ansible's connection and behavioural variables an inventory commonly sets. Anything else
# starting with `ansible_` is looked up in Ansible's own plugin documentation
# (`ansible_variables()`) before it is reported as a typo.
COMMON_ANSIBLE_VARS = frozenset(
    {
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_password",
        "ansible_connection",
        "ansible_ssh_private_key_file",
        "ansible_private_key_file",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_sftp_extra_args",
        "ansible_scp_extra_args",
        "ansible_ssh_pipelining",
        "ansible_pipelining",
        "ansible_become",
        "ansible_become_method",
        "ansible_become_user",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_become_exe",
        "ansible_become_flags",
        "ansible_python_interpreter",
        "ansible_shell_type",
        "ansible_shell_executable",
        "ansible_ssh_host",
        "ansible_ssh_port",
        "ansible_ssh_user",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_timeout",
        "ansible_group_priority",
        "ansible_ssh_timeout",
        "ansible_ssh_retries",
        "ansible_host_key_checking",
        "ansible_ssh_executable",
        "ansible_ssh_args",
    }
)


def spec_files(root: Path | None = None) -> list[Path]:
    root = root or project_root()
    return sorted((root / "roles").glob("*/meta/argument_specs.yml"))


@lru_cache(maxsize=4)
def option_specs(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every variable a role documents: name -> its option (type, choices, default, role)."""
    options: dict[str, dict[str, Any]] = {}
    for spec_file in spec_files(root):
        data = yaml.load(spec_file.read_text(), Loader=_LOADER) or {}
        role = spec_file.parent.parent.name
        for entry in (data.get("argument_specs") or {}).values():
            for name, option in ((entry or {}).get("options") or {}).items():
                if name not in options:
                    options[name] = {**(option or {}), "_role": role}
    return options


def known_settings(root: Path | None = None) -> dict[str, Any]:
    """Every variable a role documents in meta/argument_specs.yml, with its default."""
    return {name: option.get("default") for name, option in option_specs(root).items()}


def cluster_settings(root: Path | None = None) -> set[str]:
    """The cluster-wide settings: the options of role `airlock`."""
    return {n for n, o in option_specs(root).items() if o.get("_role") == "airlock"}


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def is_ansible_variable(name: str) -> bool:
    return (
        name in COMMON_ANSIBLE_VARS
        or fnmatch(name, "ansible_*_interpreter")
        or name in ansible_variables()
    )


@lru_cache(maxsize=1)
def ansible_variables() -> frozenset[str]:
    """Every `ansible_*` variable Ansible's config and its connection, become and shell
    plugins read, from their own documentation. Read without importing Ansible (its
    import alone takes seconds here), and only when an unusual name appears."""
    names = set(COMMON_ANSIBLE_VARS)
    spec = importlib.util.find_spec("ansible")
    if spec is None or not spec.submodule_search_locations:
        return frozenset(names)
    base = Path(next(iter(spec.submodule_search_locations)))
    docs: list[Any] = []
    with contextlib.suppress(OSError, yaml.YAMLError):
        docs.append(yaml.load((base / "config" / "base.yml").read_text(), Loader=_LOADER) or {})
    for kind in ("connection", "become", "shell"):
        for path in sorted((base / "plugins" / kind).glob("*.py")):
            doc = _documentation(path)
            docs.append((doc or {}).get("options") or {})
    for options in docs:
        for option in options.values() if isinstance(options, dict) else []:
            for var in (option or {}).get("vars") or [] if isinstance(option, dict) else []:
                if isinstance(var, dict):
                    names.add(str(var.get("name", "")))
    return frozenset(n for n in names if n.startswith("ansible_"))


def _documentation(path: Path) -> dict[str, Any] | None:
    """A plugin's DOCUMENTATION string, parsed, without importing the plugin."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            try:
                doc = yaml.load(node.value.value, Loader=_LOADER)
            except yaml.YAMLError:
                return None
            return doc if isinstance(doc, dict) else None
    return None
