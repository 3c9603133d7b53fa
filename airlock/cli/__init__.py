"""The `airlock` command line: `main()` builds the parser from one module per command.

A command is a module here with `register(subparsers)`, which adds its parser and sets
`handler` (argparse Namespace -> exit code). Each module imports only argparse and the
leaves at the top; the work (airlock.check, airlock.runner, airlock.lab, airlock.bundle)
is imported inside the handler, so `airlock check` starts without loading the bundle
builder or the lab. Handlers raise AirlockError for problems a user can fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from airlock.cli import bundle, check, deploy, lab, version
from airlock.errors import AirlockError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airlock",
        description="Install production Kubernetes into air-gapped datacenters "
        "from one offline bundle.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check.register(sub)
    deploy.register(sub)
    lab.register(sub)
    bundle.register(sub)
    version.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except AirlockError as exc:
        print(f"airlock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("airlock: interrupted", file=sys.stderr)
        return 130
