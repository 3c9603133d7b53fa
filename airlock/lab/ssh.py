"""The ssh command line that reaches a lab host with the lab's own key and known_hosts."""

from __future__ import annotations

import os
from pathlib import Path


def ssh_command(key: Path, known_hosts: Path, ip: str) -> list[str]:
    return [
        "ssh",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        f"root@{ip}",
    ]


def exec_ssh(argv: list[str]) -> None:
    os.execvp(argv[0], argv)
