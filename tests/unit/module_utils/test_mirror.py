"""Where the registry role's mirror keeps an upstream image (module_utils/mirror.py)."""

from __future__ import annotations

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.mirror import (
    MirrorError,
    manifest_url,
    mirror_path,
)
from hypothesis import given
from hypothesis import strategies as st

UPSTREAMS = ["registry.k8s.io", "docker.io", "ghcr.io", "quay.io", "reg.example:5000"]


@pytest.mark.parametrize(
    ("ref", "repository", "tag"),
    [
        ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause", "3.10.2"),
        (
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
            "registry.k8s.io/kube-state-metrics/kube-state-metrics",
            "v2.20.0",
        ),
        ("docker.io/library/busybox:1.36", "docker.io/library/busybox", "1.36"),
        ("reg.example:5000/team/app:1", "reg.example:5000/team/app", "1"),
    ],
)
def test_an_image_keeps_its_upstream_name(ref: str, repository: str, tag: str) -> None:
    path = mirror_path(ref, UPSTREAMS)
    assert (path.repository, path.tag, path.reference) == (repository, tag, ref)
    assert manifest_url("https://10.0.0.3:5001/", path) == (
        f"https://10.0.0.3:5001/v2/{repository}/manifests/{tag}"
    )


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("registry.k8s.io/pause@sha256:" + "0" * 64, "by digest only"),
        ("pause:3.10", "names no registry"),
        ("library/busybox:1.36", "names no registry"),
        ("registry.k8s.io/pause", "has no tag"),
        ("reg.example:5000/team/app", "has no tag"),
        (
            "gcr.io/distroless/static:nonroot",
            "comes from gcr.io, which is not in registry_mirror_upstreams",
        ),
    ],
)
def test_what_the_mirror_cannot_keep_is_named(ref: str, problem: str) -> None:
    with pytest.raises(MirrorError) as failed:
        mirror_path(ref, UPSTREAMS)
    assert str(failed.value).startswith(f"{ref}: ")
    assert problem in str(failed.value)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(
    upstream=st.sampled_from(UPSTREAMS),
    parts=st.lists(_label, min_size=1, max_size=4),
    tag=_tag,
)
def test_the_reference_below_the_mirror_is_the_upstream_one(
    upstream: str, parts: list[str], tag: str
) -> None:
    ref = f"{upstream}/{'/'.join(parts)}:{tag}"
    path = mirror_path(ref, UPSTREAMS)
    assert path.reference == ref
    assert path.upstream == upstream
