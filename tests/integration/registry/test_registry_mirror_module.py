"""airlock.cluster.registry_mirror against real registries: Debian's docker-registry and skopeo.

Two docker-registry processes share one storage directory and one certificate, as the
registry role runs them (roles/registry/tasks/distribution/mirror.yml): the mirror, read-only
and anonymous, which nodes pull from, and the loader, which accepts pushes with a password.
The module reads the bundle-style OCI archives, asks the mirror for each image under its
upstream name, pushes what is missing through the loader with skopeo (TLS verified, digests
kept) and sees it served by the mirror.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.modules import registry_mirror

from airlock.arch import host_arch
from airlock.lab.bundle import oci
from tests.module_harness import ModuleFailed, run_module
from tests.registry import SKOPEO, USER, Registry, serve

UPSTREAMS = ["registry.k8s.io", "ghcr.io"]
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Registry]]:
    """(mirror, loader) on one storage directory and certificate."""
    storage = tmp_path_factory.mktemp("storage")
    loader_base = tmp_path_factory.mktemp("loader")
    with serve(loader_base, authenticate=True, storage=storage) as loader:
        mirror_base = tmp_path_factory.mktemp("mirror")
        with serve(mirror_base, readonly=True, storage=storage, tls_from=loader_base) as mirror:
            yield mirror, loader


def archive(directory: Path, ref: str) -> Path:
    """A one-layer image named `ref` for this machine, as the bundle packs images."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = directory / "payload"
    payload.write_text(f"airlock mirror test {ref} {directory.name}\n")
    path = directory / (ref.replace("/", "_").replace(":", "_") + ".oci.tar")
    layer = [oci.ImageFile(payload, "/payload", 0o644)]
    oci.write_oci_archive(oci.ImageSpec(ref, host_arch(), [layer]), path)
    return path


def run(
    mirror: Registry, loader: Registry, archives: list[Path], push: bool, check_mode: bool = False
) -> dict[str, Any]:
    assert loader.credentials
    user, password = loader.credentials.split(":", 1)
    params = {
        "archives": [str(a) for a in archives],
        "registry": f"https://{mirror.host}",
        "ca_path": str(mirror.ca),
        "upstreams": UPSTREAMS,
        "push": push,
        "push_registry": loader.host,
        "username": user,
        "password": password,
    }
    return run_module(registry_mirror, params, check_mode=check_mode)


def served(mirror: Registry, repository: str, tag: str) -> str:
    """The digest the mirror serves anonymously for REPOSITORY:TAG ("" for 404)."""
    request = urllib.request.Request(
        f"https://{mirror.host}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    try:
        with urllib.request.urlopen(request, context=mirror.context, timeout=10) as response:
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return ""
        raise


def test_missing_images_are_pushed_once_with_their_digests(
    registries: tuple[Registry, Registry], tmp_path: Path
) -> None:
    mirror, loader = registries
    refs = ["registry.k8s.io/airlock/pause:1", "ghcr.io/airlock/flannel:v1"]
    archives = [archive(tmp_path / str(n), ref) for n, ref in enumerate(refs)]

    report = run(mirror, loader, archives, push=False)
    assert not report["changed"]
    assert report["missing"] == refs and report["pushed"] == []
    digests = {i["ref"]: i["digest"] for i in report["images"]}

    planned = run(mirror, loader, archives, push=True, check_mode=True)
    assert planned["changed"] and planned["pushed"] == refs
    assert served(mirror, "registry.k8s.io/airlock/pause", "1") == ""  # check mode pushed nothing

    first = run(mirror, loader, archives, push=True)
    assert first["changed"] and first["pushed"] == refs
    assert served(mirror, "registry.k8s.io/airlock/pause", "1") == digests[refs[0]]
    assert served(mirror, "ghcr.io/airlock/flannel", "v1") == digests[refs[1]]

    again = run(mirror, loader, archives, push=True)
    assert not again["changed"] and again["missing"] == [] and again["pushed"] == []


def test_a_new_image_under_an_old_tag_is_pushed_again(
    registries: tuple[Registry, Registry], tmp_path: Path
) -> None:
    mirror, loader = registries
    ref = "registry.k8s.io/airlock/retagged:1"
    run(mirror, loader, [archive(tmp_path / "old", ref)], push=True)
    newer = archive(tmp_path / "new", ref)  # another payload: another digest
    result = run(mirror, loader, [newer], push=True)
    assert result["pushed"] == [ref]
    assert served(mirror, "registry.k8s.io/airlock/retagged", "1") == result["images"][0]["digest"]


def test_the_mirror_refuses_pushes(registries: tuple[Registry, Registry], tmp_path: Path) -> None:
    """What nodes reach is read-only: a push there fails even though it asks no password."""
    mirror, _ = registries
    path = archive(tmp_path, "registry.k8s.io/airlock/intruder:1")
    result = subprocess.run(
        [str(SKOPEO), "copy", "--quiet", "--dest-cert-dir", str(mirror.certs),
         f"oci-archive:{path}", f"docker://{mirror.host}/registry.k8s.io/airlock/intruder:1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert served(mirror, "registry.k8s.io/airlock/intruder", "1") == ""


def test_an_image_from_another_registry_fails_before_any_push(
    registries: tuple[Registry, Registry], tmp_path: Path
) -> None:
    mirror, loader = registries
    good = archive(tmp_path / "good", "registry.k8s.io/airlock/good:1")
    other = archive(tmp_path / "other", "quay.io/airlock/other:1")
    with pytest.raises(ModuleFailed) as failed:
        run(mirror, loader, [good, other], push=True)
    message = str(failed.value)
    assert "quay.io/airlock/other:1: comes from quay.io" in message
    assert "registry_mirror_upstreams" in message
    assert served(mirror, "registry.k8s.io/airlock/good", "1") == ""


def test_a_wrong_password_fails_naming_skopeo(
    registries: tuple[Registry, Registry], tmp_path: Path
) -> None:
    mirror, loader = registries
    path = archive(tmp_path, "registry.k8s.io/airlock/denied:1")
    wrong = Registry(loader.host, loader.certs, loader.context, f"{USER}:not-the-password")
    with pytest.raises(ModuleFailed) as failed:
        run(mirror, wrong, [path], push=True)
    assert "skopeo copy of registry.k8s.io/airlock/denied:1" in str(failed.value)
    assert "not-the-password" not in str(failed.value)
    assert served(mirror, "registry.k8s.io/airlock/denied", "1") == ""


def test_an_unreachable_mirror_fails_in_one_line(tmp_path: Path) -> None:
    path = archive(tmp_path, "registry.k8s.io/airlock/x:1")
    ca = tmp_path / "ca.crt"
    ca.write_text("")
    params = {
        "archives": [str(path)],
        "registry": "https://127.0.0.1:9",
        "ca_path": str(ca),
        "upstreams": UPSTREAMS,
    }
    with pytest.raises(ModuleFailed) as failed:
        run_module(registry_mirror, params)
    message = str(failed.value)
    assert message.startswith(
        "registry_mirror: cannot read https://127.0.0.1:9/v2/registry.k8s.io/airlock/x/manifests/1"
    )
    assert "\n" not in message
