"""Prints how long the lab and `airlock check` take on this machine.

    python benchmarks/lab_and_check.py [--keep]

Measures: `lab up` of a 3+2 lab from nothing (image already built), `lab up` again
(no-op), `check --static`, a full `check` over SSH, and `lab down`. Numbers only; it
never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRLOCK = str(Path(sys.executable).parent / "airlock")
NAME = "bench"


def timed(*args: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [AIRLOCK, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=dict(os.environ, AIRLOCK_HOME=str(ROOT)),
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args()
    inventory = str(ROOT / ".airlock" / "labs" / NAME / "inventory")
    up = [
        "lab",
        "up",
        "--name",
        NAME,
        "--masters",
        "3",
        "--workers",
        "2",
        "--subnet",
        "10.77.40.0/24",
    ]
    timed("lab", "down", "--name", NAME)
    rows = [
        ("lab up, 5 hosts, from nothing", timed(*up)),
        ("lab up again (no change)", timed(*up)),
        ("check --static (no host contacted)", timed("check", "--static", "-i", inventory)),
        ("check, 5 hosts over SSH", timed("check", "-i", inventory)),
    ]
    if not args.keep:
        rows.append(("lab down", timed("lab", "down", "--name", NAME)))
    for label, seconds in rows:
        print(f"{label:<40} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
