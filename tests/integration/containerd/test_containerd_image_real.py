"""airlock.cluster.containerd_image against a real containerd (Debian's 1.6) on a private
socket: import, pinning, no-op re-run, check mode, a containerd that is not there.

containerd runs as a child of the test with its own root, state and socket under a short
temporary directory (daemon.py), the CRI plugin disabled.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.modules import containerd_image

from airlock.lab.bundle import oci
from tests.integration.containerd.daemon import running, short_dir
from tests.module_harness import ModuleFailed, run_module

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")


def run(params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    return run_module(containerd_image, params, check_mode=check_mode)


@pytest.fixture(scope="module")
def containerd() -> Iterator[Path]:
    if not (CONTAINERD and CTR):
        pytest.fail("containerd is missing: run scripts/bootstrap (tests never skip silently)")
    with short_dir() as base:
        socket = base / "c.sock"
        config = base / "config.toml"
        config.write_text(
            "version = 2\n"
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{socket}"\n'
        )
        with running(CONTAINERD, config, base, [CTR, "--address", socket, "version"]):
            yield socket


def archive(tmp_path: Path, ref: str, content: bytes) -> tuple[str, str]:
    source = tmp_path / "file"
    source.write_bytes(content)
    spec = oci.ImageSpec(reference=ref, arch="amd64", layers=[[oci.ImageFile(source, "/x")]])
    out = tmp_path / "image.oci.tar"
    return str(out), oci.write_oci_archive(spec, out)


def listed(socket: Path) -> str:
    return subprocess.run(
        [CTR, "--address", str(socket), "-n", "k8s.io", "images", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def labels(socket: Path, ref: str) -> str:
    """The LABELS column of `ref` in ctr's image list ("" when absent)."""
    for line in listed(socket).splitlines():
        fields = line.split()
        if fields[:1] == [ref]:
            return fields[-1]
    return ""


def test_import_pins_then_nothing_to_do(containerd, tmp_path):
    ref = "registry.k8s.io/pause:3.10.1-airlock-it"
    path, digest = archive(tmp_path, ref, b"pause")
    params = {"path": [path], "address": str(containerd), "platform": "linux/amd64"}
    first = run(params)
    assert first["changed"] and first["imported"] == [ref] and first["pinned"] == [ref]
    assert any(
        line.split()[:1] == [ref] and digest in line for line in listed(containerd).splitlines()
    )
    assert "io.cri-containerd.pinned=pinned" in labels(containerd, ref).split(",")
    second = run(params)
    assert not second["changed"] and second["present"] == [ref] and second["imported"] == []
    assert second["pinned"] == []


def test_an_image_present_but_not_pinned_gets_pinned(containerd, tmp_path):
    """An image imported before pinning existed (or by hand) is labelled on the next run."""
    ref = "registry.k8s.io/unpinned:v1"
    path, _ = archive(tmp_path, ref, b"unpinned")
    params = {"path": [path], "address": str(containerd)}
    assert run({**params, "pin": False})["imported"] == [ref]
    assert "io.cri-containerd.pinned" not in labels(containerd, ref)
    checked = run(params, check_mode=True)
    assert checked["changed"] and checked["imported"] == [] and checked["pinned"] == [ref]
    assert "io.cri-containerd.pinned" not in labels(containerd, ref)
    result = run(params)
    assert result["changed"] and result["imported"] == [] and result["pinned"] == [ref]
    assert "io.cri-containerd.pinned=pinned" in labels(containerd, ref).split(",")


def test_check_mode_imports_nothing(containerd, tmp_path):
    ref = "registry.k8s.io/check-mode:v1"
    path, _ = archive(tmp_path, ref, b"check")
    result = run(
        {"path": [path], "address": str(containerd), "snapshotter": "overlayfs"}, check_mode=True
    )
    assert result["changed"] and result["imported"] == [ref] and result["pinned"] == [ref]
    assert [a["action"] for a in result["archives"]] == ["import"]
    assert f"{ref} (absent)" in result["diff"]["before"]
    assert result["diff"]["after"].endswith(" pinned\n")
    assert ref not in listed(containerd)


def test_a_new_archive_under_the_same_tag_replaces_the_image(containerd, tmp_path):
    ref = "registry.k8s.io/retag:v1"
    old_dir = tmp_path / "a"
    old_dir.mkdir()
    old, _ = archive(old_dir, ref, b"1")
    run({"path": [old], "address": str(containerd)})
    new_dir = tmp_path / "b"
    new_dir.mkdir()
    new, new_digest = archive(new_dir, ref, b"2")
    result = run({"path": [new], "address": str(containerd)})
    assert result["changed"] and result["imported"] == [ref]
    assert any(new_digest in line for line in listed(containerd).splitlines() if ref in line)
    assert "io.cri-containerd.pinned=pinned" in labels(containerd, ref).split(",")


def test_a_socket_nobody_listens_on_fails_clearly(tmp_path):
    """containerd stopped, its socket file left behind: ctr is refused, the module says so."""
    path, _ = archive(tmp_path, "registry.k8s.io/pause:refused", b"x")
    sock_path = Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp")) / "c.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(sock_path))  # bound, never listening: connections are refused
        with pytest.raises(ModuleFailed, match=r"containerd does not answer on .*is it running"):
            run({"path": [path], "address": str(sock_path), "wait_timeout": 0})
    shutil.rmtree(sock_path.parent)


def test_containerd_not_running_fails_clearly(tmp_path):
    path, _ = archive(tmp_path, "registry.k8s.io/pause:none", b"x")
    with pytest.raises(ModuleFailed, match=r"containerd does not answer on .*is it running"):
        run({"path": [path], "address": str(tmp_path / "absent.sock"), "wait_timeout": 0})
