"""airlock.cluster.containerd_image: archive parsing, the import decision, the module.

Archives are real ones, written by airlock.lab.bundle.oci (what the bundle ships). The module
runs against a stand-in `ctr` (a small script keeping its image list in a JSON file), so
these tests need no containerd; tests/integration/containerd runs it against a real one.
"""

from __future__ import annotations

import io
import json
import stat
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.containerd import (
    Archive,
    ArchiveError,
    ArchiveImage,
    is_full_reference,
    parse_image_list,
    parse_index,
    plan,
    read_archive,
)
from ansible_collections.airlock.cluster.plugins.modules import containerd_image

from airlock.lab.bundle import oci
from tests.module_harness import ModuleFailed, run_module

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


# --- the module, against a stand-in ctr ---------------------------------------------------
FAKE_CTR = r'''#!{python}
"""Stand-in for ctr: images list/import on a JSON state file; logs every call."""
import json, os, sys, tarfile
state = os.environ.get("FAKE_CTR_STATE") or {state!r}
args = sys.argv[1:]
with open(state + ".log", "a") as log:
    log.write(json.dumps(args) + "\n")
doc = json.load(open(state)) if os.path.exists(state) else {{"images": {{}}, "down": False}}
if doc.get("down"):
    sys.stderr.write('ctr: failed to dial "x": connection refused\n'); sys.exit(1)
while args and args[0].startswith("--"):
    args = args[2:]
if args[:2] == ["images", "list"]:
    print("REF TYPE DIGEST SIZE PLATFORMS LABELS")
    for ref, digest in doc["images"].items():
        print(f"{{ref}} application/vnd.oci.image.manifest.v1+json {{digest}} 1 KiB linux -")
elif args[:2] == ["images", "import"]:
    with tarfile.open(args[-1]) as tar:
        index = json.load(tar.extractfile("index.json"))
    for desc in index["manifests"]:
        doc["images"][desc["annotations"]["io.containerd.image.name"]] = desc["digest"]
    json.dump(doc, open(state, "w"))
    print("unpacking ... done")
else:
    sys.exit(2)
'''


@pytest.fixture
def fake_ctr(tmp_path):
    state = tmp_path / "ctr-state.json"
    ctr = tmp_path / "ctr"
    ctr.write_text(FAKE_CTR.format(python=sys.executable, state=str(state)))
    ctr.chmod(ctr.stat().st_mode | stat.S_IXUSR)
    socket = tmp_path / "containerd.sock"
    socket.touch()  # the module only checks that the socket path exists

    class Fake:
        path = ctr
        address = socket

        def images(self) -> dict[str, str]:
            return json.loads(state.read_text())["images"] if state.exists() else {}

        def set(self, images: dict[str, str], down: bool = False) -> None:
            state.write_text(json.dumps({"images": images, "down": down}))

        def calls(self) -> list[list[str]]:
            log = Path(str(state) + ".log")
            return (
                [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            )

    return Fake()


def run(params: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    return run_module(containerd_image, params, check_mode=check_mode)


def test_module_imports_then_changes_nothing(tmp_path, fake_ctr):
    pause, pause_digest = make_archive(tmp_path, PAUSE)
    proxy, proxy_digest = make_archive(tmp_path, PROXY, b"proxy")
    params = {
        "path": [str(pause), str(proxy)],
        "ctr": str(fake_ctr.path),
        "address": str(fake_ctr.address),
        "platform": "linux/amd64",
        "snapshotter": "overlayfs",
        "wait_timeout": 0,
    }
    first = run(params)
    assert first["changed"] and first["imported"] == [PAUSE, PROXY] and first["present"] == []
    assert fake_ctr.images() == {PAUSE: pause_digest, PROXY: proxy_digest}
    imports = [c for c in fake_ctr.calls() if "import" in c]
    assert imports[0][:4] == ["--address", str(fake_ctr.address), "--namespace", "k8s.io"]
    assert imports[0][4:] == [
        "images",
        "import",
        "--platform",
        "linux/amd64",
        "--snapshotter",
        "overlayfs",
        str(pause),
    ]
    second = run(params)
    assert (
        not second["changed"] and second["imported"] == [] and second["present"] == [PAUSE, PROXY]
    )
    assert len([c for c in fake_ctr.calls() if "import" in c]) == 2


def test_module_check_mode_reports_and_imports_nothing(tmp_path, fake_ctr):
    pause, digest = make_archive(tmp_path, PAUSE)
    proxy, _ = make_archive(tmp_path, PROXY, b"proxy")
    fake_ctr.set({PAUSE: digest})
    result = run(
        {
            "path": [str(pause), str(proxy)],
            "ctr": str(fake_ctr.path),
            "address": str(fake_ctr.address),
            "wait_timeout": 0,
        },
        check_mode=True,
    )
    assert result["changed"] and result["imported"] == [PROXY] and result["present"] == [PAUSE]
    assert [a["action"] for a in result["archives"]] == ["none", "import"]
    assert PROXY + " (absent)" in result["diff"]["before"]
    assert not any("import" in c for c in fake_ctr.calls())
    assert fake_ctr.images() == {PAUSE: digest}


def test_module_reimports_when_the_tag_points_elsewhere(tmp_path, fake_ctr):
    pause, digest = make_archive(tmp_path, PAUSE)
    fake_ctr.set({PAUSE: DIGEST_B})
    result = run(
        {
            "path": str(pause),
            "ctr": str(fake_ctr.path),
            "address": str(fake_ctr.address),
            "wait_timeout": 0,
        }
    )
    assert result["changed"] and result["imported"] == [PAUSE]
    assert fake_ctr.images()[PAUSE] == digest


def test_module_fails_clearly_when_containerd_is_down(tmp_path, fake_ctr):
    pause, _ = make_archive(tmp_path, PAUSE)
    fake_ctr.set({}, down=True)
    with pytest.raises(ModuleFailed, match=r"containerd does not answer on .*is it running"):
        run(
            {
                "path": [str(pause)],
                "ctr": str(fake_ctr.path),
                "address": str(fake_ctr.address),
                "wait_timeout": 0,
            }
        )


def test_module_fails_clearly_when_the_socket_is_absent(tmp_path, fake_ctr):
    pause, _ = make_archive(tmp_path, PAUSE)
    with pytest.raises(ModuleFailed, match=r"socket .* does not exist; is it running"):
        run(
            {
                "path": [str(pause)],
                "ctr": str(fake_ctr.path),
                "address": str(tmp_path / "none.sock"),
                "wait_timeout": 1,
            }
        )


def test_module_names_a_missing_archive_before_calling_ctr(tmp_path, fake_ctr):
    with pytest.raises(ModuleFailed, match=r"absent.oci.tar: no such file"):
        run(
            {
                "path": [str(tmp_path / "absent.oci.tar")],
                "ctr": str(fake_ctr.path),
                "address": str(fake_ctr.address),
                "wait_timeout": 0,
            }
        )
    assert fake_ctr.calls() == []
