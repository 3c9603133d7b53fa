# Copyright: airlock developers
# Apache-2.0
"""What a stage of airlock left on a host, and whether the host still looks like that.

A stage (a play of `site.yml`) records, when it has converged a host, the fingerprint of
its inputs (computed on the controller: lookup `airlock.cluster.stage_fingerprint`), a
signature of every file it manages and the state of every service it runs. The next run
reads the record first: when the fingerprint and every file and service still match on
every host of the play, the stage is skipped as a whole; anything else (a changed input, a
file edited or removed by hand, a service stopped, no record) runs the stage in full.

A file's signature is its type, mode and owner, and then: for a regular file up to 1 MiB
its size and sha256 (a rewrite with the same bytes is no change); for a larger one (a
program) its inode, ctime, size and mtime: any write or replacement moves the ctime, which
no program can set back, so a 100 MB binary costs one stat(). A directory counts by its
type, mode and owner and by its entries.
State outside files (objects in the Kubernetes API) can be watched by probes: read-only
commands whose exit code and output digest are recorded, e.g. the uid and generation of
each object a stage applies (a deletion or an edit of its spec changes them, status does
not).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SERVICE_PROPERTIES = ("ActiveState", "UnitFileState")
#: Regular files up to this size count by content; larger ones (programs) by inode, ctime,
#: size and mtime.
READ_LIMIT = 1 << 20


class StageStateError(Exception):
    """A stage record that cannot be read or written; the message says which and why."""


def path_signature(path: str, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Signatures of `path` and, for a directory, of everything below it but `exclude`
    (absolute paths another stage manages: not even their directory entries count)."""
    top = Path(path)
    if not top.is_absolute():
        raise StageStateError(f"stage paths must be absolute: {path!r}")
    out: dict[str, Any] = {}
    _add(out, top)
    if top.is_dir() and not top.is_symlink():
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if os.path.join(root, d) not in exclude)
            for name in dirs + sorted(f for f in files if os.path.join(root, f) not in exclude):
                _add(out, Path(root) / name)
    return out


def _add(out: dict[str, Any], path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        out[str(path)] = "absent"
        return
    entry: list[Any] = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
    if stat.S_ISDIR(st.st_mode):
        # Its entries stand for its contents; its own ctime moves whenever any other
        # program adds a file beside them (see `exclude`).
        out[str(path)] = entry
        return
    if stat.S_ISREG(st.st_mode) and st.st_size <= READ_LIMIT:
        # Configuration, keys, scripts: by content, so a program writing the same bytes
        # again (kubeadm join rewrites ca.crt) is no change.
        entry += [st.st_size, _sha256(path)]
    elif stat.S_ISREG(st.st_mode):
        entry += [st.st_ino, st.st_ctime_ns, st.st_size, st.st_mtime_ns]
    elif stat.S_ISLNK(st.st_mode):
        entry.append(os.readlink(path))
    else:
        entry += [st.st_ino, st.st_ctime_ns]
    out[str(path)] = entry


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def service_states(units: list[str], systemctl: str = "systemctl") -> dict[str, dict[str, str]]:
    """ActiveState and UnitFileState of each unit (one `systemctl show` for all)."""
    if not units:
        return {}
    if not os.path.isdir("/run/systemd/system"):
        # Not booted with systemd (a bare container): no unit can run; say so, stably.
        return {unit: dict.fromkeys(SERVICE_PROPERTIES, "no-systemd") for unit in units}
    props = ",".join(("Id", *SERVICE_PROPERTIES))
    proc = subprocess.run(
        [systemctl, "show", f"--property={props}", "--", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StageStateError(
            f"systemctl show {' '.join(units)} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    blocks = [b for b in proc.stdout.strip().split("\n\n")]
    states: dict[str, dict[str, str]] = {}
    for unit, block in zip(units, blocks, strict=False):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[unit] = {key: fields.get(key, "") for key in SERVICE_PROPERTIES}
    return states


def probe_states(probes: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Exit code and sha256 of the output of each read-only probe command, by name."""
    states: dict[str, list[Any]] = {}
    for probe in probes:
        try:
            proc = subprocess.run(
                probe["argv"], capture_output=True, check=False, timeout=probe.get("timeout", 30)
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            states[probe["name"]] = [None, type(exc).__name__]
            continue
        states[probe["name"]] = [proc.returncode, hashlib.sha256(proc.stdout).hexdigest()]
    return states


def current(
    paths: list[str],
    services: list[str],
    exclude: list[str] | None = None,
    probes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    skip = frozenset(os.path.normpath(p) for p in exclude or [])
    files: dict[str, Any] = {}
    for path in paths:
        files.update(path_signature(os.path.normpath(path), skip))
    state = {"files": files, "services": service_states(services)}
    if probes:
        state["probes"] = probe_states(probes)
    return state


def difference(
    recorded: dict[str, Any] | None, fingerprint: dict[str, str], now: dict[str, Any]
) -> str:
    """Why the host differs from the record, in one line; "" when it does not."""
    if recorded is None:
        return "no record of an earlier run"
    inputs = _input_difference(recorded.get("fingerprint"), fingerprint)
    if inputs:
        return inputs
    return (
        _file_difference(recorded.get("files", {}), now["files"])
        or _service_difference(recorded.get("services", {}), now["services"])
        or _probe_difference(recorded.get("probes", {}), now.get("probes", {}))
    )


def _probe_difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            return f"probe {name!r} answers differently than after the last run"
    return ""


def _input_difference(before: Any, after: dict[str, str]) -> str:
    if not isinstance(before, dict):
        return "its inputs changed (a record from an older airlock)"
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return ""
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"its inputs changed: {', '.join(changed[:3])}{more}"


def _file_difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
    # The most telling first: a removed or new entry, then the deepest change (a file,
    # rather than the directory whose ctime its edit moved).
    removed = sorted(p for p in changed if after.get(p, "absent") == "absent")
    if removed:
        return f"{removed[0]} was removed"
    new = sorted(p for p in changed if p not in before)
    if new:
        return f"{new[0]} is new"
    if changed:
        return f"{min(changed, key=lambda p: (-p.count('/'), p))} changed since the last run"
    return ""


def _service_difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    for unit in sorted(set(before) | set(after)):
        if before.get(unit) != after.get(unit):
            state = after.get(unit, {})
            return (
                f"{unit} is {state.get('ActiveState', 'unknown')}/"
                f"{state.get('UnitFileState', 'unknown')}, not as the last run left it"
            )
    return ""


def record_path(directory: str, name: str) -> Path:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise StageStateError(f"stage name {name!r}: use letters, digits, '-' and '_'")
    return Path(directory) / f"{name}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable or torn: the stage runs and writes it again
    return data if isinstance(data, dict) else None


def write_record(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, 0600 in a 0700 directory."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
