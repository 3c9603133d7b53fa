"""`airlock version`: airlock's version and its Ansible's."""

from __future__ import annotations

import argparse
import sys

from airlock import __version__


def register(sub: argparse._SubParsersAction) -> None:
    version = sub.add_parser("version", help="print airlock's version and its Ansible's")
    version.set_defaults(handler=_version)


def _version(_: argparse.Namespace) -> int:
    from importlib.metadata import version

    print(
        f"airlock {__version__} (ansible-core {version('ansible-core')}, "
        f"ansible {version('ansible')}, ansible-runner {version('ansible-runner')}, "
        f"python {sys.version.split()[0]})"
    )
    return 0
