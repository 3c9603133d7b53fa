"""The bundle's wheels install a working airlock with no package index at all."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from airlock import __version__
from airlock.bundle.build.archive import Member, write_bundle
from airlock.bundle.build.wheels import wheel_members
from airlock.paths import state_dir


def test_pip_install_no_index_from_bundle_wheels(tmp_path):
    members = wheel_members(state_dir() / "cache" / "bundle" / "wheels")
    names = {m.arcname for m in members}
    assert any(n.startswith("wheels/airlock-") for n in names)
    assert any(n.startswith("wheels/ansible_core-") for n in names)
    assert f"collections/airlock-cluster-{__version__}.tar.gz" in names
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for m in members:
        if m.arcname.startswith("wheels/"):
            (wheels / m.arcname.split("/", 1)[1]).symlink_to(m.source)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
            "--find-links",
            str(wheels),
            "airlock",
        ],
        check=True,
        env=env,
    )

    # The installed airlock works: its CLI starts and it verifies a bundle.
    out = subprocess.run(
        [str(venv / "bin" / "airlock"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert "airlock" in out
    src = tmp_path / "kubeadm"
    src.write_bytes(b"binary")
    write_bundle(
        tmp_path / "b.tar",
        [Member("bin/amd64/kubeadm", src, hashlib.sha256(b"binary").hexdigest(), 6)],
        {"schema": 1},
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "airlock.bundle", "verify", str(tmp_path / "b.tar")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "all checksums match" in proc.stdout
    ansible = subprocess.run(
        [str(venv / "bin" / "ansible-playbook"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "core 2.19" in ansible
