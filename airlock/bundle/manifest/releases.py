"""What a Kubernetes release of a manifest still lacks: its slots.

The model keeps every slot of the document whatever release is selected. A slot whose
`kube` lists a release is part of that release and not pinned yet (a Kubernetes program,
etcd, an image kubeadm pulls); a slot without `kube` is planned content of a later issue
(Harbor, storage, ...), which no release needs to be built.
"""

from __future__ import annotations

from airlock.bundle.manifest.model import Manifest


def missing_for(manifest: Manifest, release: str | None = None) -> list[str]:
    """Names of the slots that list `release` in their `kube` (default: the selected one)."""
    want = f"v{(release or manifest.kube_version).removeprefix('v')}"
    return [
        str(slot.get("name"))
        for slot in manifest.slots
        if want in [str(v) for v in slot.get("kube") or ()]
    ]
