#!/usr/bin/env python3
"""Print bundle build times (cold download cache, then cached), size per component and
verify throughput. Prints numbers; never passes or fails on them.

    .venv/bin/python benchmarks/bundle_bench.py                # lab profile
    .venv/bin/python benchmarks/bundle_bench.py --keep DIR     # keep the bundles in DIR

"Cold" means an empty download cache: every artifact is fetched again (file:// for the
lab's own builds, HTTP from Debian's archive for packages) and checked; the Go builds
and image assembly of the lab profile are cached separately (their first-build times
come from .airlock/cache/lab/build-times.json and are printed too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airlock.bundle.build.verify import verify_bundle  # noqa: E402
from airlock.lab.bundle.gobuild import build_times  # noqa: E402


def build(profile, output, cache):
    start = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "airlock.bundle",
            "build",
            "--profile",
            profile,
            "--output",
            str(output),
            "--cache-dir",
            str(cache),
        ],
        check=True,
        cwd=ROOT,
    )
    return time.monotonic() - start


def sizes(bundle):
    with tarfile.open(bundle) as tar:
        doc = json.load(tar.extractfile("MANIFEST.json"))
    per = defaultdict(int)
    for art in doc["artifacts"]:
        key = "os packages (.deb)" if art["kind"] == "deb" else f"{art['kind']}: {art['name']}"
        per[key] += art["size"]
    for path, info in doc["files"].items():
        if path.startswith("wheels/") or path == "airlock-project.tar.gz":
            per["python wheels + project"] += info["size"]
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="lab", choices=["lab", "production"])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bundle-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    cold = build(args.profile, work / "cold.tar", cache)
    warm = build(args.profile, work / "warm.tar", cache)
    bundle = work / "warm.tar"
    start = time.monotonic()
    report = verify_bundle(bundle)
    took = time.monotonic() - start
    size = bundle.stat().st_size
    print(f"\nbuild, cold download cache : {cold:8.1f} s")
    print(f"build, cached              : {warm:8.1f} s")
    print(f"bundle size                : {size / 2**20:8.1f} MiB ({report.members} members)")
    print(
        f"verify                     : {took:8.2f} s = {size / 2**20 / took:.0f} MiB/s "
        f"({'ok' if report.ok else 'FAILED: ' + '; '.join(report.problems)})"
    )
    print("\nsize per component:")
    for name, count in sizes(bundle).items():
        print(f"  {count / 2**20:8.1f} MiB  {name}")
    times = build_times(ROOT / ".airlock" / "cache" / "lab")
    if times:
        print("\nfirst Go builds (from the module proxy, nice 19, -p 1), seconds:")
        for name, secs in sorted(times.items()):
            print(f"  {secs:8.1f}  {name}")


if __name__ == "__main__":
    main()
