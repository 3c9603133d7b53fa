"""`airlock ee context|build`: the execution environment for AWX / AAP (docs/awx.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    ee = sub.add_parser(
        "ee",
        help="the execution environment (EE) image for AWX / Automation Platform",
        description="airlock's execution environment: execution-environment.yml built with "
        "ansible-builder from the bundle's wheels and the collection airlock.cluster.",
    )
    actions = ee.add_subparsers(dest="ee_action", required=True, metavar="ACTION")
    context = actions.add_parser(
        "context",
        help="stage the wheels and the collection, then `ansible-builder create`",
        description="Write the EE's build context (Containerfile and _build/) to --output.",
    )
    build = actions.add_parser(
        "build",
        help="build the EE image with podman from the lab's Debian 12 image, offline",
        description="Make the build context, then `podman build --network=none` from the "
        "lab host image; the image is tagged localhost/airlock-ee:VERSION.",
    )
    for p in (context, build):
        p.add_argument(
            "--output",
            type=Path,
            default=None,
            metavar="DIR",
            help="the build context's directory (default: .airlock/ee/context)",
        )
    context.set_defaults(handler=_context)
    build.set_defaults(handler=_build)


def _output(args: argparse.Namespace) -> Path:
    from airlock.paths import state_dir

    return args.output or state_dir() / "ee" / "context"


def _context(args: argparse.Namespace) -> int:
    from airlock.lab import ee
    from airlock.paths import project_root

    print(ee.context(project_root(), _output(args)))
    return 0


def _build(args: argparse.Namespace) -> int:
    from airlock.lab import ee
    from airlock.paths import project_root

    print(ee.build(project_root(), _output(args), lambda line: print(line, flush=True)))
    return 0
