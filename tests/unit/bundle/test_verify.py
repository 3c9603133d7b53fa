"""Bundle verification: every kind of damage is found and the member is named."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from airlock.bundle.build.archive import MANIFEST, SIG, SUMS, Member, write_bundle
from airlock.bundle.build.signing import signer
from airlock.bundle.build.verify import VerifyError, require_valid, verify_bundle
from airlock.cli import bundle as cli

PAYLOAD = {
    "bin/amd64/kubeadm": os.urandom(200_000),
    "bin/amd64/kubelet": os.urandom(300_001),
    "images/amd64/pause.oci.tar": os.urandom(5_000),
    "debs/bookworm/conntrack_1.4.7-1+b2_amd64.deb": os.urandom(40_000),
    "wheels/airlock-0.1.0-py3-none-any.whl": b"tiny",
}


@pytest.fixture
def bundle(tmp_path):
    return _make(tmp_path)


def _make(tmp_path, sign=None):
    members = []
    for name, data in PAYLOAD.items():
        src = tmp_path / "src" / name
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        members.append(Member(name, src, hashlib.sha256(data).hexdigest(), len(data)))
    out = tmp_path / "bundle.tar"
    write_bundle(out, members, {"schema": 1, "kube_version": "v1.34.4"}, sign)
    return out


def _members(path):
    """(name, data offset in the archive, size) of every member."""
    with tarfile.open(path) as tar:
        return [(m.name, m.offset_data, m.size) for m in tar.getmembers()]


def _rewrite(src, dst, drop=(), add=None):
    with tarfile.open(src) as old, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as new:
        for info in old.getmembers():
            if info.name not in drop:
                new.addfile(info, old.extractfile(info))
        if add:
            info = tarfile.TarInfo(add)
            info.size = 3
            new.addfile(info, io.BytesIO(b"evil"[:3]))


def test_good_bundle_passes(bundle):
    report = require_valid(bundle)
    assert report.members == len(PAYLOAD) + 3  # INDEX, SHA256SUMS, MANIFEST.json
    assert report.bytes >= sum(len(d) for d in PAYLOAD.values())


def test_bundle_passes_sha256sum_check_after_unpacking(bundle, tmp_path):
    # Hosts without airlock check an unpacked bundle with coreutils.
    out = tmp_path / "unpacked"
    out.mkdir()
    with tarfile.open(bundle) as tar:
        tar.extractall(out, filter="data")
    subprocess.run(["sha256sum", "--check", "--quiet", SUMS], cwd=out, check=True)


@pytest.mark.parametrize("name", [SUMS, MANIFEST, *PAYLOAD])
def test_flipped_byte_names_the_member(bundle, name):
    offset, size = next((o, s) for n, o, s in _members(bundle) if n == name)
    data = bytearray(bundle.read_bytes())
    data[offset + size // 2] ^= 0x01
    bundle.write_bytes(bytes(data))
    report = verify_bundle(bundle)
    assert not report.ok
    assert any(p.startswith(f"{name}:") or (name == SUMS and SUMS in p) for p in report.problems), (
        report.problems
    )


@pytest.mark.parametrize("name", [MANIFEST, *PAYLOAD])
def test_deleted_member_is_named(bundle, tmp_path, name):
    damaged = tmp_path / "damaged.tar"
    _rewrite(bundle, damaged, drop={name})
    problems = verify_bundle(damaged).problems
    assert f"{name}: missing from the archive (listed in {SUMS})" in problems


def test_deleted_checksum_list_is_reported(bundle, tmp_path):
    damaged = tmp_path / "damaged.tar"
    _rewrite(bundle, damaged, drop={SUMS})
    assert any(p.startswith(f"{SUMS}: missing") for p in verify_bundle(damaged).problems)


def test_added_member_is_named(bundle, tmp_path):
    damaged = tmp_path / "damaged.tar"
    _rewrite(bundle, damaged, add="bin/amd64/backdoor")
    problems = verify_bundle(damaged).problems
    assert problems == [f"bin/amd64/backdoor: extra member, not listed in {SUMS}; remove it"]


@pytest.mark.parametrize("name", list(PAYLOAD))
def test_truncated_archive_names_the_member(bundle, name):
    offset, size = next((o, s) for n, o, s in _members(bundle) if n == name)
    with bundle.open("r+b") as handle:
        handle.truncate(offset + size // 2)
    problems = verify_bundle(bundle).problems
    assert any(p.startswith(f"{name}: the archive is truncated") for p in problems), problems
    # Whatever came after it is missing, and said so by name.
    later = [n for n in PAYLOAD if n > name]
    for other in later:
        assert f"{other}: missing from the archive (listed in {SUMS})" in problems


def test_cli_verify_exit_codes(bundle, capsys):
    assert cli.main(["bundle", "verify", str(bundle)]) == 0
    with bundle.open("r+b") as handle:
        handle.truncate(bundle.stat().st_size - 20_000)
    assert cli.main(["bundle", "verify", str(bundle)]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_require_valid_raises_listing_problems(bundle, tmp_path):
    damaged = tmp_path / "damaged.tar"
    _rewrite(bundle, damaged, drop={"bin/amd64/kubelet"}, add="extra")
    with pytest.raises(VerifyError, match=r"(?s)2 problems.*kubelet: missing.*extra: extra"):
        require_valid(damaged)


def _keypair(tmp_path, name="bundle"):
    key = ed25519.Ed25519PrivateKey.generate()
    priv = tmp_path / f"{name}.key"
    pub = tmp_path / f"{name}.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def test_signature_verifies_with_the_right_key_only(tmp_path):
    priv, pub = _keypair(tmp_path)
    _, other_pub = _keypair(tmp_path, "other")
    bundle = _make(tmp_path, sign=signer(priv))
    assert verify_bundle(bundle, pub).signed
    problems = verify_bundle(bundle, other_pub).problems
    assert len(problems) == 1 and "does not match the key" in problems[0]


def test_unsigned_bundle_fails_when_a_key_is_given(bundle, tmp_path):
    _, pub = _keypair(tmp_path)
    assert verify_bundle(bundle, pub).problems == [
        f"{SIG}: missing, but a public key was given; the bundle is unsigned"
    ]


def test_openssl_made_signature_is_accepted(tmp_path):
    priv, pub = _keypair(tmp_path)
    sums_sig = {}

    def openssl_sign(data):
        (tmp_path / "SUMS").write_bytes(data)
        subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                str(priv),
                "-in",
                str(tmp_path / "SUMS"),
                "-out",
                str(tmp_path / "SUMS.sig"),
            ],
            check=True,
        )
        sums_sig["sig"] = (tmp_path / "SUMS.sig").read_bytes()
        return sums_sig["sig"]

    bundle = _make(tmp_path, sign=openssl_sign)
    assert verify_bundle(bundle, pub).signed
