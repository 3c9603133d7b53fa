# Copyright: airlock developers
# Apache-2.0
"""Lookup plugin: the digest of everything a stage of airlock applies to one host."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 trusts every string

    def trust_as_template(value: Any) -> Any:
        return value


try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - community.crypto needs it on the controller too
    x509 = None

DOCUMENTATION = r"""
---
name: stage_fingerprint
short_description: Digest of a stage's inputs for one host, computed on the controller
version_added: "0.1.0"
description:
  - Returns a digest of each input of a stage of C(site.yml) for the current host, for the
    module C(airlock.cluster.stage_state), which skips a stage whose inputs and host state
    are as its last run left them.
  - "The inputs: airlock's own code (every file of C(roles/), C(plugins/) and C(playbooks/)
    beside this plugin: a new airlock runs every stage once); every file of the inventory's
    directory (hosts, group and host variables of every host); the files of
    O(controller_paths) (the stage's part of the credentials directory, the bundle); the
    group map; the host's facts a role reads directly (distribution, release and
    architecture; the others reach roles through their variables); and the value,
    templated for this host, of every public variable the stage's O(roles) and the role
    C(airlock) declare (C(defaults/), C(vars/), C(meta/argument_specs.yml)): settings and
    role defaults, whatever sets them; a role the play includes only later
    (C(include_role)) counts with its files' values. Private variables (C(_role_*)) are
    derived, often from what tasks register, and are left out, as is C(airlock_stage_skip)
    (how to run, not what to apply)."
  - Variables a play registers are not inputs (they differ from run to run).
    C(playbooks/tasks/stage_gate.yml) computes the digests before the stage and
    C(playbooks/tasks/stage_record.yml) again after it (a first run creates the stage's
    certificates on the controller).
  - Regular files up to 1 MiB are read; larger ones (the bundle) count by size and mtime.
  - "With O(renew_days), each certificate of O(certificates) counts as C(due) or C(ok) by
    whether it expires within that many days: a stage that renews its certificates then
    runs when one falls due, though nothing else changed."
options:
  _terms:
    description: The stage's name (recorded with the digest).
    required: true
  roles:
    description: The roles the stage runs (the role C(airlock) is always added).
    type: list
    elements: str
    default: []
  controller_paths:
    description:
      - Files or directories on the controller the stage copies from, or glob patterns for
        the part of a directory it copies.
    type: list
    elements: str
    default: []
  certificates:
    description:
      - Certificates (PEM files or glob patterns, on the controller) the stage renews when
        they expire within O(renew_days). A pattern that matches nothing counts nothing.
    type: list
    elements: str
    default: []
  renew_days:
    description: The stage's renewal window in days; 0 leaves O(certificates) out.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Digest of the etcd stage's inputs
  ansible.builtin.debug:
    msg: "{{ lookup('airlock.cluster.stage_fingerprint', 'etcd', roles=['etcd']) }}"
"""

RETURN = r"""
_raw:
  description:
    - One mapping per call, input -> the first 16 hex digits of its sha256 (C(code/roles),
      C(inventory), C(controller:PATH), C(groups), C(facts), C(var:NAME), C(renew:PATH),
      C(stage)), so
      C(airlock.cluster.stage_state) can name what changed.
  type: list
  elements: dict
"""

FACTS = (
    "architecture",
    "distribution",
    "distribution_major_version",
    "distribution_release",
    "distribution_version",
    "os_family",
)
READ_LIMIT = 1 << 20
CODE_TREES = ("roles", "plugins", "playbooks")
UNDEFINED = "<undefined>"
VOLATILE_FACTS = ("airlock_", "packages")
#: Settings that say how to run, not what to apply: `--full` must record what a gated
#: run would (make e2e: a --full no-op changed only the records).
RUN_MODE = frozenset({"airlock_stage_skip"})


def tree_digest(top: Path, skip_hidden: bool = True) -> str:
    """sha256 over the relative paths and contents (or size and mtime) below `top`."""
    digest = hashlib.sha256()
    if top.is_file():
        _file_into(digest, top, top.name)
        return digest.hexdigest()
    for root, dirs, files in os.walk(top, followlinks=True):
        dirs[:] = sorted(
            d for d in dirs if not (skip_hidden and d.startswith(".")) and d != "__pycache__"
        )
        for name in sorted(files):
            if name.endswith((".pyc", ".retry")):
                continue
            path = Path(root) / name
            _file_into(digest, path, str(path.relative_to(top)))
    return digest.hexdigest()


def _file_into(digest: Any, path: Path, name: str) -> None:
    digest.update(name.encode() + b"\0")
    try:
        st = path.stat()
    except OSError:
        digest.update(b"<missing>\0")
        return
    if st.st_size <= READ_LIMIT:
        digest.update(path.read_bytes())
    else:
        digest.update(f"<{st.st_size}:{st.st_mtime_ns}>".encode())
    digest.update(b"\0")


def code_root() -> Path:
    """The directory holding roles/, plugins/ and playbooks/ (the checkout or the collection)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if all((parent / name).is_dir() for name in ("roles", "plugins")):
            return parent
    raise AnsibleError(f"stage_fingerprint: no roles/ and plugins/ above {here}")


def declared(root: Path, roles: list[str]) -> dict[str, Any]:
    """Every variable the roles declare, with the value their files give it (defaults,
    vars files; an argument spec's default when a file has none)."""
    if yaml is None:
        raise AnsibleError("stage_fingerprint needs PyYAML on the controller")
    values: dict[str, Any] = {}
    for role in roles:
        base = root / "roles" / role
        if not base.is_dir():
            raise AnsibleError(f"stage_fingerprint: no role {role!r} in {root / 'roles'}")
        specs = base / "meta" / "argument_specs.yml"
        if specs.is_file():
            data = yaml.safe_load(specs.read_text()) or {}
            for spec in (data.get("argument_specs") or {}).values():
                for name, option in ((spec or {}).get("options") or {}).items():
                    values.setdefault(name, (option or {}).get("default"))
        for sub in ("defaults", "vars"):
            for path in sorted((base / sub).glob("*.yml")) if (base / sub).is_dir() else []:
                values.update(_mapping(path))
    return values


def declared_names(root: Path, roles: list[str]) -> set[str]:
    return set(declared(root, roles))


def _mapping(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        Display().warning(f"stage_fingerprint: {path} is not a mapping; ignored")
        return {}
    return data


def digests(parts: dict[str, Any]) -> dict[str, str]:
    """One short digest per input, so a changed input can be named: `code/roles`,
    `inventory`, `controller:PATH`, `groups`, `facts`, `var:NAME`, `stage`."""
    flat: dict[str, Any] = {"stage": parts["stage"], "inventory": parts["inventory"]}
    flat.update({f"code/{k}": v for k, v in parts["code"].items()})
    flat.update({f"controller:{k}": v for k, v in parts["controller"].items()})
    flat["groups"] = parts["groups"]
    flat["facts"] = parts["facts"]
    flat.update({f"var:{k}": v for k, v in parts["vars"].items()})
    flat.update({f"renew:{k}": v for k, v in parts.get("renew", {}).items()})
    return {
        key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        for key, value in flat.items()
    }


def renewal(patterns: list[str], days: int, now: datetime | None = None) -> dict[str, str]:
    """Each certificate matching `patterns`: "due" when it expires within `days`, else "ok"
    ("unreadable" when it is no PEM certificate: the stage that issued it runs)."""
    if days <= 0:
        return {}
    if x509 is None:
        raise AnsibleError("stage_fingerprint needs the cryptography package on the controller")
    limit = (now or datetime.now(UTC)) + timedelta(days=days)
    states: dict[str, str] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
            except (OSError, ValueError):
                states[path] = "unreadable"
                continue
            states[path] = "due" if cert.not_valid_after_utc <= limit else "ok"
    return states


def controller_digest(path: str) -> str:
    """The digest of a controller file or directory, or of every match of a glob pattern
    (a directory's part that the stage copies, not what else lives there: backups)."""
    if any(c in path for c in "*?["):
        matches = sorted(glob.glob(path))
        digest = hashlib.sha256()
        for match in matches:
            digest.update(f"{match}\0{tree_digest(Path(match))}\0".encode())
        return digest.hexdigest() if matches else "<absent>"
    return tree_digest(Path(path)) if Path(path).exists() else "<absent>"


def trust(value: Any) -> Any:
    """Role files' strings are templates, as Ansible itself reads them."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trust(v) for v in value]
    if isinstance(value, dict):
        return {k: trust(v) for k, v in value.items()}
    return value


def plain(value: Any) -> Any:
    """A JSON-stable form of a templated value."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class LookupModule(LookupBase):
    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, str]]:
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleError("stage_fingerprint takes one term: the stage's name")
        variables = variables or {}
        root = code_root()
        files = declared(root, ["airlock", *self.get_option("roles")])
        parts: dict[str, Any] = {"stage": str(terms[0])}
        parts["code"] = {name: tree_digest(root / name) for name in CODE_TREES}
        inventory_dir = variables.get("inventory_dir")
        parts["inventory"] = tree_digest(Path(inventory_dir)) if inventory_dir else ""
        parts["controller"] = {
            str(p): controller_digest(str(p))
            for p in (self._templar.template(x) for x in self.get_option("controller_paths"))
        }
        parts["groups"] = plain(variables.get("groups", {}))
        facts = variables.get("ansible_facts", {}) or {}
        parts["facts"] = {name: plain(facts.get(name)) for name in FACTS}
        # Templated against the facts without those modules set (the artifact map, the
        # package list): they come and go with the fact cache, and what they stand for is
        # a file on the host that the stage lists among its paths.
        stable = {k: v for k, v in facts.items() if not k.startswith(VOLATILE_FACTS)}
        templar = self._templar.copy_with_new_env(
            available_variables={**variables, "ansible_facts": stable}
        )
        # Public variables only: a role's private ones (`_role_*`) are derived, often from
        # what its tasks register, and would differ between a run that ran the stage and
        # one that skipped it; what they derive from is counted above.
        parts["vars"] = {
            name: _value(templar, variables[name] if name in variables else trust(raw))
            for name, raw in sorted(files.items())
            if not name.startswith("_") and name not in RUN_MODE
        }
        parts["renew"] = renewal(
            [self._templar.template(x) for x in self.get_option("certificates")],
            int(self._templar.template(self.get_option("renew_days"))),
        )
        return [digests(parts)]


def _value(templar: Any, raw: Any) -> Any:
    try:
        return plain(templar.template(raw))
    except Exception:  # undefined until the stage runs (a registered result): stable either way
        return UNDEFINED
