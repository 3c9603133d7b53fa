"""The kubeadm modules' decisions and documents, as tables of cases.

The real kubeadm runs in `make e2e` (init, token, join on the lab cluster, plus
`kubeadm config validate` on these documents); here are the parts that decide what to
run, checked without a cluster.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.airlock.cluster.plugins.module_utils import kubeadm as ku
from ansible_collections.airlock.cluster.plugins.modules import (
    kubeadm_init,
    kubeadm_join,
    kubeadm_token,
)

from tests.kubeadm_samples import CERTIFICATE_KEY, INIT, JOIN
from tests.module_harness import ModuleFailed, run_module

NOW = datetime.datetime(2026, 11, 25, 8, 0, tzinfo=datetime.timezone.utc)  # noqa: UP017
# `kubeadm token list -o json` of kubeadm v1.34.4, as printed on a lab cluster.
TOKEN_LIST = """
{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "3wd341.z8xoxuc28x59fsbk",
    "description": "airlock join",
    "expires": "2026-11-25T08:59:19Z",
    "usages": ["authentication", "signing"],
    "groups": ["system:bootstrappers:kubeadm:default-node-token"]
}
{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "b44frt.4z9r8rxctxvjes0b",
    "expires": "2026-11-26T06:53:20Z",
    "usages": ["authentication", "signing"],
    "groups": ["system:bootstrappers:kubeadm:default-node-token"]
}
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("2h0m5s", 7205)],
)
def test_durations_in_kubeadm_syntax(text: str, seconds: int) -> None:
    assert ku.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1d", "h", "10", "-1h", "1h 30m"])
def test_bad_durations_are_named(text: str) -> None:
    with pytest.raises(ku.KubeadmConfigError, match="duration"):
        ku.parse_duration(text)


def test_token_list_is_one_object_per_token() -> None:
    tokens = ku.parse_token_list(TOKEN_LIST)
    assert [t["token"][:6] for t in tokens] == ["3wd341", "b44frt"]
    assert ku.parse_token_list("") == []


def _token(desc: str, expires: str | None, usages: tuple[str, ...] = ("authentication",)) -> dict:
    token: dict[str, Any] = {"token": f"{desc[:6]:a<6}.0123456789abcdef", "usages": list(usages)}
    token["description"] = desc
    if expires:
        token["expires"] = expires
    return token


@pytest.mark.parametrize(
    ("tokens", "min_valid", "expected"),
    [
        # ours, valid for 59 more minutes: reused
        ([_token("airlock join", "2026-11-25T08:59:00Z")], 900, "airlock join"),
        # ours but expiring within min_valid: not reused
        ([_token("airlock join", "2026-11-25T08:10:00Z")], 900, None),
        # somebody else's token is never taken
        ([_token("ci join", "2026-11-26T08:00:00Z")], 900, None),
        # a token that cannot authenticate is useless for joins
        ([_token("airlock join", "2026-11-26T08:00:00Z", ("signing",))], 900, None),
        # no expiry: valid forever
        ([_token("airlock join", None)], 900, "airlock join"),
    ],
)
def test_which_token_is_reused(tokens: list[dict], min_valid: int, expected: str | None) -> None:
    found = ku.reusable_token(tokens, "airlock join", min_valid, NOW)
    assert (found or {}).get("description") == expected


def test_the_longest_lived_token_is_reused() -> None:
    short = _token("airlock join", "2026-11-25T08:30:00Z")
    long = dict(_token("airlock join", "2026-11-25T08:50:00Z"), token="zzzzzz.0123456789abcdef")
    assert ku.reusable_token([short, long], "airlock join", 60, NOW) is long


def test_worker_join_pins_the_ca_and_never_pulls() -> None:
    doc = ku.join_configuration(JOIN)
    discovery = doc["discovery"]["bootstrapToken"]
    assert discovery["caCertHashes"] == [JOIN["ca_cert_hash"]]
    assert discovery["apiServerEndpoint"] == "10.0.0.250:8443"
    assert doc["nodeRegistration"]["imagePullPolicy"] == "Never"
    assert doc["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.0.21"}
    ]
    assert "controlPlane" not in doc


def test_control_plane_join_needs_the_certificate_key() -> None:
    with pytest.raises(ku.KubeadmConfigError, match="certificate_key"):
        ku.join_configuration(dict(JOIN, control_plane=True))
    doc = ku.join_configuration(
        dict(JOIN, control_plane=True, certificate_key=CERTIFICATE_KEY, apiserver_port=6443)
    )
    assert doc["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.21", "bindPort": 6443},
        "certificateKey": CERTIFICATE_KEY,
    }


@pytest.mark.parametrize("missing", ["token", "ca_cert_hash", "api_server_endpoint"])
def test_join_without_a_required_value_names_it(missing: str) -> None:
    with pytest.raises(ku.KubeadmConfigError, match=missing):
        ku.join_configuration({k: v for k, v in JOIN.items() if k != missing})


def test_rendered_init_config_is_yaml_with_every_document() -> None:
    text = ku.render(ku.init_documents(dict(INIT, conntrack_max_per_core=0)))
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == [
        "InitConfiguration",
        "ClusterConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    ]
    assert docs[0]["bootstrapTokens"] == [{"description": "airlock join", "ttl": "1h"}]
    assert docs[1]["kubernetesVersion"] == "v1.37.2"
    assert docs[3]["conntrack"] == {"maxPerCore": 0}
    default_proxy = ku.kube_proxy_configuration(INIT)
    assert "conntrack" not in default_proxy


@pytest.mark.parametrize(("unified", "version"), [(True, 2), (False, 1)])
def test_cgroup_version_is_read_from_the_host(tmp_path: Path, unified: bool, version: int) -> None:
    if unified:
        (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    assert ku.cgroup_version(str(tmp_path)) == version


# --- the modules' decisions ------------------------------------------------------------
@pytest.fixture
def kube_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the modules' /etc/kubernetes at an empty directory."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "pki").mkdir()
    files = {
        "DONE_FILES": (str(tmp_path / "admin.conf"), str(tmp_path / "kubelet.conf")),
        "PARTIAL_FILES": (
            str(tmp_path / "admin.conf"),
            str(tmp_path / "kubelet.conf"),
            str(tmp_path / "manifests" / "kube-apiserver.yaml"),
        ),
        "CA_CERT": str(tmp_path / "pki" / "ca.crt"),
    }
    for name, value in files.items():
        monkeypatch.setattr(kubeadm_init, name, value)
    monkeypatch.setattr(kubeadm_join, "KUBELET_CONF", str(tmp_path / "kubelet.conf"))
    monkeypatch.setattr(
        kubeadm_join, "APISERVER_MANIFEST", str(tmp_path / "manifests" / "kube-apiserver.yaml")
    )
    return tmp_path


@pytest.mark.parametrize(
    ("present", "state"),
    [
        ((), "fresh"),
        (("admin.conf", "kubelet.conf"), "done"),
        (("manifests/kube-apiserver.yaml",), "partial"),
        (("admin.conf",), "partial"),
    ],
)
def test_init_state(kube_dir: Path, present: tuple[str, ...], state: str) -> None:
    for name in present:
        (kube_dir / name).write_text("x")
    assert kubeadm_init.init_state() == state


def test_init_in_check_mode_reports_the_init_and_runs_nothing(kube_dir: Path) -> None:
    result = run_module(kubeadm_init, dict(INIT, kubeadm="/bin/false"), check_mode=True)
    assert result["changed"] is True
    assert result["initialised"] is False
    assert not (kube_dir / "admin.conf").exists()


def test_a_half_finished_init_fails_with_the_way_out(kube_dir: Path) -> None:
    (kube_dir / "manifests" / "kube-apiserver.yaml").write_text("x")
    with pytest.raises(ModuleFailed, match=r"kubeadm reset -f"):
        run_module(kubeadm_init, dict(INIT, kubeadm="/bin/false"))


def test_an_initialised_host_is_left_alone(kube_dir: Path) -> None:
    for name in ("admin.conf", "kubelet.conf"):
        (kube_dir / name).write_text("x")
    result = run_module(kubeadm_init, dict(INIT, kubeadm="/bin/false"))
    assert result["changed"] is False
    assert result["initialised"] is True


def test_join_in_check_mode_reports_the_join(kube_dir: Path) -> None:
    result = run_module(kubeadm_join, dict(JOIN, kubeadm="/bin/false"), check_mode=True)
    assert result == {"changed": True, "joined": False}


def test_a_worker_asked_to_be_control_plane_fails_clearly(kube_dir: Path) -> None:
    (kube_dir / "kubelet.conf").write_text("x")
    params = dict(JOIN, control_plane=True, certificate_key=CERTIFICATE_KEY, kubeadm="/bin/false")
    with pytest.raises(ModuleFailed, match="joined as a worker"):
        run_module(kubeadm_join, params)


def test_token_ttl_must_outlast_min_valid() -> None:
    with pytest.raises(ModuleFailed, match="must be longer"):
        run_module(kubeadm_token, {"ttl": "10m", "min_valid": "15m", "kubeadm": "/bin/true"})


def test_rendered_documents_are_json_per_document() -> None:
    text = ku.render([{"a": 1}, {"b": 2}])
    assert text.count("---\n") == 2
    assert [json.loads(part) for part in text.split("---\n") if part.strip()] == [
        {"a": 1},
        {"b": 2},
    ]
