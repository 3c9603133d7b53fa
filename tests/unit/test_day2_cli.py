"""`airlock certs`, `backup` and `restore` refuse bad input in one line, before any host."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.conftest import ROOT, run_airlock

EXAMPLE = str(ROOT / "inventories" / "example")


def test_restore_needs_an_existing_archive(tmp_path: Path) -> None:
    proc = run_airlock("restore", "-i", EXAMPLE, str(tmp_path / "none.tar.gz"), "--yes")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"airlock: error: {tmp_path / 'none.tar.gz'}: no such file; give an archive made by "
        "`airlock backup`"
    ]


def test_restore_refuses_a_file_that_is_no_archive(tmp_path: Path) -> None:
    archive = tmp_path / "airlock-backup-x.tar.gz"
    archive.write_bytes(b"not a tar archive")
    proc = run_airlock("restore", "-i", EXAMPLE, str(archive), "--yes")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "not a tar archive" in proc.stderr


def test_restore_asks_for_confirmation_before_anything(tmp_path: Path) -> None:
    archive = tmp_path / "airlock-backup-x.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    proc = run_airlock("restore", "-i", EXAMPLE, str(archive))
    assert proc.returncode == 2
    assert "add --yes to confirm" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_broken_inventory_stops_certs_and_backup_before_any_host(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    etcd:\n      hosts:\n        m1: {}\n")
    for command in (["certs", "status"], ["certs", "renew"], ["backup"]):
        proc = run_airlock(*command, "-i", str(inventory))
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert "nothing was changed; fix the inventory and run again" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_certs_days_must_not_be_negative() -> None:
    proc = run_airlock("certs", "status", "-i", EXAMPLE, "--days", "-1")
    assert proc.returncode == 2 and "--days must be 0 or more" in proc.stderr
