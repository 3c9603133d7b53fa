"""The download path against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os

import pytest
import yaml

from airlock.bundle.build.download import (
    Cache,
    ChecksumMismatchError,
    DownloadError,
    Request,
    fetch,
    fetch_all,
)
from airlock.cli import bundle as cli

BODY = os.urandom(3 * 1024 * 1024 + 17)


def test_fetch_stores_verified_file_in_cache(mirror, tmp_path):
    url, sha = mirror.add("/kubeadm", BODY)
    cache = Cache(tmp_path)
    path = fetch(Request(url, sha, "kubeadm"), cache)
    assert path == cache.path_for(sha)
    assert path.read_bytes() == BODY


def test_cached_file_is_not_fetched_again(mirror, tmp_path):
    url, sha = mirror.add("/kubeadm", BODY)
    cache = Cache(tmp_path)
    fetch(Request(url, sha, "kubeadm"), cache)
    fetch(Request(url, sha, "kubeadm"), cache)
    assert len(mirror.requests_for("/kubeadm")) == 1


def test_resume_after_cut_connection_uses_range(mirror, tmp_path):
    url, sha = mirror.add("/etcd", BODY, cut_first=1)
    path = fetch(Request(url, sha, "etcd"), Cache(tmp_path), backoff=0)
    assert path.read_bytes() == BODY
    first, second = mirror.requests_for("/etcd")
    assert first is None
    assert second == f"bytes={len(BODY) // 2}-"
    # Only the missing half travelled again.
    assert mirror.sent == len(BODY)


def test_server_without_range_support_restarts_from_zero(mirror, tmp_path):
    url, sha = mirror.add("/etcd", BODY, cut_first=1, ranges=False)
    path = fetch(Request(url, sha, "etcd"), Cache(tmp_path), backoff=0)
    assert path.read_bytes() == BODY


def test_retry_after_server_errors(mirror, tmp_path):
    url, sha = mirror.add("/runc", BODY, fail_first=2)
    path = fetch(Request(url, sha, "runc"), Cache(tmp_path), backoff=0)
    assert path.read_bytes() == BODY
    assert len(mirror.requests_for("/runc")) == 3


def test_gives_up_after_retries_naming_artifact(mirror, tmp_path):
    url, sha = mirror.add("/runc", BODY, fail_first=10)
    with pytest.raises(DownloadError, match=r"runc: .*gave up after 2 retries"):
        fetch(Request(url, sha, "runc"), Cache(tmp_path), retries=2, backoff=0)


def test_not_found_is_not_retried(mirror, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(Request(f"{mirror.base}/nope", "0" * 64, "nope"), Cache(tmp_path), backoff=0)
    assert len(mirror.requests_for("/nope")) == 1


def test_checksum_mismatch_refuses_artifact(mirror, tmp_path):
    url, _ = mirror.add("/coredns", BODY)
    wrong = hashlib.sha256(b"something else").hexdigest()
    cache = Cache(tmp_path)
    with pytest.raises(ChecksumMismatchError, match=f"coredns: .* pins {wrong}"):
        fetch(Request(url, wrong, "coredns"), cache)
    assert not cache.has(wrong)
    assert not cache.partial_for(wrong).exists()


def test_fetch_all_keeps_good_ones_and_reports_bad(mirror, tmp_path):
    good = [mirror.add(f"/good{i}", os.urandom(100_000 + i)) for i in range(5)]
    bad_url, _ = mirror.add("/bad", b"tampered")
    bad_sha = hashlib.sha256(b"original").hexdigest()
    cache = Cache(tmp_path)
    reqs = [Request(u, s, f"good{i}") for i, (u, s) in enumerate(good)]
    reqs.append(Request(bad_url, bad_sha, "bad"))
    outcome = fetch_all(reqs, cache, jobs=3, progress=False)
    assert set(outcome.errors) == {bad_sha}
    assert "bad: " in str(outcome.errors[bad_sha])
    assert all(cache.has(s) for _, s in good)


def test_file_urls_are_copied_and_verified(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(BODY)
    sha = hashlib.sha256(BODY).hexdigest()
    path = fetch(Request(src.as_uri(), sha, "local"), Cache(tmp_path / "cache"))
    assert path.read_bytes() == BODY


def _manifest(tmp_path, mirror, entries):
    doc = {
        "schema": 1,
        "kube_version": "v1.34.4",
        "architectures": ["amd64"],
        "mirrors": {"web": mirror.base},
        "artifacts": [
            {
                "name": name,
                "version": "1.0",
                "url": "{mirror.web}/" + name,
                "target": "bin/{arch}/" + name,
                "sha256": {"amd64": sha},
            }
            for name, sha in entries
        ],
    }
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_build_fails_naming_the_bad_artifact_and_caches_the_rest(mirror, tmp_path, capsys):
    _, good_sha = mirror.add("/kubelet", BODY)
    mirror.add("/kubectl", b"not the pinned kubectl")
    pinned = hashlib.sha256(b"the real kubectl").hexdigest()
    manifest = _manifest(tmp_path, mirror, [("kubelet", good_sha), ("kubectl", pinned)])
    out = tmp_path / "bundle.tar"
    rc = cli.main(
        [
            "bundle",
            "build",
            "--manifest",
            str(manifest),
            "--arch",
            "amd64",
            "--output",
            str(out),
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-wheels",
        ]
    )
    assert rc != 0
    err = capsys.readouterr().err
    assert "kubectl (amd64)" in err and "refused" in err
    assert "kubelet" not in err
    assert Cache(tmp_path / "c").has(good_sha)
    assert not out.exists()


def test_build_then_rebuild_from_cache(mirror, tmp_path, capsys):
    _, sha = mirror.add("/kubelet", BODY)
    manifest = _manifest(tmp_path, mirror, [("kubelet", sha)])
    args = [
        "bundle",
        "build",
        "--manifest",
        str(manifest),
        "--output",
        str(tmp_path / "b.tar"),
        "--arch",
        "amd64",
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-wheels",
    ]
    assert cli.main(args) == 0
    assert cli.main(args) == 0
    assert len(mirror.requests_for("/kubelet")) == 1
    assert "0 fetched, 1 from cache" in capsys.readouterr().out
    assert cli.main(["bundle", "verify", str(tmp_path / "b.tar")]) == 0


def test_dry_run_lists_sources_and_targets(mirror, tmp_path, capsys):
    manifest = _manifest(tmp_path, mirror, [("kubelet", "a" * 64)])
    rc = cli.main(
        [
            "bundle",
            "build",
            "--manifest",
            str(manifest),
            "--dry-run",
            "--arch",
            "amd64",
            "--mirror",
            "web=https://mirror.internal/k8s",
            "--no-wheels",
            "--cache-dir",
            str(tmp_path / "c"),
            "--output",
            str(tmp_path / "x.tar"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "https://mirror.internal/k8s/kubelet\n    -> bin/amd64/kubelet" in out
    assert mirror.log == []
