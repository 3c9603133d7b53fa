#!/usr/bin/env python3
"""Build the bundle scenario's small offline bundle with the production pipeline.

The same path as tests/integration/bundle/test_bundle_lab.py: a manifest with two local
files (`tool` for every host, `node-tool` for kube_node hosts only) and nginx-light +
socat with every dependency resolved from Debian 12's signed archive for amd64; then
download -> verify -> archive (airlock.bundle.build.pipeline) and a full verify. The
resolver's and the downloads' caches are the checkout's (.airlock/cache), as for
`airlock bundle build`. An archive already at --out that verifies is kept.
Prints "changed" or "unchanged".

    build_bundle.py --out DIR/small-bundle.tar
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import yaml

from airlock.bundle.build.download import Cache
from airlock.bundle.build.pipeline import BuildOptions, build
from airlock.bundle.build.verify import VerifyError, require_valid
from airlock.bundle.manifest import load_manifest
from airlock.lab.bundle import profile as lab
from airlock.paths import state_dir

PACKAGES = ["nginx-light", "socat"]  # the server's web server; one package for the clients
# Local files with fixed content, so every build pins the same sha256.
FILES = {
    "tool": (["all"], b"airlock molecule tool\n" * 4096),
    "node-tool": (["kube_node"], b"airlock molecule node tool\n" * 2048),
}


def manifest(src: Path) -> dict:
    artifacts = []
    for name, (roles, data) in FILES.items():
        (src / name).write_bytes(data)
        artifacts.append(
            {
                "name": name,
                "version": "1.0",
                "url": "{mirror.local}/" + name,
                "target": "bin/{arch}/" + name,
                "roles": roles,
                "sha256": {"amd64": hashlib.sha256(data).hexdigest()},
            }
        )
    debs = lab._resolve_debs(state_dir() / "cache" / "lab", "amd64", PACKAGES)
    return {
        "schema": 1,
        "kube_version": "v1.34.4",
        "architectures": ["amd64"],
        "mirrors": {"local": src.resolve().as_uri(), **lab.DEB_MIRRORS},
        "artifacts": [*artifacts, *lab.deb_artifacts(debs, "amd64")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the bundle archive to write")
    out = parser.parse_args().out
    if out.is_file():
        try:
            require_valid(out)
        except VerifyError:
            pass
        else:
            print("unchanged")
            return
    src = out.parent / "bundle-src"
    src.mkdir(parents=True, exist_ok=True)
    path = src / "manifest.yml"
    path.write_text(yaml.safe_dump(manifest(src)))
    options = BuildOptions(
        manifest=load_manifest(path),
        arches=["amd64"],
        output=out,
        cache=Cache(state_dir() / "cache" / "bundle"),
        progress=False,
    )
    build(options)
    require_valid(out)
    print("changed")


if __name__ == "__main__":
    main()
