"""`airlock collection build`: the collection airlock.cluster as a tarball."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    collection = sub.add_parser(
        "collection",
        help="the Ansible collection airlock.cluster as an artifact",
        description="The collection airlock.cluster (modules, roles, playbooks) as the "
        "tarball AWX, Automation Hub and `ansible-galaxy collection install` take.",
    )
    actions = collection.add_subparsers(dest="collection_action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build airlock-cluster-VERSION.tar.gz",
        description="Stage plugins/, roles/ and playbooks/ with the collection's galaxy.yml "
        "and run `ansible-galaxy collection build`. Install the result offline with "
        "`ansible-galaxy collection install --offline -p DIR TARBALL`.",
    )
    build.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory for the tarball (default: .airlock/dist in the project)",
    )
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from airlock import collection
    from airlock.paths import project_root, state_dir

    output = args.output or state_dir() / "dist"
    print(collection.build(project_root(), output))
    return 0
