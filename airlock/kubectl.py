"""`airlock kubectl`: the bundle's own kubectl (the cluster's version) with the inventory's
admin kubeconfig, so the controller needs no kubectl of its own.

The kubectl of the controller's architecture is taken out of the inventory's bundle
(`airlock_bundle`), checked against the sha256 its MANIFEST.json gives, and kept as
`.airlock/bin/kubectl-VERSION-SHA` (0755); later calls reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import IO

from airlock.arch import host_arch
from airlock.errors import AirlockError
from airlock.inventory.load import load_inventory
from airlock.inventory.specs import known_settings
from airlock.inventory.values import setting

USE = "airlock kubectl"


def for_inventory(inventory: Path, cache: Path) -> tuple[Path, Path]:
    """The bundle's kubectl and the admin kubeconfig of `inventory`'s cluster."""
    inv = load_inventory(inventory)
    if inv.broken:
        raise AirlockError(
            f"inventory {inventory} cannot be read; `airlock check -i {inventory}` says why"
        )
    inventory_dir = inventory.resolve() if inventory.is_dir() else inventory.resolve().parent
    base = {**known_settings(), "inventory_dir": str(inventory_dir)}
    first = next(iter(inv.hosts.values()), {})
    where = f"inventory {inventory}"
    bundle = setting("airlock_bundle", first, base, where, USE)
    if not bundle:
        raise AirlockError(
            f"{where} sets no airlock_bundle: set it to the bundle the cluster was deployed "
            "from (its kubectl is the cluster's version)"
        )
    bundle_path = Path(bundle) if Path(bundle).is_absolute() else inventory_dir / bundle
    credentials = Path(setting("airlock_credentials_dir", first, base, where, USE))
    return kubectl_from_bundle(bundle_path, cache), admin_kubeconfig(credentials, inventory)


def kubectl_from_bundle(bundle: Path, cache: Path, arch: str = "") -> Path:
    """The bundle's kubectl for `arch` (this machine's by default), extracted once."""
    arch = arch or host_arch()
    if not bundle.is_file():
        raise AirlockError(
            f"bundle {bundle}: no such file (the inventory's airlock_bundle); build it with "
            "`airlock bundle build` or set airlock_bundle to the bundle you deployed"
        )
    try:
        with tarfile.open(bundle) as tar:
            manifest = json.load(_member(tar, "MANIFEST.json"))
            entry = _kubectl_entry(manifest, arch, bundle)
            target = cache / f"kubectl-{entry['version']}-{str(entry['sha256'])[:12]}"
            if target.is_file():
                return target
            data = _member(tar, str(entry["path"])).read()
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise AirlockError(
            f"bundle {bundle}: cannot read its kubectl ({exc}); check it with "
            f"`airlock bundle verify {bundle}`"
        ) from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise AirlockError(
            f"bundle {bundle}: {entry['path']} does not match the sha256 its MANIFEST.json "
            f"gives; check it with `airlock bundle verify {bundle}`"
        )
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = tar.extractfile(name)
    if handle is None:
        raise KeyError(name)
    return handle


def _kubectl_entry(manifest: dict, arch: str, bundle: Path) -> dict:
    for entry in manifest.get("artifacts") or []:
        wanted = entry.get("name") == "kubectl" and entry.get("arch") in (arch, None, "")
        if wanted and entry.get("path") and entry.get("sha256"):
            return entry
    raise AirlockError(
        f"bundle {bundle}: it carries no kubectl for {arch}; build a bundle with "
        f"`airlock bundle build --arch {arch}`"
    )


def admin_kubeconfig(credentials_dir: Path, inventory: Path) -> Path:
    path = credentials_dir / "kubernetes" / "admin.conf"
    if not path.is_file():
        raise AirlockError(
            f"{path}: no admin kubeconfig yet (the deploy writes it when the control plane "
            f"is up); run `airlock deploy -i {inventory}`"
        )
    return path
