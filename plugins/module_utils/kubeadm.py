"""Shared code of airlock's kubeadm modules: configuration documents and discovery hashes.

Pure Python and standard library only: it runs on the managed hosts, whose Python may
not have `cryptography`. The discovery hash is what `kubeadm join
--discovery-token-ca-cert-hash` expects: "sha256:" + the SHA-256 of the DER-encoded
SubjectPublicKeyInfo of the cluster CA certificate (RFC 7469 style pinning).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
from typing import Any

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"
PEM_CERT_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


class KubeadmConfigError(ValueError):
    """A value the configuration cannot be built from; the message names it."""


# ---------------------------------------------------------------------------------------
# DER: just enough of ASN.1 to find a certificate's SubjectPublicKeyInfo


def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of element) of the DER element at `offset`."""
    if offset + 2 > len(data):
        raise KubeadmConfigError("certificate is truncated (DER element header)")
    tag = data[offset]
    length = data[offset + 1]
    pos = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise KubeadmConfigError("certificate has an invalid DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise KubeadmConfigError("certificate is truncated (DER content)")
    return tag, pos, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, content start, element end) of each element in a SEQUENCE."""
    out = []
    pos = start
    while pos < end:
        tag, content, elem_end = _der_element(data, pos)
        out.append((tag, pos, content, elem_end))
        pos = elem_end
    return out


def subject_public_key_info(der: bytes) -> bytes:
    """The DER bytes of a certificate's SubjectPublicKeyInfo."""
    tag, content, end = _der_element(der, 0)
    if tag != 0x30:
        raise KubeadmConfigError("not a DER certificate (no outer SEQUENCE)")
    tbs_tag, _, tbs_content, tbs_end = _children(der, content, end)[0]
    if tbs_tag != 0x30:
        raise KubeadmConfigError("not a DER certificate (no TBSCertificate)")
    fields = _children(der, tbs_content, tbs_end)
    if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    if len(fields) < 6 or fields[5][0] != 0x30:
        raise KubeadmConfigError("certificate has no SubjectPublicKeyInfo")
    _, spki_start, _, spki_end = fields[5]
    return der[spki_start:spki_end]


def pem_to_der(pem: bytes | str) -> bytes:
    raw = pem.encode() if isinstance(pem, str) else pem
    match = PEM_CERT_RE.search(raw)
    if match is None:
        raise KubeadmConfigError("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
    return base64.b64decode(b"".join(match.group(1).split()))


def ca_cert_hash(pem: bytes | str) -> str:
    """`sha256:<hex>` of the CA certificate's public key, as kubeadm join expects."""
    return "sha256:" + hashlib.sha256(subject_public_key_info(pem_to_der(pem))).hexdigest()


# ---------------------------------------------------------------------------------------
# Configuration documents


def _require(params: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if params.get(n) in (None, "", [])]
    if missing:
        raise KubeadmConfigError(f"missing required value(s): {', '.join(missing)}")


def init_configuration(params: dict[str, Any]) -> dict[str, Any]:
    """InitConfiguration for the first control-plane host."""
    _require(params, "node_name", "advertise_address")
    doc: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {
            "advertiseAddress": params["advertise_address"],
            "bindPort": int(params.get("apiserver_port", 6443)),
        },
        "nodeRegistration": _node_registration(params),
        "skipPhases": ["addon/kube-proxy"] if params.get("skip_kube_proxy") else [],
        # kubeadm makes a 24h token with no description unless told; this one is found
        # and reused by kubeadm_token and deleted once every node has joined.
        "bootstrapTokens": [
            {
                "description": params.get("token_description", "airlock join"),
                "ttl": params.get("token_ttl", "1h"),
            }
        ],
    }
    if params.get("certificate_key"):
        doc["certificateKey"] = params["certificate_key"]
    if not doc["skipPhases"]:
        del doc["skipPhases"]
    return doc


def _node_registration(params: dict[str, Any]) -> dict[str, Any]:
    reg: dict[str, Any] = {
        "name": params["node_name"],
        "criSocket": params.get("cri_socket", "unix:///run/containerd/containerd.sock"),
        "imagePullPolicy": "Never" if params.get("offline", True) else "IfNotPresent",
        "kubeletExtraArgs": [{"name": "node-ip", "value": params["advertise_address"]}],
    }
    ignores = preflight_ignores(params)
    if ignores:
        reg["ignorePreflightErrors"] = ignores
    return reg


def preflight_ignores(params: dict[str, Any]) -> list[str]:
    """The preflight checks kubeadm skips: the user's, plus SystemVerification on a
    cgroup v1 host (params["cgroup_version"] == 1).

    From Kubernetes 1.35 (every release airlock supports) cgroup v1 is deprecated
    upstream: the kubelet starts there only with failCgroupV1: false, which
    kubelet_configuration sets, and kubeadm's SystemVerification fails on it.
    """
    ignores = [str(check) for check in params.get("ignore_preflight_errors") or []]
    known = {check.lower() for check in ignores}
    if params.get("cgroup_version") == 1 and not known & {"systemverification", "all"}:
        ignores.append("SystemVerification")
    return ignores


def cluster_configuration(params: dict[str, Any]) -> dict[str, Any]:
    """ClusterConfiguration: external etcd, the VIP endpoint, networks, image repository."""
    _require(
        params,
        "kubernetes_version",
        "control_plane_endpoint",
        "etcd_endpoints",
        "etcd_ca_file",
        "etcd_cert_file",
        "etcd_key_file",
        "pod_subnet",
        "service_subnet",
    )
    sans = sorted({str(s) for s in params.get("cert_sans") or []})
    api_server: dict[str, Any] = {"certSANs": sans} if sans else {}
    if params.get("serving_cert_dir"):
        # The kubelets serve certificates of the cluster CA (airlock installs them): the
        # apiserver verifies them for logs, exec and port-forward.
        ca_file = f"{params.get('certificates_dir', '/etc/kubernetes/pki')}/ca.crt"
        api_server["extraArgs"] = [{"name": "kubelet-certificate-authority", "value": ca_file}]
    return {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": params.get("cluster_name", "kubernetes"),
        "kubernetesVersion": "v" + str(params["kubernetes_version"]).lstrip("v"),
        "controlPlaneEndpoint": params["control_plane_endpoint"],
        "imageRepository": params.get("image_repository", "registry.k8s.io"),
        "certificatesDir": params.get("certificates_dir", "/etc/kubernetes/pki"),
        "apiServer": api_server,
        "controllerManager": _component(params, "kube-controller-manager"),
        "scheduler": _component(params, "kube-scheduler"),
        "etcd": {
            "external": {
                "endpoints": list(params["etcd_endpoints"]),
                "caFile": params["etcd_ca_file"],
                "certFile": params["etcd_cert_file"],
                "keyFile": params["etcd_key_file"],
            }
        },
        "networking": {
            "podSubnet": params["pod_subnet"],
            "serviceSubnet": params["service_subnet"],
            "dnsDomain": params.get("dns_domain", "cluster.local"),
        },
    }


def _component(params: dict[str, Any], name: str) -> dict[str, Any]:
    """controllerManager or scheduler: the address it binds and, with serving_cert_dir,
    the serving certificate it presents (serving_cert_dir/NAME/tls.crt and tls.key)
    instead of one it makes in memory, so that a client can verify it.

    The directory is mounted read-only, not the two files: a file replaced by a rename
    (a renewal) stays the old one inside a file mount, and both components reload their
    serving certificate when its files change.
    """
    args = [{"name": "bind-address", "value": params.get("metrics_bind_address") or "127.0.0.1"}]
    section: dict[str, Any] = {"extraArgs": args}
    if params.get("serving_cert_dir"):
        directory = f"{params['serving_cert_dir']}/{name}"
        args += [
            {"name": "tls-cert-file", "value": f"{directory}/tls.crt"},
            {"name": "tls-private-key-file", "value": f"{directory}/tls.key"},
        ]
        section["extraVolumes"] = [
            {
                "name": "airlock-serving-cert",
                "hostPath": directory,
                "mountPath": directory,
                "readOnly": True,
                "pathType": "Directory",
            }
        ]
    return section


def kubelet_configuration(params: dict[str, Any]) -> dict[str, Any]:
    """KubeletConfiguration: systemd cgroups; on cgroup v1 hosts, failCgroupV1 off.

    From Kubernetes 1.35 the kubelet refuses cgroup v1 unless failCgroupV1 is false
    (KEP-5573); setting it explicitly keeps older releases unchanged.
    """
    doc: dict[str, Any] = {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "cgroupDriver": params.get("cgroup_driver", "systemd"),
        "failSwapOn": bool(params.get("fail_swap_on", True)),
    }
    if params.get("cgroup_version") == 1:
        doc["failCgroupV1"] = False
    return doc


def kube_proxy_configuration(params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("proxy_mode", "iptables")
    if mode not in ("iptables", "ipvs", "nftables"):
        raise KubeadmConfigError(f"proxy_mode {mode!r}: use iptables, ipvs or nftables")
    doc: dict[str, Any] = {
        "apiVersion": KUBE_PROXY_API,
        "kind": "KubeProxyConfiguration",
        "mode": mode,
        "clusterCIDR": params.get("pod_subnet", ""),
        # /metrics is plain HTTP (kube-proxy has no TLS there): 127.0.0.1 unless a
        # monitoring host scrapes it.
        "metricsBindAddress": f"{params.get('metrics_bind_address') or '127.0.0.1'}:10249",
    }
    if params.get("conntrack_max_per_core") is not None:
        # 0 leaves nf_conntrack_max alone (it is read-only inside a container's netns).
        doc["conntrack"] = {"maxPerCore": int(params["conntrack_max_per_core"])}
    return doc


def init_documents(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every document of `kubeadm init --config`, in kubeadm's order."""
    return [
        init_configuration(params),
        cluster_configuration(params),
        kubelet_configuration(params),
        kube_proxy_configuration(params),
    ]


def join_configuration(params: dict[str, Any]) -> dict[str, Any]:
    """JoinConfiguration for a worker or, with control_plane, another control-plane host."""
    _require(params, "node_name", "advertise_address", "api_server_endpoint", "token")
    _require(params, "ca_cert_hash")
    doc: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": params["api_server_endpoint"],
                "token": params["token"],
                "caCertHashes": [params["ca_cert_hash"]],
            }
        },
        "nodeRegistration": _node_registration(params),
    }
    if params.get("control_plane"):
        _require(params, "certificate_key")
        doc["controlPlane"] = {
            "localAPIEndpoint": {
                "advertiseAddress": params["advertise_address"],
                "bindPort": int(params.get("apiserver_port", 6443)),
            },
            "certificateKey": params["certificate_key"],
        }
    return doc


def render(documents: list[dict[str, Any]]) -> str:
    """A multi-document kubeadm config. JSON is YAML, and needs no PyYAML on the host."""
    return "".join("---\n" + json.dumps(doc, indent=2, sort_keys=True) + "\n" for doc in documents)


def new_certificate_key() -> str:
    """A key for `kubeadm init phase upload-certs` (32 random bytes, hex, as kubeadm makes)."""
    return secrets.token_hex(32)


def cgroup_version(root: str = "/sys/fs/cgroup") -> int:
    """2 on a unified (cgroup v2) host, else 1; as `stat -fc %T /sys/fs/cgroup` tells."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


# ---------------------------------------------------------------------------------------
# Bootstrap tokens

TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in a Go-style duration such as 1h, 30m, 1h30m or 90s (kubeadm's --ttl)."""
    match = DURATION_RE.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise KubeadmConfigError(f"duration {text!r}: use e.g. 1h, 30m or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_token_list(output: str) -> list[dict[str, Any]]:
    """`kubeadm token list -o json` prints one JSON object per token, not a list."""
    decoder = json.JSONDecoder()
    tokens: list[dict[str, Any]] = []
    pos = 0
    text = output.strip()
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        tokens.append(doc)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _expires(token: dict[str, Any]) -> datetime.datetime | None:
    raw = token.get("expires")
    if not raw:
        return None  # a token without TTL never expires
    return datetime.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))


def reusable_token(
    tokens: list[dict[str, Any]], description: str, min_valid_s: int, now: datetime.datetime
) -> dict[str, Any] | None:
    """The token with this description that stays valid longest, if it lasts min_valid_s."""
    best: dict[str, Any] | None = None
    best_left = -1.0
    for token in tokens:
        if token.get("description") != description:
            continue
        if "authentication" not in (token.get("usages") or []):
            continue
        expires = _expires(token)
        left = float("inf") if expires is None else (expires - now).total_seconds()
        if left >= min_valid_s and left > best_left:
            best, best_left = token, left
    return best
