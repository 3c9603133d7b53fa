"""module_utils.bundle_paths.safe_join: a MANIFEST.json path never leaves the directory."""

from __future__ import annotations

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.bundle_paths import safe_join

BASE = "/opt/airlock/artifacts"


@pytest.mark.parametrize(
    ("relative", "joined"),
    [
        ("bin/amd64/kubeadm", f"{BASE}/bin/amd64/kubeadm"),
        ("images/amd64/pause_3.10.1.oci.tar", f"{BASE}/images/amd64/pause_3.10.1.oci.tar"),
        (
            "debs/bookworm/conntrack_1.4.7-1+b2_amd64.deb",
            f"{BASE}/debs/bookworm/conntrack_1.4.7-1+b2_amd64.deb",
        ),
        ("a b/c..d", f"{BASE}/a b/c..d"),
        ("..hidden", f"{BASE}/..hidden"),
    ],
)
def test_paths_below_the_directory_are_joined(relative, joined):
    assert safe_join(BASE, relative) == joined
    assert safe_join(BASE + "/", relative) == joined


@pytest.mark.parametrize(
    ("relative", "words"),
    [
        ("../etc/passwd", "leaves the directory"),
        ("bin/../../etc/passwd", "leaves the directory"),
        ("..", "leaves the directory"),
        ("/etc/passwd", "absolute"),
        ("//etc/passwd", "absolute"),
        ("", "empty"),
        (None, "not a string"),
        (["bin"], "not a string"),
        ("./bin/kubeadm", "not a plain relative path"),
        ("bin//kubeadm", "not a plain relative path"),
        ("bin/", "not a plain relative path"),
        (".", "not a plain relative path"),
        ("bin\\..\\..\\etc", "backslash"),
        ("bin/kube\nadm", "control character"),
        ("bin/kube\x00adm", "control character"),
    ],
)
def test_paths_that_would_leave_are_refused(relative, words):
    with pytest.raises(ValueError, match=words) as refused:
        safe_join(BASE, relative)
    assert repr(relative) in str(refused.value)
    assert "airlock bundle verify" in str(refused.value)


def test_relative_base_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert safe_join("artifacts", "bin/x") == str(tmp_path / "artifacts" / "bin" / "x")
