"""What the roles accept (their argument specs) and the variables Ansible itself reads."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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


@lru_cache(maxsize=1)
def ansible_variables() -> frozenset[str]:
    """Every `ansible_*` variable Ansible's config and its connection, become and shell
    plugins read, from their own documentation (read only when an unusual name appears)."""
    names = set(COMMON_ANSIBLE_VARS)
    try:
        import ansible

        base = Path(ansible.__file__).parent
        config = yaml.load((base / "config" / "base.yml").read_text(), Loader=_LOADER) or {}
        for entry in config.values():
            for var in (entry or {}).get("vars") or []:
                names.add(str(var.get("name", "")))
        from ansible.parsing.plugin_docs import read_docstring

        for kind in ("connection", "become", "shell"):
            for path in sorted((base / "plugins" / kind).glob("*.py")):
                doc = (read_docstring(str(path)) or {}).get("doc") or {}
                for option in (doc.get("options") or {}).values():
                    for var in (option or {}).get("vars") or []:
                        names.add(str((var or {}).get("name", "")))
    except Exception:  # without Ansible's docs the common names still work
        pass
    return frozenset(n for n in names if n.startswith("ansible_"))
