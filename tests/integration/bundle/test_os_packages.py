"""OS packages for any distribution and architecture, from a signed archive on loopback.

A small apt archive is built here the way Debian's is laid out: two suites (`testy`,
`testy-updates`), real .debs made with dpkg-deb for amd64, arm64 and all, Packages
indexes, and a Release signed (InRelease) with a GPG key made for the test. Real apt, in
a private root, resolves against it over HTTP. A second copy of the archive is signed by
another key, which no keyring of the test distribution holds.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest
import yaml

from airlock.bundle.build.download import Cache
from airlock.bundle.build.pipeline import BuildOptions, build, plan, print_plan
from airlock.bundle.build.verify import require_valid
from airlock.bundle.manifest import ManifestError, load_manifest
from airlock.bundle.manifest.ospackages import OsPackages, unpinned
from airlock.bundle.pin.aptroot import PackageNotFound, ReleaseNotTrusted
from airlock.bundle.pin.distros import Distro, Keyring, Source
from airlock.bundle.pin.keyring import KeyringError
from airlock.bundle.pin.ospackages import deb_entry, pin_distro, resolve_distro

ARCHES = ("amd64", "arm64")
# (suite, package, version, architectures, control fields)
PACKAGES = (
    (
        "testy",
        "probe-app",
        "1.0",
        ARCHES,
        "Depends: probe-lib (>= 1.0), probe-data\nRecommends: probe-extra\n",
    ),
    ("testy", "probe-lib", "1:1.0", ARCHES, ""),  # an epoch: not part of the file name
    ("testy-updates", "probe-lib", "1:1.1", ARCHES, ""),
    ("testy", "probe-data", "1.0", ("all",), ""),
    ("testy", "probe-extra", "1.0", ("all",), ""),
)


@dataclass
class Archive:
    """The served archive: its URL, the test distribution's keyring, what each file hashes to."""

    base: str
    keyring: Path  # the archive key only
    both: Path  # the archive key and the stranger's (a keyring with more keys than pinned)
    fingerprint: str
    stranger: str  # fingerprint of the key that signs /evil
    sha256: dict[str, str]  # .deb file name -> sha256

    def distro(
        self, fingerprints: tuple[str, ...] | None = None, keyring: Path | None = None
    ) -> Distro:
        source = (Source("test", ("testy", "testy-updates"), ("main",)),)
        keys = (self.fingerprint,) if fingerprints is None else fingerprints
        return Distro(
            "testos-1",
            "Test OS 1 (testy)",
            "testy",
            {"amd64": source, "arm64": source},
            Keyring(str(keyring or self.keyring), keys),
        )

    def mirrors(self, tree: str = "good") -> dict[str, str]:
        return {"test": f"{self.base}/{tree}"}


def _gpg(home: str, *args: str, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", home, "--batch", *args],
        check=True,
        capture_output=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _new_key(home: str, name: str) -> str:
    _gpg(home, "--passphrase", "", "--quick-gen-key", f"{name} <{name}@test.invalid>", "ed25519")
    out = _gpg(home, "--with-colons", "--list-keys", f"{name}@test.invalid", text=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def _deb(pool: Path, name: str, version: str, arch: str, fields: str) -> Path:
    src = pool.parent.parent / "src" / f"{name}_{version.replace(':', '_')}_{arch}"
    (src / "DEBIAN").mkdir(parents=True)
    (src / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
        f"Maintainer: airlock <a@test.invalid>\n{fields}Description: test package\n"
    )
    (src / "usr" / "share" / name).mkdir(parents=True)
    (src / "usr" / "share" / name / "arch").write_text(f"{name} {version} {arch}\n")
    out = pool / name / f"{name}_{version.partition(':')[2] or version}_{arch}.deb"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "-Zgzip", "--build", "--root-owner-group", str(src), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _stanza(tree: Path, deb: Path) -> str:
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True
    ).stdout.rstrip("\n")
    data = deb.read_bytes()
    return (
        f"{fields}\nFilename: {deb.relative_to(tree)}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def _suite(tree: Path, suite: str, debs: list[tuple[Path, str]], home: str, key: str) -> None:
    dist = tree / "dists" / suite
    files: dict[str, bytes] = {}
    for arch in ARCHES:
        text = "\n".join(_stanza(tree, d) for d, a in debs if a in (arch, "all")).encode()
        files[f"main/binary-{arch}/Packages"] = text
        files[f"main/binary-{arch}/Packages.gz"] = gzip.compress(text, mtime=0)
    for name, data in files.items():
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(data)
    release = [
        "Origin: Test",
        "Label: Test",
        f"Suite: {suite}",
        "Codename: testy",
        f"Date: {formatdate(usegmt=True)}",
        "Architectures: amd64 arm64",
        "Components: main",
        "SHA256:",
    ]
    release += [f" {hashlib.sha256(d).hexdigest()} {len(d)} {n}" for n, d in files.items()]
    (dist / "Release").write_text("\n".join(release) + "\n")
    _sign(dist, home, key)


def _sign(dist: Path, home: str, key: str) -> None:
    inrelease = dist / "InRelease"
    inrelease.unlink(missing_ok=True)
    _gpg(home, "--local-user", key, "--clearsign", "-o", str(inrelease), str(dist / "Release"))


def _tree(tree: Path, home: str, key: str) -> dict[str, str]:
    pool = tree / "pool" / "main" / "p"
    by_suite: dict[str, list[tuple[Path, str]]] = {}
    for suite, name, version, arches, fields in PACKAGES:
        for arch in arches:
            by_suite.setdefault(suite, []).append((_deb(pool, name, version, arch, fields), arch))
    for suite, debs in by_suite.items():
        _suite(tree, suite, debs, home, key)
    return {
        deb.name: hashlib.sha256(deb.read_bytes()).hexdigest()
        for debs in by_suite.values()
        for deb, _ in debs
    }


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    served = tmp_path_factory.mktemp("archive")
    home = tempfile.mkdtemp(prefix="alk-gpg-")  # short: gpg-agent's socket path is limited
    os.chmod(home, 0o700)
    try:
        good, evil = _new_key(home, "archive"), _new_key(home, "stranger")
        keyring = served.parent / "archive-keyring.gpg"
        keyring.write_bytes(_gpg(home, "--export", good).stdout)
        both = served.parent / "both-keyring.gpg"
        both.write_bytes(_gpg(home, "--export", good, evil).stdout)
        sums = _tree(served / "good", home, good)
        # The same archive, its Release files signed by a key the distribution does not trust.
        shutil.copytree(served / "good", served / "evil")
        for suite in ("testy", "testy-updates"):
            _sign(served / "evil" / "dists" / suite, home, evil)
        handler = functools.partial(_Quiet, directory=str(served))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        yield Archive(base, keyring, both, good, evil, sums)
        server.shutdown()
        server.server_close()
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_resolution_pins_the_closure_under_the_mirror(archive, tmp_path):
    dist = archive.distro()
    debs = resolve_distro(dist, "amd64", ["probe-app"], archive.mirrors(), tmp_path)
    # Depends are followed (the newest probe-lib, from -updates); Recommends are not.
    assert {(d.name, d.version) for d in debs} == {
        ("probe-app", "1.0"),
        ("probe-lib", "1:1.1"),
        ("probe-data", "1.0"),
    }
    for deb in debs:
        assert deb.sha256 == archive.sha256[deb.filename]
        entry = deb_entry(deb, dist, "amd64", archive.mirrors())
        assert entry["url"] == f"{{mirror.test}}/pool/main/p/{deb.name}/{deb.filename}"
        assert entry["target"] == f"debs/testy/{deb.filename}"
        assert entry["sha256"] == {"amd64": archive.sha256[deb.filename]}


def test_each_architecture_gets_its_own_files(archive, tmp_path):
    debs = resolve_distro(archive.distro(), "arm64", ["probe-app"], archive.mirrors(), tmp_path)
    files = {d.name: d.filename for d in debs}
    assert files == {
        "probe-app": "probe-app_1.0_arm64.deb",
        "probe-lib": "probe-lib_1.1_arm64.deb",
        "probe-data": "probe-data_1.0_all.deb",
    }
    assert all(d.sha256 == archive.sha256[d.filename] for d in debs)


def test_a_release_signed_by_an_unknown_key_is_refused(archive, tmp_path):
    with pytest.raises(ReleaseNotTrusted) as exc:
        resolve_distro(archive.distro(), "amd64", ["probe-app"], archive.mirrors("evil"), tmp_path)
    message = str(exc.value)
    assert "testos-1 (amd64)" in message
    assert "not signed by a trusted key" in message
    assert archive.stranger[-16:] in message  # apt names the key that did sign


def test_only_the_pinned_key_may_sign_even_if_the_keyring_has_more(archive, tmp_path):
    # Ubuntu's keyring file also holds its 2012 archive key and CD image keys; only the
    # pinned fingerprint is accepted (apt's signed-by=KEYRING,FINGERPRINT).
    dist = archive.distro(keyring=archive.both)
    assert resolve_distro(dist, "amd64", ["probe-lib"], archive.mirrors(), tmp_path / "a")
    with pytest.raises(ReleaseNotTrusted) as exc:
        resolve_distro(dist, "amd64", ["probe-lib"], archive.mirrors("evil"), tmp_path / "b")
    assert "/evil testy, testy-updates" in str(exc.value)


def test_a_keyring_without_the_pinned_key_is_refused(archive, tmp_path):
    dist = archive.distro(fingerprints=(archive.stranger,))
    with pytest.raises(KeyringError) as exc:
        resolve_distro(dist, "amd64", ["probe-app"], archive.mirrors(), tmp_path)
    assert archive.stranger in str(exc.value)
    assert archive.fingerprint in str(exc.value)  # what the keyring does hold


def test_an_unknown_package_is_named(archive, tmp_path):
    with pytest.raises(PackageNotFound) as exc:
        resolve_distro(
            archive.distro(), "amd64", ["probe-app", "no-such-tool"], archive.mirrors(), tmp_path
        )
    assert exc.value.names == ("no-such-tool",)
    assert "no package no-such-tool" in str(exc.value)
    assert "os_packages" in str(exc.value)


def _pin(archive, tmp_path, arches=ARCHES, only=None):
    entry = {"pinned": "packages/testos-1.yml", "packages": ["probe-app"]}
    if only:
        entry["architectures"] = list(only)
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "schema": 1,
                "kube_version": "v1.34.4",
                "architectures": list(ARCHES),
                "mirrors": archive.mirrors(),
                "os_packages": {"testos-1": entry},
            }
        )
    )
    entry = OsPackages("testos-1", ("probe-app",), tmp_path / "packages" / "testos-1.yml")
    result = pin_distro(
        archive.distro(), entry, arches, archive.mirrors(), tmp_path / "apt", log=lambda _: None
    )
    return manifest, result


def test_pinned_file_feeds_the_manifest_and_mirrors_override_it(archive, tmp_path):
    manifest, result = _pin(archive, tmp_path)
    assert result.counts["amd64"][0] == result.counts["arm64"][0] == 3
    m = load_manifest(manifest)
    debs = {a.name: a for a in m.resolve("arm64", {"test": "http://mirror.internal/test"})}
    lib = debs["deb-testy-arm64-probe-lib"]
    assert lib.kind == "deb" and lib.version == "1:1.1"
    assert lib.url == "http://mirror.internal/test/pool/main/p/probe-lib/probe-lib_1.1_arm64.deb"
    assert lib.sha256 == archive.sha256["probe-lib_1.1_arm64.deb"]
    assert "deb-testy-amd64-probe-lib" not in debs


def test_a_changed_package_list_must_be_pinned_again(archive, tmp_path):
    manifest, _ = _pin(archive, tmp_path)
    doc = yaml.safe_load(manifest.read_text())
    doc["os_packages"]["testos-1"]["packages"].append("probe-extra")
    manifest.write_text(yaml.safe_dump(doc))
    with pytest.raises(ManifestError, match="pin-packages --distro testos-1"):
        load_manifest(manifest)


def test_an_architecture_left_unpinned_must_be_said(archive, tmp_path):
    manifest, _ = _pin(archive, tmp_path, arches=("amd64",))
    with pytest.raises(ManifestError, match=r"no packages for arm64.*--arch arm64"):
        load_manifest(manifest)
    manifest, _ = _pin(archive, tmp_path, arches=("amd64",), only=("amd64",))
    assert {a.arch for a in load_manifest(manifest).resolve("amd64")} == {"amd64"}
    assert not [a for a in load_manifest(manifest).resolve("arm64") if a.kind == "deb"]
    assert unpinned(manifest, list(ARCHES)) == ["testos-1 (arm64)"]  # bundle build warns


def test_pinning_one_architecture_keeps_the_other(archive, tmp_path):
    manifest, _ = _pin(archive, tmp_path)
    _, result = _pin(archive, tmp_path, arches=("arm64",))
    assert set(result.counts) == {"amd64", "arm64"}
    assert {a.arch for a in load_manifest(manifest).resolve("amd64")} == {"amd64"}


def test_bundle_has_one_repository_a_host_reads_for_its_own_architecture(archive, tmp_path):
    manifest, _ = _pin(archive, tmp_path)
    out = tmp_path / "bundle.tar"
    opts = BuildOptions(
        manifest=load_manifest(manifest),
        arches=list(ARCHES),
        output=out,
        cache=Cache(tmp_path / "cache"),
        progress=False,
    )
    listing = io.StringIO()
    print_plan(plan(opts), [], listing)  # --dry-run
    assert listing.getvalue().count("-> debs/testy/probe-data_1.0_all.deb") == 1
    assert listing.getvalue().endswith("\n5 files\n")
    build(opts)
    require_valid(out)
    repo = tmp_path / "repo"
    with tarfile.open(out) as tar:
        names = [n for n in tar.getnames() if n.startswith("debs/")]
        tar.extractall(repo, members=[tar.getmember(n) for n in names], filter="data")
    # probe-data (arch all) is pinned for both architectures but stored once.
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.endswith(".deb")) == [
        "probe-app_1.0_amd64.deb",
        "probe-app_1.0_arm64.deb",
        "probe-data_1.0_all.deb",
        "probe-lib_1.1_amd64.deb",
        "probe-lib_1.1_arm64.deb",
    ]
    packages = (repo / "debs" / "testy" / "Packages").read_text()
    assert packages.count("Package: probe-data\n") == 1
    for arch in ARCHES:
        shown = _host_apt(tmp_path / f"host-{arch}", arch, repo / "debs" / "testy")
        assert f"probe-app_1.0_{arch}.deb" in shown
        other = "arm64" if arch == "amd64" else "amd64"
        assert f"_{other}.deb" not in shown


def _host_apt(state: Path, arch: str, repo: Path) -> str:
    """What apt on a host of `arch` would install from the flat repository (as bundle_client
    configures it: `deb [trusted=yes] URL/debs/CODENAME ./`)."""
    for sub in ("lists/partial", "cache/archives/partial", "etc/apt.conf.d"):
        (state / sub).mkdir(parents=True)
    (state / "etc" / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (state / "status").write_text("")
    opts = [
        f"-oDir::State={state}",
        f"-oDir::Cache={state / 'cache'}",
        f"-oDir::Etc={state / 'etc'}",
        f"-oDir::Etc::Parts={state / 'etc' / 'apt.conf.d'}",
        f"-oDir::State::status={state / 'status'}",
        f"-oAPT::Architecture={arch}",
        f"-oAPT::Architectures::={arch}",
    ]
    subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True)
    return subprocess.run(
        ["apt-get", *opts, "install", "--print-uris", "-qq", "probe-app"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
