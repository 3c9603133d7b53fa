"""Rendering upstream alert mixins: pinned module sums, exclusions, one file per mixin.

A fake Go module proxy (GOPROXY=file://...) serves a tiny module with a jsonnet mixin;
the real proxy is exercised by tests/integration/monitoring, where the pinned sums (what
Go's go.sum records) must match this module's hash1_zip.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from airlock.bundle.build import mixins
from airlock.errors import AirlockError

MODULE = "example.com/Mixed/exporter"
VERSION = "v1.2.3"
ALERTS = """{
  prometheusAlerts+:: {
    groups+: [{
      name: 'example',
      rules: [
        {alert: 'ExampleDown', expr: 'up{%(selector)s} == 0' % $._config, 'for': '5m',
         labels: {severity: 'critical'}, annotations: {summary: 'Down.'}},
        {alert: 'ExampleReplaced', expr: 'vector(1)', labels: {severity: 'warning'},
         annotations: {summary: 'Ours covers it.'}},
      ],
    }],
  },
}
"""


def _proxy(tmp_path: Path, alerts: str = ALERTS) -> Path:
    """A file:// proxy with MODULE@VERSION (upper case escaped as the real proxy does)."""
    proxy = tmp_path / "proxy"
    where = proxy / "example.com" / "!mixed" / "exporter" / "@v"
    where.mkdir(parents=True)
    prefix = f"{MODULE}@{VERSION}/mixin/"
    with zipfile.ZipFile(where / f"{VERSION}.zip", "w") as zf:
        zf.writestr(f"{MODULE}@{VERSION}/go.mod", f"module {MODULE}\n")
        zf.writestr(prefix + "config.libsonnet", "{_config+:: {selector: 'job=\"x\"'}}")
        zf.writestr(prefix + "alerts.libsonnet", alerts)
    return proxy


def _mixin(h1: str) -> mixins.Mixin:
    return mixins.Mixin(
        "example",
        MODULE,
        VERSION,
        h1,
        "mixin",
        ("config.libsonnet", "alerts.libsonnet"),
        "{selector: 'job=\"example\"'}",
        exclude=("ExampleReplaced",),
    )


def test_renders_with_config_and_without_excluded_alerts(tmp_path, monkeypatch):
    proxy = _proxy(tmp_path)
    monkeypatch.setenv("GOPROXY", proxy.as_uri())
    zip_path = proxy / "example.com" / "!mixed" / "exporter" / "@v" / f"{VERSION}.zip"
    mixin = _mixin(mixins.hash1_zip(zip_path))
    out = mixins.render_bundle_file(tmp_path / "cache", [mixin])
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["example.rules.yml"]
        text = tar.extractfile("example.rules.yml").read().decode()
    doc = yaml.safe_load(text)
    rules = doc["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == ["ExampleDown"]
    assert rules[0]["expr"] == 'up{job="example"} == 0'  # airlock's _config wins
    assert text.startswith(f"# Rendered by airlock from {MODULE}@{VERSION} mixin")
    assert "Left out (airlock's own rules cover them): ExampleReplaced" in text
    # Rendered once per version key: a second call reuses the file.
    assert mixins.render_bundle_file(tmp_path / "cache", [mixin]) == out


def test_a_module_that_does_not_match_its_pinned_sum_is_refused(tmp_path, monkeypatch):
    proxy = _proxy(tmp_path)
    monkeypatch.setenv("GOPROXY", f"{proxy.as_uri()},direct")
    pinned = mixins.hash1_zip(
        proxy / "example.com" / "!mixed" / "exporter" / "@v" / f"{VERSION}.zip"
    )
    tampered = _proxy(tmp_path / "other", ALERTS.replace("5m", "1h"))
    monkeypatch.setenv("GOPROXY", tampered.as_uri())
    with pytest.raises(AirlockError, match=r"module sum h1:.* is not the pinned h1:"):
        mixins.render_bundle_file(tmp_path / "cache", [_mixin(pinned)])
    assert not list((tmp_path / "cache").glob("*.tar.gz")), "nothing rendered"


def test_an_unreachable_proxy_says_what_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("GOPROXY", (tmp_path / "nowhere").as_uri())
    with pytest.raises(AirlockError, match=r"Go module proxy \(GOPROXY\) must be reachable"):
        mixins.render_bundle_file(tmp_path / "cache", [_mixin("h1:x")])


def test_the_pinned_mixins_cover_the_stack():
    names = {m.name for m in mixins.MIXINS}
    assert names == {"node", "etcd", "prometheus", "alertmanager", "kube-state-metrics"}
    for m in mixins.MIXINS:
        assert m.h1.startswith("h1:") and m.h1.endswith("="), m.name
