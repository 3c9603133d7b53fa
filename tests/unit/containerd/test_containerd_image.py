"""airlock.cluster.containerd_image's shared code: archive parsing, ctr's image list, the
import decision.

Archives are real ones, written by airlock.lab.bundle.oci (what the bundle ships). The module
itself runs against a real containerd in tests/integration/containerd.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.containerd import (
    Archive,
    ArchiveError,
    ArchiveImage,
    is_full_reference,
    parse_image_list,
    parse_index,
    parse_pinned,
    plan,
    read_archive,
)

from airlock.lab.bundle import oci

PAUSE = "registry.k8s.io/pause:3.10.1"
PROXY = "registry.k8s.io/kube-proxy:v1.34.4"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def make_archive(tmp_path: Path, ref: str, content: bytes = b"#!/bin/sh\n") -> tuple[Path, str]:
    source = tmp_path / f"src-{abs(hash((ref, content)))}"
    source.write_bytes(content)
    spec = oci.ImageSpec(
        reference=ref,
        arch="amd64",
        layers=[[oci.ImageFile(source, "/pause")]],
        entrypoint=["/pause"],
    )
    out = tmp_path / (ref.rsplit("/", 1)[1].replace(":", "_") + ".oci.tar")
    return out, oci.write_oci_archive(spec, out)


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- archive parsing ---------------------------------------------------------------------
def test_reads_ref_and_digest_of_an_airlock_archive(tmp_path):
    path, digest = make_archive(tmp_path, PAUSE)
    archive = read_archive(str(path))
    assert archive.path == str(path)
    assert archive.images == [
        ArchiveImage(PAUSE, digest, "application/vnd.oci.image.manifest.v1+json")
    ]


def test_reads_a_gzip_compressed_archive(tmp_path):
    path, digest = make_archive(tmp_path, PAUSE)
    gz = tmp_path / "pause.oci.tar.gz"
    with tarfile.open(path) as src, tarfile.open(gz, "w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    assert read_archive(str(gz)).images[0].digest == digest


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"io.containerd.image.name": PAUSE, "org.opencontainers.image.ref.name": "3.10.1"}, PAUSE),
        ({"org.opencontainers.image.ref.name": PAUSE}, PAUSE),
        ({"io.containerd.image.name": PAUSE}, PAUSE),
    ],
    ids=["both-annotations", "full-ref-name-only", "containerd-name-only"],
)
def test_image_ref_comes_from_the_annotations(annotations, expected):
    doc = {"manifests": [{"digest": DIGEST_A, "annotations": annotations}]}
    assert parse_index(doc, "x.tar").images[0].ref == expected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "manifests": [
                    {
                        "digest": DIGEST_A,
                        "annotations": {"org.opencontainers.image.ref.name": "3.10.1"},
                    }
                ]
            },
            "names no image",
        ),
        ({"manifests": [{"digest": DIGEST_A}]}, "names no image"),
        ({"manifests": []}, "names no image"),
        ({"schemaVersion": 2}, "no `manifests` list"),
        ([], "no `manifests` list"),
        ({"manifests": [{"annotations": {"io.containerd.image.name": PAUSE}}]}, "without a digest"),
        (
            {
                "manifests": [
                    {"digest": "sha256:123", "annotations": {"io.containerd.image.name": PAUSE}}
                ]
            },
            "malformed digest",
        ),
    ],
    ids=[
        "tag-only",
        "no-annotations",
        "empty",
        "no-manifests",
        "not-a-dict",
        "no-digest",
        "bad-digest",
    ],
)
def test_bad_index_documents_fail_with_a_reason(doc, message):
    with pytest.raises(ArchiveError, match=message):
        parse_index(doc, "x.tar")


def test_missing_archive(tmp_path):
    with pytest.raises(ArchiveError, match=r"no such file .*bundle stage"):
        read_archive(str(tmp_path / "absent.oci.tar"))


def test_a_directory_is_not_an_archive(tmp_path):
    with pytest.raises(ArchiveError, match=r"not a regular file"):
        read_archive(str(tmp_path))


def test_a_text_file_is_not_a_tar(tmp_path):
    path = tmp_path / "notes.oci.tar"
    path.write_text("hello\n")
    with pytest.raises(ArchiveError, match=r"not a tar archive"):
        read_archive(str(path))


def test_a_docker_save_archive_is_named_as_such(tmp_path):
    path = write_tar(tmp_path / "docker.tar", {"manifest.json": b"[]", "repositories": b"{}"})
    with pytest.raises(ArchiveError, match=r"not an OCI archive: no index.json .*docker save"):
        read_archive(str(path))


def test_index_json_that_is_not_json(tmp_path):
    path = write_tar(tmp_path / "bad.tar", {"oci-layout": b"{}", "index.json": b"{nope"})
    with pytest.raises(ArchiveError, match=r"index.json is not JSON"):
        read_archive(str(path))


def test_dot_slash_member_names_are_read(tmp_path):
    index = {
        "manifests": [{"digest": DIGEST_A, "annotations": {"io.containerd.image.name": PAUSE}}]
    }
    path = write_tar(
        tmp_path / "dot.tar", {"./oci-layout": b"{}", "./index.json": json.dumps(index).encode()}
    )
    assert read_archive(str(path)).images == [ArchiveImage(PAUSE, DIGEST_A, "")]


@pytest.mark.parametrize(
    ("name", "full"),
    [
        (PAUSE, True),
        ("ghcr.io/flannel-io/flannel:v0.27.4", True),
        ("harbor.local:443/lib/app@sha256:" + "c" * 64, True),
        ("3.10.1", False),
        ("latest", False),
        ("harbor.local:443/lib/app", False),
        ("", False),
        ("a b/c:d", False),
    ],
)
def test_full_reference(name, full):
    assert is_full_reference(name) is full


# --- containerd's image list and the decision --------------------------------------------
MEDIA = "application/vnd.oci.image.manifest.v1+json"
CTR_LIST = f"""REF    TYPE    DIGEST     SIZE      PLATFORMS   LABELS
{PAUSE} {MEDIA} {DIGEST_A} 306.2 KiB linux/amd64 io.cri-containerd.image=managed
{PROXY} {MEDIA} {DIGEST_B} 24.6 MiB  linux/amd64 -
sha256:{"d" * 64} {MEDIA} {DIGEST_A} 306.2 KiB linux/amd64 -
"""


def test_parse_image_list():
    images = parse_image_list(CTR_LIST)
    assert images[PAUSE] == DIGEST_A
    assert images[PROXY] == DIGEST_B
    assert len(images) == 3
    assert parse_image_list("REF TYPE DIGEST SIZE PLATFORMS LABELS\n") == {}
    assert parse_image_list("") == {}


def test_parse_pinned_reads_the_labels_column():
    listing = CTR_LIST + (
        f"{PAUSE}-2 {MEDIA} {DIGEST_A} 306.2 KiB linux/amd64 "
        "io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned\n"
        f"{PROXY}-2 {MEDIA} {DIGEST_B} 24.6 MiB linux/amd64 io.cri-containerd.pinned=no\n"
    )
    assert parse_pinned(listing) == {f"{PAUSE}-2"}
    assert parse_pinned(CTR_LIST) == set()


@pytest.mark.parametrize(
    ("present", "missing", "have"),
    [
        ({}, [PAUSE], []),
        ({PAUSE: DIGEST_A}, [], [PAUSE]),
        ({PAUSE: DIGEST_B}, [PAUSE], []),  # same tag, another image: import the archive's
        ({PROXY: DIGEST_A}, [PAUSE], []),  # same digest under another name does not count
    ],
    ids=["absent", "same-digest", "other-digest", "other-name"],
)
def test_plan_imports_only_what_differs(present, missing, have):
    archive = Archive("pause.tar", [ArchiveImage(PAUSE, DIGEST_A)])
    [entry] = plan([archive], present)
    assert entry.missing == missing
    assert entry.present == have
    assert entry.needs_import is bool(missing)
    assert entry.to_dict()["action"] == ("import" if missing else "none")


def test_plan_an_archive_with_two_images_imports_if_one_is_missing():
    archive = Archive("two.tar", [ArchiveImage(PAUSE, DIGEST_A), ArchiveImage(PROXY, DIGEST_B)])
    [entry] = plan([archive], {PAUSE: DIGEST_A})
    assert entry.needs_import and entry.missing == [PROXY] and entry.present == [PAUSE]
