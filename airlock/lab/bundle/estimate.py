"""How long the lab's Go builds will take, and how long is left while they run.

Each program's estimate is, in this order: its own recorded time on this machine
(`build-times.json` in the lab cache, written by gobuild after every build), the same
program's time at another version on this machine, the shipped table of first builds on a
2-core machine (airlock/data/lab-build-times.json: one core each, nice 19, as gobuild
builds), or two minutes. While the builds run, the time left is the estimates of the
programs still to build, scaled by how the finished ones compared with theirs (between
half and double).

`BuildClock` prints plain lines (`[3/30] building kubelet v1.37.2 (about 4 min; about 31
min left)`) and, when stderr is a terminal, a live rich progress bar of the whole.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

TABLE = Path(__file__).resolve().parents[2] / "data" / "lab-build-times.json"
UNKNOWN = 120.0


@dataclass
class Item:
    label: str
    seconds: float
    source: str
    took: float | None = None


def typical() -> dict[str, float]:
    """The shipped table: program name -> seconds of a first build on a 2-core machine."""
    if not TABLE.is_file():
        return {}
    return {str(k): float(v) for k, v in json.loads(TABLE.read_text())["seconds"].items()}


def estimate(
    name: str, version: str, arch: str, recorded: dict[str, float], table: dict[str, float]
) -> tuple[float, str]:
    """(seconds, where the figure comes from) for building `name` at `version`."""
    key = f"{name}@{version}/{arch}"
    if key in recorded:
        return recorded[key], "this machine"
    other = [v for k, v in recorded.items() if k.startswith(f"{name}@") and k.endswith(f"/{arch}")]
    if other:
        return max(other), "this machine"
    if name in table:
        return table[name], "typical"
    return UNKNOWN, "guess"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class BuildClock:
    """Lines (always) and a live bar (on a terminal) for a sequence of builds."""

    def __init__(
        self, items: list[Item], out: TextIO = sys.stderr, live: bool | None = None
    ) -> None:
        self.items = items
        self.out = out
        self.live = (out.isatty() if live is None else live) and bool(items)
        self._current = -1
        self._started = 0.0
        self._stop = threading.Event()
        self._progress = None
        self._task = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BuildClock:
        if self.items:
            self._line(self.summary())
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                console=Console(file=self.out),
                transient=True,
            )
            self._task = self._progress.add_task("Go builds", total=self.total(), left="")
            self._progress.start()
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._progress is not None:
            self._progress.stop()

    def total(self) -> float:
        return sum(i.seconds for i in self.items)

    def summary(self) -> str:
        sources = sorted({i.source for i in self.items})
        return (
            f"{len(self.items)} program(s) to build from Go modules: about "
            f"{minutes(self.total())} ({', '.join(sources)} figures; one at a time, nice 19)"
        )

    def start(self, index: int) -> None:
        self._current, self._started = index, time.monotonic()
        item = self.items[index]
        self._line(
            f"[{index + 1}/{len(self.items)}] building {item.label} (about "
            f"{minutes(item.seconds)}; about {minutes(self.left())} left in all)"
        )

    def done(self, index: int, failed: str = "") -> None:
        item = self.items[index]
        item.took = time.monotonic() - self._started
        self._current = -1
        state = f"NOT BUILT ({failed})" if failed else "built"
        self._line(f"{state} {item.label} in {item.took:.0f} s (estimated {item.seconds:.0f} s)")

    def left(self) -> float:
        """Seconds left: the estimates still to run, scaled by how the finished ones went."""
        finished = [i for i in self.items if i.took is not None]
        ratio = 1.0
        if finished:
            ratio = sum(i.took or 0.0 for i in finished) / max(sum(i.seconds for i in finished), 1)
            ratio = min(max(ratio, 0.5), 2.0)
        left = sum(i.seconds for i in self.items if i.took is None) * ratio
        if self._current >= 0:
            left -= min(time.monotonic() - self._started, self.items[self._current].seconds * ratio)
        return max(left, 0.0)

    def _line(self, text: str) -> None:
        line = f"lab: {text}"
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.out, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            done = self.total() - self.left()
            label = self.items[self._current].label if self._current >= 0 else ""
            assert self._progress is not None and self._task is not None
            self._progress.update(
                self._task,
                completed=done,
                description=f"Go builds {label}",
                left=f"about {minutes(self.left())} left",
            )
