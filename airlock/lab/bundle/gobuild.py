"""Build Go programs from their Go modules (the Go module proxy is all the lab can reach).

Each target is built in a small wrapper module of its own under
`<cache>/gomod/<slug>-<version>`: `require M V`, plus one `replace` for every local
(`=> ./dir`) replace of M's own go.mod, pointed at the published module of the same
path. That is what `k8s.io/kubernetes` needs for its `k8s.io/*` staging modules (its
go.mod requires them at v0.0.0; the published tags are v0.MINOR.PATCH for Kubernetes
v1.MINOR.PATCH), and what etcd needs for its api/client/server modules.

A target with `in_module` is built the way its project builds it: inside a writable copy
of its own module (`<cache>/gomod/<slug>-<version>/src`), so the module's go.mod, with its
replaces and excludes, is the main module. Its `prepare` step (if any: Prometheus' web UI,
airlock.lab.bundle.webui) runs once on that copy before the first build that needs it.

A `test_binary` target is compiled with `go test -c` (Kubernetes' e2e.test, for the
conformance run: airlock.lab.conformance).

Builds are static (CGO_ENABLED=0), niced, one package at a time (`-p 1`, GOMAXPROCS=1):
the build machine is shared. Outputs are cached under `<cache>/bin/<arch>/<version>/`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from airlock.errors import AirlockError, CommandError

_LOCAL_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./\S+\s*$")
_REQUIRE = re.compile(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$")


@dataclass(frozen=True)
class GoTarget:
    """One program: its module and version, its main package, how to stamp its version."""

    name: str
    module: str
    version: str
    package: str
    slug: str
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=())
    # Build inside a copy of the module (package relative to it, e.g. "./cmd/prometheus").
    in_module: bool = False
    # Run once on that copy before building (src dir, cache dir); named for its marker file.
    prepare: tuple[str, Callable[[Path, Path], None]] | None = None
    # A test binary (`go test -c`: the package's tests, e.g. Kubernetes' e2e.test).
    test_binary: bool = False


def kube_ldflags(version: str) -> tuple[str, ...]:
    """What `hack/lib/version.sh` stamps: kubeadm picks image tags from gitVersion."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


def output_path(cache: Path, target: GoTarget, arch: str) -> Path:
    return cache / "bin" / arch / target.version / target.name


def build(target: GoTarget, arch: str, cache: Path, log: Path | None = None) -> Path:
    """Build (or reuse) `target` for `arch`; returns the binary's path."""
    out = output_path(cache, target, arch)
    if out.is_file():
        return out
    moddir = cache / "gomod" / f"{target.slug}-{target.version}"
    if target.in_module:
        moddir = prepare_source(cache, target)
    else:
        _prepare_module(moddir, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOOS": "linux",
        "GOARCH": arch,
        "GOMAXPROCS": "1",
        "GOFLAGS": "-mod=mod",
        "GOWORK": "off",
        "LC_ALL": "C",
        **dict(target.env),
    }
    cmd = [
        "nice",
        "-n",
        "19",
        "go",
        *(("test", "-c") if target.test_binary else ("build",)),
        "-p",
        "1",
        "-trimpath",
        "-ldflags",
        " ".join(("-s", "-w", *target.ldflags)),
        "-o",
        f"{out}.tmp",
    ]
    if target.tags:
        cmd += ["-tags", ",".join(target.tags)]
    start = time.monotonic()
    _run([*cmd, target.package], moddir, env)
    os.replace(f"{out}.tmp", out)
    _record(cache, target, arch, time.monotonic() - start)
    return out


def module_dir(target: GoTarget, cache: Path) -> Path:
    """The pristine (read-only) copy of `target`'s module in Go's module cache."""
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off", "LC_ALL": "C"}
    cache.mkdir(parents=True, exist_ok=True)
    info = json.loads(
        _run(["go", "mod", "download", "-json", f"{target.module}@{target.version}"], cache, env)
    )
    return Path(info["Dir"])


def source_dir(cache: Path, target: GoTarget) -> Path:
    """Where an `in_module` target's writable module copy is."""
    return cache / "gomod" / f"{target.slug}-{target.version}" / "src"


def prepare_source(cache: Path, target: GoTarget) -> Path:
    """The writable copy of `target`'s module, with its `prepare` step done; returns it."""
    src = source_dir(cache, target)
    ready = src.parent / ".ready"
    if not ready.is_file():
        shutil.rmtree(src.parent, ignore_errors=True)
        src.parent.mkdir(parents=True)
        shutil.copytree(module_dir(target, cache), src)
        for path in (src, *src.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        ready.write_text("ok\n")
    if target.prepare is not None:
        name, step = target.prepare
        marker = src.parent / f".prepared-{name}"
        if not marker.is_file():
            step(src, cache)
            marker.write_text("ok\n")
    return src


def _prepare_module(moddir: Path, target: GoTarget) -> None:
    if (moddir / ".ready").is_file():
        return
    moddir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "LC_ALL": "C"}
    info = json.loads(
        _run(["go", "mod", "download", "-json", f"{target.module}@{target.version}"], moddir, env)
    )
    upstream = Path(info["GoMod"]).read_text(encoding="utf-8")
    (moddir / "go.mod").write_text(_wrapper_gomod(target, upstream), encoding="utf-8")
    _run(["go", "get", f"{target.package}@{target.version}"], moddir, env)
    (moddir / ".ready").write_text("ok\n")


def _wrapper_gomod(target: GoTarget, upstream: str) -> str:
    required = dict(m.groups() for line in upstream.splitlines() if (m := _REQUIRE.match(line)))
    lines = [
        f"module airlock.local/build/{target.slug}",
        "",
        "go 1.24.0",
        "",
        f"require {target.module} {target.version}",
        "",
    ]
    replaces = []
    for line in upstream.splitlines():
        match = _LOCAL_REPLACE.match(line)
        if not match:
            continue
        path = match.group(1)
        if path not in required:  # e.g. etcd's `=> ./FORBIDDEN_DEPENDENCY` guards
            continue
        version = required[path]
        if version.startswith("v0.0.0"):
            version = _staging_version(target.version)
        replaces.append(f"\t{path} => {path} {version}")
    if replaces:
        lines += ["replace (", *replaces, ")", ""]
    return "\n".join(lines)


def _staging_version(version: str) -> str:
    # k8s.io/kubernetes v1.34.4 <-> staging modules k8s.io/api etc. v0.34.4
    major, rest = version.lstrip("v").split(".", 1)
    if major != "1":
        raise AirlockError(f"cannot map {version} to its staging module version")
    return f"v0.{rest}"


# Where Go's own installer (and this project's machine image) puts it, when not on PATH.
GO_FALLBACK_DIR = Path("/usr/local/go/bin")


def require_go() -> None:
    """Go on PATH (adding /usr/local/go/bin when only there), or one line with the fix."""
    if shutil.which("go"):
        return
    if (GO_FALLBACK_DIR / "go").is_file():
        os.environ["PATH"] = f"{GO_FALLBACK_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
        return
    raise AirlockError(
        "Go is not installed: the lab bundle compiles Kubernetes, etcd, containerd, runc, "
        "flannel and CoreDNS from their Go modules; install Go >= 1.24 and put it on PATH, "
        "then run `airlock bundle build --profile lab` again (built programs are cached)"
    )


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise CommandError(
            cmd,
            proc.returncode,
            proc.stderr,
            "the Go module proxy must be reachable (GOPROXY) and Go >= 1.24",
        )
    return proc.stdout


def _record(cache: Path, target: GoTarget, arch: str, seconds: float) -> None:
    path = cache / "build-times.json"
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[f"{target.name}@{target.version}/{arch}"] = round(seconds, 1)
    path.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")


def build_times(cache: Path) -> dict[str, float]:
    path = cache / "build-times.json"
    return json.loads(path.read_text()) if path.is_file() else {}
