"""`airlock backup` and `airlock restore`: the whole cluster into one archive and back."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airlock.cli.common import inventory_arg, inventory_ok, verbose_arg


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser(
        "backup",
        help="back up etcd, the kubeadm PKI and the credentials into one archive",
        description="Take an etcd snapshot (verified with `etcdutl snapshot status` on the "
        "member and by SHA-256 after the copy), copy the kubeadm PKI the control planes "
        "share and the inventory's credentials, and pack them into "
        "<inventory>/.backups/airlock-backup-<cluster>-<time>.tar.gz (mode 0600; backup_dir, "
        "backup_keep). Changes nothing on the hosts.",
    )
    inventory_arg(backup)
    verbose_arg(backup)
    backup.set_defaults(handler=_backup)

    restore = sub.add_parser(
        "restore",
        help="restore the whole cluster from an archive made by `airlock backup`",
        description="Check the archive (every SHA-256, the cluster name, its CAs against the "
        "inventory's credentials) before touching a host, put the kubeadm PKI back, restore "
        "every etcd member from the snapshot (old data kept aside), and restart each control "
        "plane on the restored state. Everything written to the cluster after the backup is "
        "lost: --yes confirms that.",
    )
    inventory_arg(restore)
    restore.add_argument("archive", type=Path, help="airlock-backup-*.tar.gz to restore")
    restore.add_argument(
        "--yes",
        action="store_true",
        help="confirm: the cluster's state goes back to the backup's time",
    )
    verbose_arg(restore)
    restore.set_defaults(handler=_restore)


def _run(playbook: str, args: argparse.Namespace, variables: dict) -> int:
    from airlock.paths import project_root
    from airlock.runner import RunRequest, run_playbook

    req = RunRequest(
        project_root() / "playbooks" / playbook,
        args.inventory,
        extra_vars=[json.dumps(variables)] if variables else [],
        verbosity=args.verbose,
    )
    result = run_playbook(req)
    return 0 if result.ok else (result.rc or 1)


def _backup(args: argparse.Namespace) -> int:
    if not inventory_ok(args.inventory):
        return 1
    return _run("backup.yml", args, {})


def _restore(args: argparse.Namespace) -> int:
    archive: Path = args.archive
    if not archive.is_file():
        print(
            f"airlock: error: {archive}: no such file; give an archive made by `airlock backup`",
            file=sys.stderr,
        )
        return 2
    import tarfile

    if not tarfile.is_tarfile(archive):
        print(
            f"airlock: error: {archive}: not a tar archive (damaged or another file); give an "
            "airlock-backup-*.tar.gz made by `airlock backup`",
            file=sys.stderr,
        )
        return 2
    if not args.yes:
        print(
            f"airlock: error: restoring {archive} replaces the cluster's whole state with the "
            "backup's (objects made since are lost); add --yes to confirm",
            file=sys.stderr,
        )
        return 2
    if not inventory_ok(args.inventory):
        return 1
    rc = _run("restore.yml", args, {"backup_archive": str(archive.resolve())})
    if rc:
        print(
            "\nThe restore stopped. Nothing on a host changed if it stopped while checking "
            "the archive; after that, each etcd member's old data is kept as "
            "<data_dir>.pre-restore-<time>. Fix the cause and run the same command again.",
            file=sys.stderr,
        )
    return rc
