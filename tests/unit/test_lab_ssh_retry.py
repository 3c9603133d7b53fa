"""`airlock lab up` retries SSH while the network (not the host) fails, within a deadline."""

from __future__ import annotations

import sys
from pathlib import Path

from airlock.lab.hosts import ssh_until_up

# Stands in for ssh: fails with `message` until it has run `failures` times, then succeeds.
FLAKY = """
import pathlib, sys
count = pathlib.Path(sys.argv[1])
runs = int(count.read_text()) if count.exists() else 0
count.write_text(str(runs + 1))
if runs < int(sys.argv[2]):
    sys.exit("ssh: connect to host 10.77.47.13 port 22: " + sys.argv[3])
"""


def flaky(tmp_path: Path, failures: int, message: str) -> tuple[list[str], Path]:
    count = tmp_path / "runs"
    return [sys.executable, "-c", FLAKY, str(count), str(failures), message], count


def test_a_timed_out_connection_is_tried_again_until_it_answers(tmp_path: Path) -> None:
    cmd, count = flaky(tmp_path, 2, "Connection timed out")
    proc = ssh_until_up(cmd, deadline_s=10, pause_s=0.01)
    assert proc.returncode == 0
    assert count.read_text() == "3"


def test_a_refusal_by_the_host_is_not_retried(tmp_path: Path) -> None:
    cmd, count = flaky(tmp_path, 5, "Permission denied (publickey)")
    proc = ssh_until_up(cmd, deadline_s=10, pause_s=0.01)
    assert proc.returncode != 0 and "Permission denied" in proc.stderr
    assert count.read_text() == "1"


def test_the_deadline_ends_the_retries_with_the_last_error(tmp_path: Path) -> None:
    cmd, count = flaky(tmp_path, 1000, "Connection timed out")
    proc = ssh_until_up(cmd, deadline_s=0.3, pause_s=0.05)
    assert proc.returncode != 0 and "Connection timed out" in proc.stderr
    assert 1 < int(count.read_text()) < 1000
