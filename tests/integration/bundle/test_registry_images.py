"""Registry images pinned by digest, fetched by the builder from a real registry on loopback.

Debian's `docker-registry` (distribution 2.8) serves HTTPS on 127.0.0.1 with a certificate
from a CA made here. Two small images built with airlock/lab/bundle/oci.py (amd64, arm64) are
pushed with skopeo, and a multi-arch OCI index over both is PUT through the registry API,
as registry.k8s.io serves its images. The builder then fetches by the index digest, per
architecture, into OCI archives named for containerd; a wrong digest is refused and named.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airlock.bundle.build.download import Cache, DownloadError
from airlock.bundle.build.images import ImageOptions
from airlock.bundle.build.pipeline import BuildOptions, build
from airlock.bundle.build.verify import require_valid
from airlock.bundle.manifest import load_manifest
from airlock.lab.bundle import oci

REGISTRY = shutil.which("docker-registry") or shutil.which("registry")
SKOPEO = shutil.which("skopeo")
READY_DEADLINE = 20.0
INDEX = "application/vnd.oci.image.index.v1+json"
NAME = "registry.k8s.io/pause:3.10.1"  # what containerd must import it as


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    certs: Path  # a skopeo --cert-dir: ca.crt
    context: ssl.SSLContext


def _require_tools() -> None:
    missing = [n for n, p in (("docker-registry", REGISTRY), ("skopeo", SKOPEO)) if not p]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: apt-get install docker-registry skopeo "
            "(scripts/bootstrap installs them)"
        )


def _ca_and_cert(directory: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airlock test registry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "certs").mkdir()
    (directory / "certs" / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "server.crt").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    _require_tools()
    base = tmp_path_factory.mktemp("registry")
    _ca_and_cert(base)
    host = f"127.0.0.1:{_free_port()}"
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(base / "data")}},
        "http": {
            "addr": host,
            "tls": {"certificate": str(base / "server.crt"), "key": str(base / "server.key")},
        },
    }
    (base / "config.yml").write_text(yaml.safe_dump(config))
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen(
        [str(REGISTRY), "serve", str(base / "config.yml")], stdout=log, stderr=log
    )
    context = ssl.create_default_context(cafile=str(base / "certs" / "ca.crt"))
    deadline = time.monotonic() + READY_DEADLINE
    try:
        while True:
            try:
                with urllib.request.urlopen(f"https://{host}/v2/", context=context, timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"docker-registry did not serve https://{host}/v2/ within "
                        f"{READY_DEADLINE:.0f}s: {(base / 'registry.log').read_text()[-2000:]}"
                    )
                time.sleep(0.1)
        yield Registry(host, base / "certs", context)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _push_multiarch(registry: Registry, tmp_path: Path, repo: str) -> tuple[str, dict[str, str]]:
    """Push one small image per architecture and an OCI index over them; returns
    (index digest, {arch: manifest digest})."""
    payload = tmp_path / "hello"
    per_arch, descriptors = {}, []
    for arch in ("amd64", "arm64"):
        payload.write_bytes(f"airlock {arch}\n".encode())
        archive = tmp_path / f"{arch}.oci.tar"
        oci.write_oci_archive(
            oci.ImageSpec(f"{repo}:{arch}", arch, [[oci.ImageFile(payload, "/hello", 0o644)]]),
            archive,
        )
        digest_file = tmp_path / f"{arch}.digest"
        subprocess.run(
            [
                str(SKOPEO), "copy", "--quiet", "--dest-cert-dir", str(registry.certs),
                "--digestfile", str(digest_file),
                f"oci-archive:{archive}", f"docker://{registry.host}/{repo}:{arch}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        digest = digest_file.read_text().strip()
        raw = _get(registry, f"/v2/{repo}/manifests/{digest}")
        per_arch[arch] = digest
        descriptors.append(
            {
                "mediaType": oci.MEDIA_MANIFEST,
                "digest": digest,
                "size": len(raw),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors}).encode()
    request = urllib.request.Request(
        f"https://{registry.host}/v2/{repo}/manifests/multi",
        data=index,
        method="PUT",
        headers={"Content-Type": INDEX},
    )
    with urllib.request.urlopen(request, context=registry.context, timeout=10) as resp:
        assert resp.status == 201
    return "sha256:" + hashlib.sha256(index).hexdigest(), per_arch


def _get(registry: Registry, path: str) -> bytes:
    request = urllib.request.Request(
        f"https://{registry.host}{path}", headers={"Accept": oci.MEDIA_MANIFEST}
    )
    with urllib.request.urlopen(request, context=registry.context, timeout=10) as resp:
        return resp.read()


def _manifest(tmp_path: Path, registry: Registry, repo: str, digest: object) -> Path:
    doc = {
        "schema": 1,
        "kube_version": "v1.34.4",
        "architectures": ["amd64", "arm64"],
        # A mirror for the registry, as the production manifest declares registry.k8s.io;
        # here it already points at the loopback registry (as --mirror would).
        "mirrors": {"registry-k8s": f"docker://{registry.host}"},
        "artifacts": [
            {
                "name": "pause",
                "kind": "image",
                "version": "3.10.1",
                "ref": f"{{mirror.registry-k8s}}/{repo}:multi",
                "image": NAME,
                "digest": digest,
                "target": "images/{arch}/pause_{version}.oci.tar",
                "roles": ["kube_control_plane", "kube_node"],
            }
        ],
    }
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _opts(tmp_path: Path, manifest: Path, registry: Registry) -> BuildOptions:
    return BuildOptions(
        manifest=load_manifest(manifest),
        arches=["amd64", "arm64"],
        output=tmp_path / "bundle.tar",
        cache=Cache(tmp_path / "cache"),
        progress=False,
        images=ImageOptions(cert_dir=registry.certs),
    )


def test_builder_fetches_by_digest_per_arch_named_for_containerd(registry, tmp_path):
    index_digest, per_arch = _push_multiarch(registry, tmp_path, "airlock/pause")
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/pause", index_digest), registry)
    result = build(opts)
    assert result.fetched == 2 and result.reused == 0
    require_valid(opts.output)

    with tarfile.open(opts.output) as bundle:
        doc = json.load(bundle.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        sums = bundle.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
        for art in doc["artifacts"]:
            arch = art["arch"]
            assert art["digest"] == index_digest
            assert art["image"] == NAME
            assert art["source"] == f"docker://{registry.host}/airlock/pause@{index_digest}"
            assert f"{art['sha256']}  {art['path']}" in sums
            data = bundle.extractfile(art["path"]).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == art["sha256"]
            out = tmp_path / f"got-{arch}.oci.tar"
            out.write_bytes(data)
            with tarfile.open(out) as image:
                index = json.load(image.extractfile("index.json"))  # type: ignore[arg-type]
            (desc,) = index["manifests"]
            # skopeo picked this architecture's manifest out of the index, unchanged.
            assert desc["digest"] == per_arch[arch]
            assert desc["annotations"]["io.containerd.image.name"] == NAME
            assert desc["annotations"]["org.opencontainers.image.ref.name"] == "3.10.1"

    # Same pins again: nothing is fetched, and the archives are byte-for-byte the same.
    again = build(_opts(tmp_path, opts.manifest.path, registry))
    assert again.fetched == 0 and again.reused == 2


def test_a_wrong_digest_is_refused_and_named(registry, tmp_path):
    _push_multiarch(registry, tmp_path, "airlock/wrong")
    wrong = "sha256:" + "0" * 64
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/wrong", wrong), registry)
    with pytest.raises(DownloadError) as exc:
        build(opts)
    message = str(exc.value)
    assert "pause (amd64)" in message and "pause (arm64)" in message
    assert wrong in message and "refused" in message
    assert not opts.output.exists()


def test_a_per_arch_pin_of_another_architecture_is_refused(registry, tmp_path):
    _, per_arch = _push_multiarch(registry, tmp_path, "airlock/swapped")
    swapped = {"amd64": per_arch["arm64"], "arm64": per_arch["amd64"]}
    opts = _opts(tmp_path, _manifest(tmp_path, registry, "airlock/swapped", swapped), registry)
    with pytest.raises(DownloadError) as exc:
        build(opts)
    assert "pause (amd64)" in str(exc.value)
    assert "is an image for arm64, not amd64" in str(exc.value)
