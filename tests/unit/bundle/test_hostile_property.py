"""Random tar archives: verify and the extraction never crash and never write outside.

Each example is a tar of random members (names with `..`, absolute paths, `.`, reserved
names; every member type; random modes, owners and contents), sometimes headed by an
INDEX and SHA256SUMS that describe it correctly, so that both refusals and clean passes
are reached. Verify must return a report whose problems are single lines; the extraction
must either unpack or raise UnpackError with one line; and nothing may appear outside the
example's own directory (absolute names point into the watched directory, so an escape
would show).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.bundle.build.bundletar import (
    INDEX,
    MANIFEST,
    SUMS,
    Entry,
    UnpackError,
    extract_bundle,
    index_text,
    sums_text,
)
from airlock.bundle.build.verify import verify_bundle

WATCHED = Path(tempfile.mkdtemp(prefix="airlock-hostile-"))
ESCAPE = str(WATCHED / "escaped")

NAMES = st.one_of(
    st.sampled_from(
        [
            "bin/a",
            "bin/b",
            "a",
            "a/b",
            "../escaped",
            "../../escaped",
            "bin/../../escaped",
            ESCAPE,
            "/etc/airlock-escaped",
            "./a",
            "a//b",
            "bin/",
            INDEX,
            SUMS,
            MANIFEST,
            "INDEX.sig",
            "SHA256SUMS.sig",
            "bin/sp ace",
        ]
    ),
    st.text(st.sampled_from("ab./\\\n "), min_size=1, max_size=8),
)
TYPES = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.REGTYPE,
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    ]
)
MODES = st.one_of(
    st.sampled_from([0o644, 0o755, 0o4755, 0o777, 0o666, 0o1755]), st.integers(0, 0o7777)
)
MEMBER = st.tuples(
    NAMES,
    TYPES,
    MODES,
    st.sampled_from([0, 0, 0, 1000]),
    st.sampled_from(["root", "root", "", "daemon"]),
    st.binary(max_size=64),
    st.sampled_from(["", "/etc/passwd", "../escaped", ESCAPE, "bin/a"]),
)

CLEAN = st.tuples(
    st.sampled_from(["bin/a", "bin/b", "c/d/e", "f", "bin/sp ace"]),
    st.just(tarfile.REGTYPE),
    st.sampled_from([0o644, 0o755]),
    st.just(0),
    st.sampled_from(["root", ""]),
    st.binary(max_size=64),
    st.just(""),
)


def _tar(members, described: bool, manifest: bytes | None) -> bytes:
    body = []
    for name, kind, mode, uid, uname, data, link in members:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
        info.uname = info.gname = uname
        info.linkname = link
        info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        body.append((info, data[: info.size]))
    if manifest is not None:
        info = tarfile.TarInfo(MANIFEST)
        info.mode, info.size = 0o644, len(manifest)
        body.insert(0, (info, manifest))
    head = []
    if described:  # an INDEX and SHA256SUMS that list the members as they are
        files = {i.name: hashlib.sha256(d).hexdigest() for i, d in body}
        sums = sums_text(files)
        entries = [Entry(hashlib.sha256(sums).hexdigest(), len(sums), 0o644, SUMS)]
        entries += [Entry(files[i.name], i.size, i.mode, i.name) for i, _ in body]
        for name, data in ((INDEX, index_text(entries)), (SUMS, sums)):
            info = tarfile.TarInfo(name)
            info.mode, info.size = 0o644, len(data)
            head.append((info, data))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in head + body:
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return out.getvalue()


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")} | {
        str(p) for p in root.parent.iterdir() if p.name.startswith("airlock-hostile")
    }


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    members=st.one_of(
        st.lists(MEMBER, max_size=6),
        st.lists(CLEAN, max_size=4, unique_by=lambda m: m[0]),  # mostly valid bundles
        st.lists(CLEAN, max_size=3).flatmap(lambda c: st.lists(MEMBER, max_size=2).map(c.__add__)),
    ),
    described=st.sampled_from([True, True, False]),
    manifest=st.sampled_from(
        [b"{}", b"{}", None, b"not json", b'{"artifacts": [{"name": "x", "path": "../x"}]}']
    ),
    cut=st.one_of(st.none(), st.none(), st.integers(0, 4000)),
)
def test_random_archives_pass_cleanly_or_are_refused_in_one_line(members, described, manifest, cut):
    data = _tar(members, described, manifest)
    if cut is not None:
        data = data[:cut]
    example = Path(tempfile.mkdtemp(dir=WATCHED))
    try:
        archive = example / "bundle.tar"
        archive.write_bytes(data)
        before = _tree(WATCHED) - {str(example)}

        report = verify_bundle(archive)
        assert all("\n" not in p and p for p in report.problems), report.problems

        target = example / "out"
        try:
            extract_bundle(archive, target)
        except UnpackError as exc:
            assert not report.ok, f"verify passed what the extraction refused: {exc}"
            assert "\n" not in str(exc) and str(exc)
            assert not target.exists()
        else:
            for path in target.rglob("*"):
                assert not path.is_symlink()
                assert path.stat().st_mode & 0o7777 in (0o644, 0o755)
        after = _tree(WATCHED) - {str(example)}
        inside = {p for p in after if p.startswith(str(example) + os.sep)}
        assert after - inside == before - {p for p in before if p.startswith(str(example))}
        assert not Path(ESCAPE).exists() and not Path("/etc/airlock-escaped").exists()
        stray = {p for p in inside if not p.startswith((str(archive), str(target)))}
        assert stray == set(), stray  # no leftover temporary directories
    finally:
        shutil.rmtree(example)


def teardown_module() -> None:
    shutil.rmtree(WATCHED, ignore_errors=True)
