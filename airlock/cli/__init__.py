"""The `airlock` command line: `main()` builds the parser from one module per command.

A command is a module here with `register(subparsers)`, which adds its parser and sets
`handler` (argparse Namespace -> exit code). Each module imports only argparse and the
leaves at the top; the work (airlock.check, airlock.runner, airlock.lab, airlock.bundle)
is imported inside the handler, so `airlock check` starts without loading the bundle
builder or the lab. Handlers raise AirlockError for problems a user can fix.

Nothing else reaches the screen as a traceback: an unexpected error prints one line with
the path of a log file under .airlock/logs/ that holds the traceback (`--debug` prints it
too).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from airlock.cli import (
    backup,
    bundle,
    certs,
    check,
    collection,
    deploy,
    ee,
    kubectl,
    lab,
    monitoring,
    node,
    status,
    upgrade,
    version,
)
from airlock.errors import AirlockError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Install production Kubernetes into air-gapped datacenters "
        "from one offline bundle.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an unexpected error (it is always kept in .airlock/logs/)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check.register(sub)
    status.register(sub)
    kubectl.register(sub)
    deploy.register(sub)
    upgrade.register(sub)
    certs.register(sub)
    backup.register(sub)
    node.register(sub)
    monitoring.register(sub)
    lab.register(sub)
    bundle.register(sub)
    collection.register(sub)
    ee.register(sub)
    version.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(kubectl.kubectl_argv(given))
    handler: Handler = args.handler
    try:
        return handler(args)
    except AirlockError as exc:
        print(f"airlock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("airlock: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place an unexpected error is reported
        log = _crash_log(argv)
        if args.debug:
            traceback.print_exc()
        summary = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        print(
            f"airlock: internal error ({summary}); this is a bug: please report it with "
            f"{log} (it holds the traceback; rerun with --debug to see it here)",
            file=sys.stderr,
        )
        return 70


def _crash_log(argv: Sequence[str] | None) -> Path:
    """Write the current exception's traceback to .airlock/logs/ (or the temp directory)."""
    text = (
        f"airlock {' '.join(argv if argv is not None else sys.argv[1:])}\n"
        f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n{traceback.format_exc()}"
    )
    name = f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        from airlock.paths import state_dir

        directory = state_dir() / "logs"
        directory.mkdir(mode=0o700, exist_ok=True)
    except Exception:  # no project tree: the temp directory still works
        directory = Path(tempfile.gettempdir())
    path = directory / name
    try:
        path.write_text(text)
    except OSError:
        path = Path(tempfile.gettempdir()) / name
        path.write_text(text)
    return path
