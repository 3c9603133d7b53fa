"""Hostile and broken bundles: verify refuses each, naming the member; extraction too.

Each case builds a small valid (signed) bundle with write_bundle, damages it one way and
runs `airlock bundle verify --public-key` in-process: exit 1, and the words of the message
(the member's name first among them) on stderr. The same archive is then given to the
bundle host's extraction (bundletar.extract_bundle), which must refuse it and leave nothing.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from airlock.bundle.build.archive import Member, write_bundle
from airlock.bundle.build.bundletar import (
    INDEX,
    INDEX_SIG,
    LEGACY_SIG,
    MANIFEST,
    SUMS,
    UnpackError,
    extract_bundle,
    sums_text,
)
from airlock.bundle.build.signing import signer
from airlock.bundle.build.verify import verify_bundle
from airlock.cli import bundle as cli
from airlock.errors import AirlockError

PAYLOAD = {
    "bin/amd64/kubeadm": os.urandom(20_000),
    "bin/amd64/kubelet": os.urandom(30_001),
    "debs/bookworm/conntrack_1.4.7-1+b2_amd64.deb": os.urandom(4_000),
    "wheels/airlock-0.1.0-py3-none-any.whl": b"tiny",
}
MANIFEST_DOC = {
    "schema": 1,
    "kube_version": "v1.34.4",
    "artifacts": [{"name": "kubeadm", "path": "bin/amd64/kubeadm"}],
}

Items = list[tuple[tarfile.TarInfo, bytes]]


@pytest.fixture
def keys(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    priv, pub = tmp_path / "bundle.key", tmp_path / "bundle.pub"
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


def make_bundle(tmp_path, sign=None, manifest=None):
    members = []
    for name, data in PAYLOAD.items():
        src = tmp_path / "src" / name
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(data)
        members.append(Member(name, src, hashlib.sha256(data).hexdigest(), len(data)))
    out = tmp_path / "bundle.tar"
    write_bundle(out, members, manifest or MANIFEST_DOC, sign)
    return out


def read_items(path) -> Items:
    with tarfile.open(path) as tar:
        return [(copy.copy(i), tar.extractfile(i).read()) for i in tar.getmembers()]


def write_items(path, items: Items) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for original, data in items:
            info = copy.copy(original)
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.size = 0
                tar.addfile(info)


def new(name, data=b"", kind=tarfile.REGTYPE, mode=0o644, link="") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.uname = info.gname = "root"
    return info, data


def edit(member: str, **attrs) -> Callable[[Items], Items]:
    def apply(items: Items) -> Items:
        for info, _ in items:
            if info.name == member:
                for key, value in attrs.items():
                    setattr(info, key, value)
        return items

    return apply


def replace_data(name: str, change: Callable[[bytes], bytes]) -> Callable[[Items], Items]:
    return lambda items: [(i, change(d) if i.name == name else d) for i, d in items]


def swap(a: str, b: str) -> Callable[[Items], Items]:
    def apply(items: Items) -> Items:
        names = [i.name for i, _ in items]
        x, y = names.index(a), names.index(b)
        items[x], items[y] = items[y], items[x]
        return items

    return apply


def rename(old: str, to: str) -> Callable[[Items], Items]:
    return edit(old, name=to)


def flip(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def manifest_path(path: str) -> Callable[[bytes], bytes]:
    def change(_: bytes) -> bytes:
        doc = dict(MANIFEST_DOC, artifacts=[{"name": "evil", "path": path}])
        return json.dumps(doc).encode()

    return change


def index_mode(line_name: str) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        lines = data.decode().split("\n")
        lines = [ln.replace(" 0755 ", " 0644 ") if ln.endswith(line_name) else ln for ln in lines]
        return "\n".join(lines).encode()

    return change


def legacy_signed(priv):
    """The old format: no INDEX, SHA256SUMS first, SHA256SUMS.sig over it."""

    def apply(items: Items) -> Items:
        items = [(i, d) for i, d in items if i.name not in (INDEX, INDEX_SIG)]
        sums = dict(items)[next(i for i, _ in items if i.name == SUMS)]
        sig_info, _ = new(LEGACY_SIG)
        return [items[0], (sig_info, signer(priv)(sums)), *items[1:]]

    return apply


@dataclass
class Case:
    id: str
    damage: Callable[..., Items] | None  # on the members; None: `raw` on the bytes
    words: tuple[str, ...]  # the first is the member's name
    raw: Callable[[bytes], bytes] | None = None
    unpacks: bool = False  # extraction (no signature check) may accept it


def dup_sums_line(data: bytes) -> bytes:
    first = data.split(b"\n")[0]
    return data + first + b"\n"


CASES = [
    Case("dotdot", lambda it: [*it, new("../evil", b"x")], ("../evil", "'..' leaves")),
    Case("dotdot-deep", lambda it: [*it, new("bin/../../evil", b"x")], ("bin/../../evil", "'..'")),
    Case(
        "absolute",
        lambda it: [*it, new("/etc/cron.d/evil", b"x")],
        ("/etc/cron.d/evil", "absolute"),
    ),
    Case("dot-component", lambda it: [*it, new("./bin/x", b"x")], ("./bin/x", "plain relative")),
    Case("control-char", lambda it: [*it, new("bin/a\nb", b"x")], ("'bin/a\\nb'", "control")),
    Case(
        "symlink",
        lambda it: [*it, new("bin/amd64/sh", kind=tarfile.SYMTYPE, link="/bin/sh")],
        ("bin/amd64/sh", "symbolic link", "/bin/sh"),
    ),
    Case(
        "hardlink",
        lambda it: [*it, new("bin/amd64/hl", kind=tarfile.LNKTYPE, link="bin/amd64/kubeadm")],
        ("bin/amd64/hl", "hard link"),
    ),
    Case("device", lambda it: [*it, new("dev/sda", kind=tarfile.BLKTYPE)], ("dev/sda", "device")),
    Case(
        "chardev", lambda it: [*it, new("dev/null", kind=tarfile.CHRTYPE)], ("dev/null", "device")
    ),
    Case("fifo", lambda it: [*it, new("bin/fifo", kind=tarfile.FIFOTYPE)], ("bin/fifo", "fifo")),
    Case(
        "directory",
        lambda it: [*it, new("bin", kind=tarfile.DIRTYPE, mode=0o755)],
        ("bin", "directory"),
    ),
    Case("setuid", edit("bin/amd64/kubeadm", mode=0o4755), ("bin/amd64/kubeadm", "setuid")),
    Case("setgid", edit("bin/amd64/kubeadm", mode=0o2755), ("bin/amd64/kubeadm", "setgid")),
    Case("sticky", edit("bin/amd64/kubelet", mode=0o1755), ("bin/amd64/kubelet", "sticky")),
    Case(
        "world-writable",
        edit("bin/amd64/kubelet", mode=0o777),
        ("bin/amd64/kubelet", "world-writable"),
    ),
    Case(
        "group-writable",
        edit(MANIFEST, mode=0o664),
        (MANIFEST, "mode 0664", "group/world-writable"),
    ),
    Case("uid-1000", edit("bin/amd64/kubeadm", uid=1000), ("bin/amd64/kubeadm", "uid 1000")),
    Case("gid-1000", edit("bin/amd64/kubeadm", gid=1000), ("bin/amd64/kubeadm", "gid 1000")),
    Case(
        "owner-name",
        edit("bin/amd64/kubeadm", uname="daemon"),
        ("bin/amd64/kubeadm", "daemon", "owned by root"),
    ),
    Case(
        "duplicate-member",
        lambda it: [*it, it[-1]],
        ("wheels/airlock-0.1.0-py3-none-any.whl", "second member"),
    ),
    Case(
        "duplicate-sums-line",
        replace_data(SUMS, dup_sums_line),
        (SUMS, MANIFEST, "listed twice", "lines 1 and 6"),
    ),
    Case(
        "checksum-mismatch",
        replace_data("bin/amd64/kubelet", flip),
        ("bin/amd64/kubelet", "altered"),
    ),
    Case(
        "missing-member",
        lambda it: [x for x in it if x[0].name != "bin/amd64/kubelet"],
        ("bin/amd64/kubelet", "missing"),
    ),
    Case(
        "extra-member",
        lambda it: [*it, new("bin/amd64/backdoor", b"x")],
        ("bin/amd64/backdoor", "extra member"),
    ),
    Case(
        "manifest-not-json",
        replace_data(MANIFEST, lambda _: b"{not json"),
        (MANIFEST, "not valid JSON"),
    ),
    Case(
        "manifest-path-dotdot",
        replace_data(MANIFEST, manifest_path("../../etc/passwd")),
        (MANIFEST, "../../etc/passwd", "'..' leaves"),
    ),
    Case(
        "manifest-path-absolute",
        replace_data(MANIFEST, manifest_path("/etc/passwd")),
        (MANIFEST, "/etc/passwd", "absolute"),
    ),
    Case(
        "manifest-path-not-member",
        replace_data(MANIFEST, manifest_path("bin/amd64/nothere")),
        (MANIFEST, "bin/amd64/nothere", "not a member"),
    ),
    Case(
        "reordered-old-signature",
        swap("bin/amd64/kubeadm", "bin/amd64/kubelet"),
        ("bin/amd64/kubelet", "out of place", "re-ordered"),
    ),
    Case(
        "renamed-old-signature",
        rename("bin/amd64/kubelet", "bin/amd64/kubectl"),
        ("bin/amd64/kubectl", "extra member"),
    ),
    Case(
        "mode-lowered-old-signature",
        edit("bin/amd64/kubeadm", mode=0o644),
        ("bin/amd64/kubeadm", "mode 0644", "INDEX says", "mode 0755"),
    ),
    Case(
        "index-edited-old-signature",
        replace_data(INDEX, index_mode("bin/amd64/kubeadm")),
        (INDEX_SIG, "does not match the key"),
    ),
    Case(
        "index-not-first",
        lambda it: [*it[1:], it[0]],
        (INDEX, "must be the first member"),
    ),
    Case(
        "unsigned",
        lambda it: [x for x in it if x[0].name != INDEX_SIG],
        (INDEX_SIG, "unsigned"),
        unpacks=True,
    ),
    Case(
        "legacy-signature",
        None,  # filled in by the test: needs the private key
        (LEGACY_SIG, "old signature format"),
        unpacks=True,
    ),
    Case(
        "truncated",
        None,
        ("bin/amd64/kubelet", "truncated"),
        raw=lambda data: data[: data.index(PAYLOAD["bin/amd64/kubelet"][:64]) + 1000],
    ),
    Case("not-a-tar", None, ("not a tar archive",), raw=lambda _: os.urandom(5000)),
    Case("empty-file", None, ("not a tar archive",), raw=lambda _: b""),
    Case("zeros", None, ("holds no members",), raw=lambda _: bytes(10240)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_verify_refuses_naming_the_member(case, keys, tmp_path, capsys):
    priv, pub = keys
    bundle = make_bundle(tmp_path, sign=signer(priv))
    damaged = tmp_path / "damaged.tar"
    if case.raw is not None:
        damaged.write_bytes(case.raw(bundle.read_bytes()))
    else:
        damage = case.damage or legacy_signed(priv)
        write_items(damaged, damage(read_items(bundle)))
    capsys.readouterr()

    assert cli.main(["bundle", "verify", str(damaged), "--public-key", str(pub)]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if all(w in ln for w in case.words)]
    assert lines, f"no line with {case.words} in:\n{err}"
    assert err.rstrip().endswith("do not install it")
    # One line per problem: every line is "bundle PATH: ..." (no traceback).
    assert all(ln.startswith(f"bundle {damaged}: ") for ln in err.splitlines()), err

    target = tmp_path / "unpacked"
    if case.unpacks:
        extract_bundle(damaged, target)
        return
    with pytest.raises(UnpackError) as refused:
        extract_bundle(damaged, target)
    assert "\n" not in str(refused.value)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpacked")] == []


def test_valid_signed_bundle_passes_and_unpacks_root_owned_with_fixed_modes(keys, tmp_path):
    priv, pub = keys
    bundle = make_bundle(tmp_path, sign=signer(priv))
    report = verify_bundle(bundle, pub)
    assert report.ok and report.signed, report.problems
    target = tmp_path / "unpacked"
    assert (
        extract_bundle(bundle, target, hashlib.sha256(bundle.read_bytes()).hexdigest()) == 8
    )  # INDEX, INDEX.sig, SHA256SUMS, MANIFEST.json and the payload
    for name, data in PAYLOAD.items():
        assert (target / name).read_bytes() == data
    assert (target / "bin/amd64/kubeadm").stat().st_mode & 0o7777 == 0o755
    assert (target / "wheels/airlock-0.1.0-py3-none-any.whl").stat().st_mode & 0o7777 == 0o644
    assert (target / "bin/amd64").stat().st_mode & 0o7777 == 0o755
    # A second unpack replaces the first whole.
    assert extract_bundle(bundle, target) == 8


def test_extraction_refuses_another_archive_than_the_verified_one(tmp_path):
    bundle = make_bundle(tmp_path)
    with pytest.raises(UnpackError, match="not the archive that was verified"):
        extract_bundle(bundle, tmp_path / "out", "0" * 64)
    assert not (tmp_path / "out").exists()


def test_legacy_unsigned_bundle_still_verifies(tmp_path):
    """A bundle from before INDEX (SHA256SUMS first, no signature): checksums only."""
    items = [x for x in read_items(make_bundle(tmp_path)) if x[0].name != INDEX]
    legacy = tmp_path / "legacy.tar"
    write_items(legacy, items)
    assert verify_bundle(legacy).ok
    extract_bundle(legacy, tmp_path / "out")
    assert (tmp_path / "out" / "bin/amd64/kubelet").read_bytes() == PAYLOAD["bin/amd64/kubelet"]


def test_unsigned_bundle_gets_every_structural_refusal(tmp_path):
    items = read_items(make_bundle(tmp_path))
    damaged = tmp_path / "damaged.tar"
    write_items(damaged, edit("bin/amd64/kubeadm", mode=0o4755, uid=1000)(items))
    problems = verify_bundle(damaged).problems
    assert any("bin/amd64/kubeadm: mode 4755 (setuid)" in p for p in problems), problems


@pytest.mark.parametrize(
    ("manifest", "words"),
    [
        ({"artifacts": [{"name": "x", "path": "../x"}]}, "'..' leaves"),
        ({"artifacts": [{"name": "x", "path": "/x"}]}, "absolute"),
        ({"artifacts": [{"name": "x", "path": "bin/nothere"}]}, "not a member"),
    ],
)
def test_build_refuses_what_verify_refuses(tmp_path, manifest, words):
    with pytest.raises(AirlockError, match=words):
        make_bundle(tmp_path, manifest=manifest)
    assert not (tmp_path / "bundle.tar").exists()
    assert not (tmp_path / "bundle.tar.part").exists()


def test_sums_text_round_trip_rejects_nothing_it_writes():
    from airlock.bundle.build.bundletar import parse_sums

    files = {name: hashlib.sha256(d).hexdigest() for name, d in PAYLOAD.items()}
    assert parse_sums(sums_text(files)) == (files, [])


def test_bundletar_runs_alone_with_the_hosts_python(tmp_path):
    """roles/bundle_server runs bundletar.py with the host's python3, where airlock is absent."""
    import ast
    import subprocess
    import sys

    from airlock.bundle.build import bundletar

    tree = ast.parse(Path(bundletar.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported

    bundle = make_bundle(tmp_path)
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    run = [sys.executable, "-I", bundletar.__file__, str(bundle), str(tmp_path / "out")]
    done = subprocess.run([*run, "--sha256", sha], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"changed": True, "files": 7, "target": run[-1]}
    bad = subprocess.run([*run, "--sha256", "0" * 64], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "not the archive that was verified" in json.loads(bad.stdout)["msg"]
