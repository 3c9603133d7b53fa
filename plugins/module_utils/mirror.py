# Copyright: airlock developers
# Apache-2.0
"""Where a mirror keeps an upstream image, and how to ask a registry whether it has it.

The registry role's mirror (roles/registry, airlock_image_source: registry) keeps every
image of the bundle under its upstream registry's name: ``registry.k8s.io/pause:3.10.2``
is the mirror's repository ``registry.k8s.io/pause``, tag ``3.10.2``. A node's containerd
asks for it at ``https://MIRROR/v2/registry.k8s.io/pause/manifests/3.10.2`` (hosts.toml's
``override_path``), so an image keeps its name and digest and no manifest is rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What a registry may answer for a manifest: OCI and Docker, single image and index.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class MirrorError(ValueError):
    """An image the mirror cannot keep, or a registry answer that makes no sense."""


@dataclass(frozen=True)
class MirrorPath:
    """An upstream reference split as the mirror keeps it."""

    upstream: str  # registry.k8s.io
    repository: str  # registry.k8s.io/pause (the mirror's repository)
    tag: str  # 3.10.2

    @property
    def reference(self) -> str:
        """REPOSITORY:TAG, what skopeo pushes to below the mirror's address."""
        return f"{self.repository}:{self.tag}"


def mirror_path(ref: str, upstreams: list[str]) -> MirrorPath:
    """``ref`` (``DOMAIN/PATH:TAG``) as the mirror keeps it; MirrorError when it names no
    registry, no tag, or a registry outside ``upstreams``."""
    if "@" in ref:
        raise MirrorError(f"{ref}: a reference by digest only has no tag to mirror")
    domain, _, rest = ref.partition("/")
    if not rest or not ("." in domain or ":" in domain or domain == "localhost"):
        raise MirrorError(f"{ref}: names no registry (expected DOMAIN/PATH:TAG)")
    path, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag or not path:
        raise MirrorError(f"{ref}: has no tag")
    if domain not in upstreams:
        raise MirrorError(
            f"{ref}: comes from {domain}, which is not in registry_mirror_upstreams "
            f"({', '.join(upstreams) or 'empty'}); add {domain} there, so nodes are told "
            "to pull its images from the mirror"
        )
    return MirrorPath(domain, f"{domain}/{path}", tag)


def manifest_url(base: str, path: MirrorPath) -> str:
    """The registry API URL of the manifest ``path`` names below ``base`` (https://HOST:PORT)."""
    return f"{base.rstrip('/')}/v2/{path.repository}/manifests/{path.tag}"
