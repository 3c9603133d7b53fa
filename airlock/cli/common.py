"""What several commands share: the inventory argument and the problem list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def inventory_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-i",
        "--inventory",
        type=Path,
        required=True,
        help="inventory file or directory (e.g. inventories/lab)",
    )


def print_problems(problems: list, header: str) -> None:
    print(f"{header}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more Ansible output in the log"
    )


def inventory_ok(inventory: Path) -> bool:
    """The static inventory checks; on problems, print them and that nothing was changed."""
    from airlock.check import static_problems

    _, problems = static_problems(inventory)
    if problems:
        print_problems(problems, f"inventory {inventory}")
        print("nothing was changed; fix the inventory and run again", file=sys.stderr)
    return not problems
