"""Upstream alerting rules for the monitoring stack, rendered from their jsonnet mixins.

The node_exporter, etcd, Prometheus, Alertmanager and kube-state-metrics projects keep
their alerts as jsonnet mixins inside their Go modules. At bundle build time (both
profiles) each module's zip is fetched from the Go module proxy (GOPROXY's first URL,
default https://proxy.golang.org), checked against the `h1:` sum pinned here (the go.sum
hash; what `go mod download` verifies), and the mixin's alert and recording-rule files
are evaluated with the `jsonnet` library into one Prometheus rule file per mixin. Only
config, alerts and rules are imported: the dashboards need grafonnet, which is not in the
modules. The rule files go into the bundle as one artifact, `monitoring-rules-upstream`
(a .tar.gz, roles [monitoring]); airlock's own rules are in roles/monitoring/files/rules.

etcd: the root module go.etcd.io/etcd/v3 is served for v3.6.14, not for v3.7.3; its
mixin's metrics (etcd_server_*, etcd_disk_*, grpc_*) are the same in 3.7.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from airlock.errors import AirlockError

ARTIFACT = "monitoring-rules-upstream"


@dataclass(frozen=True)
class Mixin:
    """A mixin in a Go module: which files to import and what to merge into its _config."""

    name: str
    module: str
    version: str
    h1: str
    subdir: str
    imports: tuple[str, ...]
    config: str = "{}"
    # Alerts left out because airlock's own rules (roles/monitoring/files/rules) cover them.
    exclude: tuple[str, ...] = ()


MIXINS = (
    Mixin(
        "node",
        "github.com/prometheus/node_exporter",
        "v1.12.1",
        "h1:LzcZ6SqJRH2EULBz3Paa1t1uzQaaoo9domuz8FQDkiY=",
        "docs/node-mixin",
        ("config.libsonnet", "alerts/alerts.libsonnet", "rules/rules.libsonnet"),
        exclude=("NodeFilesystemAlmostOutOfSpace", "NodeMemoryHighUtilization"),
    ),
    Mixin(
        "etcd",
        "go.etcd.io/etcd/v3",
        "v3.6.14",
        "h1:yCMt9bw0ZjY9kTGNcWa/tHxBOawTQ0YdvNWonXerRT4=",
        "contrib/mixin",
        ("config.libsonnet", "alerts/alerts.libsonnet"),
        "{etcd_selector: 'job=\"etcd\"'}",
        exclude=(
            "etcdMembersDown",
            "etcdInsufficientMembers",
            "etcdNoLeader",
            "etcdHighFsyncDurations",
            "etcdDatabaseQuotaLowSpace",
        ),
    ),
    Mixin(
        "prometheus",
        "github.com/prometheus/prometheus",
        "v0.315.1",
        "h1:ZXaNKyUO5szJhhw7gKiP6b2jpx1QkS0S3CI1R1bPqIA=",
        "documentation/prometheus-mixin",
        ("config.libsonnet", "alerts.libsonnet"),
    ),
    Mixin(
        "alertmanager",
        "github.com/prometheus/alertmanager",
        "v0.31.1",
        "h1:eAmIC42lzbWslHkMt693T36qdxfyZULswiHr681YS3Q=",
        "doc/alertmanager-mixin",
        ("config.libsonnet", "alerts.libsonnet"),
    ),
    Mixin(
        "kube-state-metrics",
        "k8s.io/kube-state-metrics/v2",
        "v2.20.0",
        "h1:edO7hyGs1MqZhbUbzWW1YRTV3afZOIbvHNvOCaJjuU4=",
        "jsonnet/kube-state-metrics-mixin",
        ("config.libsonnet", "alerts.libsonnet"),
    ),
)


def version_key(mixins: Sequence[Mixin] = MIXINS) -> str:
    """A short version for the artifact: changes with any mixin's module version."""
    text = " ".join(f"{m.module}@{m.version}:{m.config}:{m.exclude}" for m in mixins)
    return "mixins-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def render_bundle_file(cache: Path, mixins: Sequence[Mixin] = MIXINS) -> Path:
    """The rules artifact (a reproducible .tar.gz), rendered once per version_key."""
    out = cache / f"{ARTIFACT}-{version_key(mixins)}.tar.gz"
    if out.is_file():
        return out
    files = {f"{m.name}.rules.yml": render(m, cache) for m in mixins}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out


def render(mixin: Mixin, cache: Path) -> str:
    """One Prometheus rule file (YAML) from `mixin`'s alerts and recording rules."""
    import _jsonnet

    root = _extract(mixin, _module_zip(mixin, cache), cache)
    parts = " + ".join(f"(import '{f}')" for f in mixin.imports)
    snippet = (
        f"local m = {parts} + {{_config+:: {mixin.config}}};\n"
        "{groups: (if std.objectHasAll(m, 'prometheusRules') then m.prometheusRules.groups"
        " else []) + m.prometheusAlerts.groups}"
    )
    try:
        doc = json.loads(_jsonnet.evaluate_snippet(mixin.name, snippet, jpathdir=[str(root)]))
    except RuntimeError as exc:
        raise AirlockError(
            f"{mixin.module}@{mixin.version} {mixin.subdir}: the mixin does not evaluate "
            f"({str(exc).splitlines()[0]}); check its imports in airlock/bundle/build/mixins.py"
        ) from exc
    for group in doc["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") not in mixin.exclude]
    header = (
        f"# Rendered by airlock from {mixin.module}@{mixin.version} {mixin.subdir}\n"
        f"# ({', '.join(mixin.imports)}; _config+: {mixin.config}). Do not edit.\n"
        + (
            f"# Left out (airlock's own rules cover them): {', '.join(mixin.exclude)}.\n"
            if mixin.exclude
            else ""
        )
    )
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, descriptions) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _module_zip(mixin: Mixin, cache: Path) -> Path:
    """The module's zip from the proxy (cached), verified against its pinned h1 sum."""
    path = cache / "modules" / f"{mixin.module.replace('/', '_')}@{mixin.version}.zip"
    if path.is_file() and hash1_zip(path) == mixin.h1:
        return path
    proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].split("|")[0]
    if proxy in ("direct", "off", ""):
        proxy = "https://proxy.golang.org"
    url = f"{proxy.rstrip('/')}/{_escape(mixin.module)}/@v/{mixin.version}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, tmp.open("wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise AirlockError(
            f"{url}: cannot fetch the {mixin.name} mixin's module ({exc}); the Go module "
            "proxy (GOPROXY) must be reachable from the machine that builds the bundle"
        ) from exc
    got = hash1_zip(tmp)
    if got != mixin.h1:
        tmp.unlink()
        raise AirlockError(
            f"{url}: module sum {got} is not the pinned {mixin.h1}; the proxy served "
            "different content: nothing was rendered (check GOPROXY)"
        )
    os.replace(tmp, path)
    return path


def hash1_zip(path: Path) -> str:
    """Go's dirhash.Hash1 of a module zip: the `h1:` sum go.sum records."""
    lines = []
    with zipfile.ZipFile(path) as zf:
        for name in sorted(zf.namelist()):
            if name.endswith("/"):
                continue
            lines.append(f"{hashlib.sha256(zf.read(name)).hexdigest()}  {name}\n")
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()


def _extract(mixin: Mixin, archive: Path, cache: Path) -> Path:
    """The mixin's directory, unpacked once per module version."""
    prefix = f"{mixin.module}@{mixin.version}/{mixin.subdir}/"
    root = cache / "src" / f"{mixin.module.replace('/', '_')}@{mixin.version}"
    if (root / ".done").is_file():
        return root
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            rel = name[len(prefix) :]
            if rel.startswith("/") or ".." in rel.split("/"):
                continue
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(name))
    (root / ".done").write_text("ok\n")
    return root


def _escape(module: str) -> str:
    """The proxy's case encoding: an upper-case letter becomes '!' and its lower case."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)
