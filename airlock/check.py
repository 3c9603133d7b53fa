"""`airlock check`: validate an inventory, then every host, before anything is changed."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from airlock.inventory import Inventory, Problem, known_settings, load_inventory, validate
from airlock.paths import project_root
from airlock.runner import RunRequest, RunResult, failure_message, run_playbook

# What playbooks/check.yml's results are recognised by (never by task names): the module
# that checks a host, and the line its raw python3 check prints when python3 is missing.
PREFLIGHT_MODULE = "airlock.cluster.host_preflight"
PYTHON_MISSING = "airlock-check: no python3"


def static_problems(inventory: Path) -> tuple[Inventory, list[Problem]]:
    inv = load_inventory(inventory)
    known = known_settings()
    problems = validate(inv, known)
    if not inv.broken:
        problems += version_problems(inv, known)
    return inv, problems


def version_problems(inv: Inventory, known: dict[str, Any]) -> list[Problem]:
    """Versions the inventory asks for must be in the offline bundle's manifest."""
    manifest_path = project_root() / "offline-bundle" / "manifest.yml"
    version = inv.settings.get("airlock_kube_version", known.get("airlock_kube_version"))
    if not manifest_path.is_file() or not version or "{{" in str(version):
        return []
    from airlock.bundle.manifest import ManifestError, load_manifest

    try:
        load_manifest(manifest_path, str(version))
    except ManifestError:
        default = load_manifest(manifest_path)
        releases = _releases(manifest_path)
        return [
            Problem(
                "setting airlock_kube_version",
                f"{version} is not in the bundle manifest {manifest_path.name} "
                f"(it pins Kubernetes {', '.join(releases)})",
                f'set airlock_kube_version: "{default.kube_version.lstrip("v")}" (or another '
                "release it pins), or pin the release you want in offline-bundle/manifest.yml",
            )
        ]
    return []


def _releases(manifest_path: Path) -> list[str]:
    import yaml

    data = yaml.safe_load(manifest_path.read_text(encoding="utf-8")) or {}
    return [str(v) for v in data.get("kube_versions") or [data.get("kube_version")]]


def host_problems(inv: Inventory, limit: str = "") -> tuple[list[Problem], RunResult]:
    """Run playbooks/check.yml on every host and turn its events into problems."""
    req = RunRequest(project_root() / "playbooks" / "check.yml", inv.source, limit=limit)
    result = run_playbook(req, out=io.StringIO(), quiet=True)
    max_skew = float(inv.settings.get("airlock_max_clock_skew", 2))
    problems: list[Problem] = []
    answered: set[str] = set()
    for event in result.events:
        problems += _event_problems(event, max_skew, answered)
    for host in sorted(set(inv.hosts) - answered):
        if not limit and not any(p.subject == f"host {host}" for p in problems):
            problems.append(
                Problem(f"host {host}", "was not checked", f"see the run log in {result.run_dir}")
            )
    return problems, result


def _event_problems(event: dict[str, Any], max_skew: float, answered: set[str]) -> list[Problem]:
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    host = data.get("host", "")
    res = data.get("res") or {}
    subject = f"host {host}"
    if kind == "runner_on_unreachable":
        answered.add(host)
        return [
            Problem(
                subject,
                f"cannot be reached over SSH: {failure_message(res)}",
                "check ansible_host, ansible_user and the SSH key, and that sshd runs",
            )
        ]
    if kind == "runner_on_failed":
        answered.add(host)
        return [_failed_problem(subject, data.get("task", ""), res)]
    if kind == "runner_on_ok" and _module(data) == PREFLIGHT_MODULE:
        answered.add(host)
        found = [
            Problem(subject, check["message"], check["fix"] or "see the message")
            for check in res.get("checks") or []
            if not check.get("ok")
        ]
        skew = _clock_skew(event, res)
        if skew is not None and abs(skew) > max_skew:
            found.append(
                Problem(
                    subject,
                    f"clock differs from the controller's by {skew:+.1f}s",
                    "synchronise it with chrony/NTP (allowed: "
                    f"{max_skew:g}s, airlock_max_clock_skew)",
                )
            )
        return found
    return []


def host_notes(result: RunResult) -> list[str]:
    """Checks a host passed with a warning (cgroup v1), one line each, by host."""
    notes = []
    for event in result.events:
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and _module(data) == PREFLIGHT_MODULE:
            notes += [
                f"host {data.get('host', '')}: {c['message']}"
                for c in (data.get("res") or {}).get("checks") or []
                if c.get("ok") and c.get("warning")
            ]
    return sorted(notes)


def _module(data: dict[str, Any]) -> str:
    """The module a task ran, by its full name (ansible-runner's event data)."""
    return str(data.get("resolved_action") or data.get("task_action") or "")


def _failed_problem(subject: str, task: str, res: dict[str, Any]) -> Problem:
    message = failure_message(res)
    lowered = message.lower()
    if PYTHON_MISSING in str(res.get("stdout") or ""):
        return Problem(subject, "has no python3", "install python3 on it (apt-get install python3)")
    if "sudo" in lowered or "become" in lowered or "privilege" in lowered:
        return Problem(
            subject,
            f"privilege escalation failed: {message}",
            "allow the SSH user passwordless sudo, or set ansible_become_password",
        )
    return Problem(
        subject,
        f"check task '{task}' failed: {message}",
        "fix what the message says and run airlock check again",
    )


def _clock_skew(event: dict[str, Any], res: dict[str, Any]) -> float | None:
    """Host clock minus the controller's at the moment the result arrived."""
    host_time, created = res.get("host_time"), event.get("created")
    if host_time is None or not created:
        return None
    received = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    # The host's reading is older than the receipt by the transfer time (well under a
    # second over a persistent SSH connection), so only its lower bound is loosened.
    skew = float(host_time) - received
    return 0.0 if -1.0 <= skew <= 0.0 else skew
