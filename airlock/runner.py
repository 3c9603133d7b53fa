"""Runs playbooks through ansible-runner with live progress, a recap and a run directory.

Each run gets `.airlock/runs/<time>-<playbook>/`: ansible-runner's artifacts (the full
stdout log and every job event as JSON), plus `events.jsonl` (one event a line) and
`summary.json`. Env files are suppressed and, after the run, the environment ansible-runner
records in `artifacts/*/command` (the caller's whole environment, which may hold tokens) is
cut down to its variable names, so no secret stays there; only failure messages Ansible
already censors for `no_log` tasks are printed. Facts are cached per inventory
(`facts_dir`): ansible-runner's own per-run cache would gather them again on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from airlock.errors import AirlockError
from airlock.paths import project_root, state_dir
from airlock.timings import plays

KEEP_RUNS = 30


@dataclass
class Failure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class RunRequest:
    playbook: Path
    inventory: Path
    limit: str = ""
    tags: str = ""
    skip_tags: str = ""
    check: bool = False
    diff: bool = False
    extra_vars: list[str] = field(default_factory=list)
    verbosity: int = 0
    # The reproduce command of a failed run narrows to the first failed host, unless the
    # playbook only makes sense on all of them (a whole-cluster reset refuses a --limit).
    whole_inventory: bool = False

    def ansible_args(self) -> list[str]:
        args: list[str] = []
        if self.limit:
            args += ["--limit", self.limit]
        if self.tags:
            args += ["--tags", self.tags]
        if self.skip_tags:
            args += ["--skip-tags", self.skip_tags]
        if self.check:
            args.append("--check")
        if self.diff:
            args.append("--diff")
        for extra in self.extra_vars:
            args += ["-e", extra]
        if self.verbosity:
            args.append("-" + "v" * self.verbosity)
        return args

    def reproduce(self, limit: str = "") -> str:
        """The ansible-playbook command line that reruns this (optionally for one host)."""
        root = project_root()
        args = self.ansible_args()
        if limit and not self.limit and not self.whole_inventory:
            args = ["--limit", limit, *args]
        cmd = [
            "ansible-playbook",
            "-i",
            _rel(self.inventory, root),
            _rel(self.playbook, root),
            *args,
        ]
        cache = f"ANSIBLE_CACHE_PLUGIN_CONNECTION={shlex.quote(str(facts_dir(self.inventory)))}"
        return f"cd {shlex.quote(str(root))} && {cache} {shlex.join(cmd)}"


RUN_DIR_LINE = "log and events: "
#: Characters of one task result ansible-runner keeps in its event (its default: 700,000).
MAX_EVENT_RES = 64_000_000


def summary_from_output(output: str) -> dict[str, Any]:
    """The summary.json of the run whose `airlock deploy` output this is (its last line
    naming the run directory); for scripts and tests that drive the CLI."""
    lines = [line for line in output.splitlines() if RUN_DIR_LINE in line]
    if not lines:
        raise AirlockError("the output names no run directory (`log and events: DIR`)")
    run_dir = Path(lines[-1].split(RUN_DIR_LINE, 1)[1].strip())
    return json.loads((run_dir / "summary.json").read_text())


def facts_dir(inventory: Path) -> Path:
    """The fact cache of one inventory.

    Facts are cached by host name, and different inventories (a staging and a production
    cluster, two labs) often share names such as m1: one cache per inventory keeps one
    cluster's addresses and interfaces from being read for another's hosts.
    """
    resolved = str(inventory.resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    return (
        state_dir()
        / "facts"
        / f"{inventory.resolve().parent.name}-{inventory.resolve().name}-{digest}"
    )


def _rel(path: Path, root: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@dataclass
class RunResult:
    rc: int
    status: str
    run_dir: Path
    elapsed: float
    stats: dict[str, dict[str, int]]
    failures: list[Failure]
    events: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failures


class Progress:
    """Turns runner events into progress lines, failure lines and a final recap."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.tty = out.isatty()
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.play = ""
        self.task = ""
        self.counts: dict[str, int] = defaultdict(int)
        self.failures: list[Failure] = []
        self.stats: dict[str, dict[str, int]] = {}

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()

    def _status(self) -> None:
        if self.quiet or not self.tty:
            return
        c = self.counts
        text = (
            f"[{self.elapsed()}] {self.task[:50]:<50} ok={c['ok']} changed={c['changed']} "
            f"failed={c['failed']} unreachable={c['unreachable']}"
        )
        self.out.write("\r\033[K" + text)
        self.out.flush()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.start)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        with self.lock:
            if kind == "playbook_on_play_start":
                self.play = data.get("play", "")
                self._line(f"[{self.elapsed()}] PLAY {self.play}")
            elif kind == "playbook_on_task_start":
                self.task = data.get("task", "")
                if not self.tty:
                    self._line(f"[{self.elapsed()}]   {self.task}")
                self._status()
            elif kind in (
                "runner_on_ok",
                "runner_on_failed",
                "runner_on_unreachable",
                "runner_on_skipped",
            ):
                self._host_result(kind, data)
            elif kind == "playbook_on_stats":
                self._stats(data)

    def _host_result(self, kind: str, data: dict[str, Any]) -> None:
        res = data.get("res") or {}
        host = data.get("host", "?")
        if kind == "runner_on_ok":
            self.counts["changed" if res.get("changed") else "ok"] += 1
        elif kind == "runner_on_skipped":
            self.counts["skipped"] += 1
        elif kind == "runner_on_failed" and data.get("ignore_errors"):
            self.counts["ok"] += 1
        else:
            unreachable = kind == "runner_on_unreachable"
            self.counts["unreachable" if unreachable else "failed"] += 1
            failure = Failure(host, data.get("task", self.task), failure_message(res), unreachable)
            self.failures.append(failure)
            label = "UNREACHABLE" if unreachable else "FAILED"
            self._line(f"[{self.elapsed()}] {label} {host} | {failure.task} | {failure.message}")
        self._status()

    def _stats(self, data: dict[str, Any]) -> None:
        hosts: set[str] = set()
        for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
            hosts.update((data.get(key) or {}).keys())
        for host in sorted(hosts):
            self.stats[host] = {
                key: int((data.get(key) or {}).get(host, 0))
                for key in ("ok", "changed", "failures", "dark", "skipped")
            }

    def recap(self) -> str:
        lines = [
            f"{'HOST':<20} {'OK':>5} {'CHANGED':>8} {'FAILED':>7} {'UNREACH':>8} {'SKIPPED':>8}"
        ]
        for host, s in self.stats.items():
            lines.append(
                f"{host:<20} {s['ok']:>5} {s['changed']:>8} {s['failures']:>7} "
                f"{s['dark']:>8} {s['skipped']:>8}"
            )
        return "\n".join(lines)


def failure_message(res: dict[str, Any]) -> str:
    """One line that says why a task failed."""
    if res.get("censored"):
        return str(res["censored"])
    items = [i for i in res.get("results") or [] if isinstance(i, dict) and i.get("failed")]
    if items:  # a loop: "One or more items failed" says nothing, the first failed item does
        return failure_message(items[0])
    parts = [str(res.get("msg") or "").strip()]
    stderr = str(res.get("stderr") or "").strip()
    if stderr:
        parts.append(stderr.splitlines()[-1])
    elif res.get("rc") not in (None, 0) and not parts[0]:
        parts.append(f"exit code {res['rc']}")
    text = ": ".join(p for p in parts if p) or "failed (no message)"
    return " ".join(text.split())[:500]


def new_run_dir(name: str) -> Path:
    runs = state_dir() / "runs"
    runs.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = runs / f"{stamp}-{name}"
    run_dir.mkdir(mode=0o700)
    _prune(runs)
    return run_dir


def _prune(runs: Path) -> None:
    import shutil

    old = sorted(p for p in runs.iterdir() if p.is_dir())[:-KEEP_RUNS]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)


def run_playbook(req: RunRequest, out: TextIO = sys.stdout, quiet: bool = False) -> RunResult:
    """Run one playbook; stream progress to `out`; return the result (never raises on failure)."""
    import ansible_runner

    root = project_root()
    run_dir = new_run_dir(req.playbook.stem)
    progress = Progress(out, quiet=quiet)
    events: list[dict[str, Any]] = []
    events_file = (run_dir / "events.jsonl").open("w")

    def on_event(event: dict[str, Any]) -> bool:
        events.append(event)
        events_file.write(json.dumps(event, default=str) + "\n")
        progress.handle(event)
        return True

    env = {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts_dir(req.inventory)),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # ansible-runner drops a result of more than 700,000 characters from its event
        # (`res` becomes {}): `airlock status` reads the nodes and pods of a busy cluster
        # (e2e's, about half that in JSON, twice with stdout_lines) from one.
        "MAX_EVENT_RES": str(MAX_EVENT_RES),
    }
    started = time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(run_dir),
            project_dir=str(root),
            playbook=str(req.playbook.resolve()),
            inventory=str(req.inventory.resolve()),
            cmdline=shlex.join(req.ansible_args()) or None,
            envvars=env,
            suppress_env_files=True,
            quiet=True,
            event_handler=on_event,
            rotate_artifacts=1,
            # An absolute path: ansible-runner joins it to the run's artifact directory
            # and would otherwise point ANSIBLE_CACHE_PLUGIN_CONNECTION there.
            fact_cache=str(facts_dir(req.inventory)),
            fact_cache_type="jsonfile",
        )
    finally:
        events_file.close()
        _scrub_environment(run_dir)
    elapsed = time.monotonic() - started
    rc = runner.rc if runner.rc is not None else 1
    result = RunResult(
        rc, runner.status, run_dir, elapsed, progress.stats, progress.failures, events
    )
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "playbook": str(req.playbook),
                "inventory": str(req.inventory),
                "rc": rc,
                "status": runner.status,
                "elapsed_s": round(elapsed, 1),
                "stats": progress.stats,
                "failures": [f.__dict__ for f in progress.failures],
                "plays": [
                    {
                        "name": play.name,
                        "seconds": round(play.seconds, 1),
                        "tasks": play.tasks,
                        "skipped_by_gate": play.skipped_by_gate,
                    }
                    for play in plays(events)
                ],
                "reproduce": req.reproduce(),
            },
            indent=2,
        )
    )
    if not quiet:
        _report(req, result, progress, out)
    return result


def _scrub_environment(run_dir: Path) -> None:
    """Keep only the names of the environment ansible-runner wrote into `command`."""
    for command in (run_dir / "artifacts").glob("*/command"):
        try:
            recorded = json.loads(command.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(recorded, dict) and isinstance(recorded.get("env"), dict):
            recorded["env"] = sorted(recorded["env"])
            command.write_text(json.dumps(recorded))


def _report(req: RunRequest, result: RunResult, progress: Progress, out: TextIO) -> None:
    out.write("\n" + progress.recap() + "\n")
    gated = [play.name for play in plays(result.events) if play.skipped_by_gate]
    if gated:
        out.write(
            f"\nSkipped, every host as the last run left it ({len(gated)}): "
            f"{'; '.join(gated)}. `airlock deploy --full` runs them anyway.\n"
        )
    minutes, seconds = divmod(int(result.elapsed), 60)
    verdict = "succeeded" if result.ok else f"FAILED ({result.status}, rc={result.rc})"
    out.write(
        f"\n{req.playbook.name} {verdict} in {minutes}m{seconds:02d}s; "
        f"{RUN_DIR_LINE}{result.run_dir}\n"
    )
    if result.failures:
        out.write("\nWhat failed:\n")
        for failure in result.failures:
            kind = "unreachable" if failure.unreachable else "failed"
            out.write(f"  host {failure.host} {kind} in task '{failure.task}': {failure.message}\n")
        first = result.failures[0].host
        out.write(f"\nReproduce with:\n  {req.reproduce(limit=first)}\n")
    elif not result.ok:
        out.write(
            f"\nReproduce with:\n  {req.reproduce()}\n"
            f"See the full log: {result.run_dir}/artifacts\n"
        )
    out.flush()
