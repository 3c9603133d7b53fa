"""`airlock certs`: the cluster's certificates as one table sorted by expiry.

playbooks/certs-status.yml runs airlock.cluster.cert_inventory on every host; this module
reads its results from the run's events (task CERTS_TASK) and renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The name of the task in roles/certs/tasks/status.yml whose results are read.
CERTS_TASK = "Read this host's certificates"


@dataclass(frozen=True)
class Row:
    host: str
    path: str
    subject: str
    issuer: str
    not_after: str
    days_left: int
    ca: bool
    expiring: bool


def rows_from_events(events: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Every certificate the run found, sorted by expiry, then host and path."""
    rows = []
    for event in events:
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok" or data.get("task") != CERTS_TASK:
            continue
        for cert in (data.get("res") or {}).get("certificates") or []:
            rows.append(
                Row(
                    host=str(data.get("host")),
                    path=str(cert["path"]),
                    subject=str(cert.get("subject", "")),
                    issuer=str(cert.get("issuer", "")),
                    not_after=str(cert["not_after"]),
                    days_left=int(cert["days_left"]),
                    ca=bool(cert.get("ca")),
                    expiring=bool(cert.get("expiring")),
                )
            )
    return sorted(rows, key=lambda r: (r.not_after, r.host, r.path))


def _cn(name: str) -> str:
    """The CN of an RFC 2253 name (the whole name when it has none)."""
    for part in name.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "CN":
            return value
    return name


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(rows: list[Row], days: int) -> str:
    """The table a person reads, with the expiring ones marked and counted at the end."""
    header = ("HOST", "CERTIFICATE", "SUBJECT CN", "ISSUER CN", "NOT AFTER (UTC)", "DAYS")
    table = [header] + [
        (
            r.host,
            r.path + (" (CA)" if r.ca else ""),
            _cn(r.subject),
            _cn(r.issuer),
            r.not_after.replace("T", " ").removesuffix("Z"),
            str(r.days_left) + ("  <-- expiring" if r.expiring else ""),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in table
    ]
    expiring = [r for r in rows if r.expiring]
    hosts = _count(len({r.host for r in rows}), "host")
    lines.append("")
    if expiring:
        lines.append(
            f"{len(expiring)} of {_count(len(rows), 'certificate')} on {hosts} expire within "
            f"{days} days: renew them with `airlock certs renew`"
            + (
                " (a CA among them needs a CA rotation: docs/operations.md)"
                if any(r.ca for r in expiring)
                else ""
            )
        )
    else:
        lines.append(
            f"{_count(len(rows), 'certificate')} on {hosts}; none expires within {days} days"
        )
    return "\n".join(lines)
