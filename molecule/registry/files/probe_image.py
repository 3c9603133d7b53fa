#!/usr/bin/env python3
"""Write the registry scenario's probe image as an OCI archive; print its manifest digest.

Two layers of fixed content (about 1 MiB in all, so a push uploads real blobs), written by
airlock/lab/bundle/oci.py: byte-for-byte the same every time, so the digest is stable.

    probe_image.py --out DIR/probe.oci.tar [--ref REFERENCE]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from airlock.lab.bundle import oci


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the OCI archive to write")
    parser.add_argument(
        "--ref", default="registry.mol.test/airlock/probe:1", help="the image's reference"
    )
    args = parser.parse_args()
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "hello", Path(tmp) / "data"
        small.write_bytes(b"airlock registry probe\n")
        # Incompressible but reproducible: a SHA-256 chain.
        block, chunks = b"airlock", []
        for _ in range(32768):
            block = hashlib.sha256(block).digest()
            chunks.append(block)
        big.write_bytes(b"".join(chunks))
        spec = oci.ImageSpec(
            args.ref,
            "amd64",
            [[oci.ImageFile(small, "/hello", 0o644)], [oci.ImageFile(big, "/data", 0o644)]],
        )
        print(oci.write_oci_archive(spec, out))


if __name__ == "__main__":
    main()
