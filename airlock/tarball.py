"""One tar writer with fixed metadata: the same inputs give the same bytes.

Every archive airlock writes goes through here: the bundle (airlock.bundle.build.archive),
registry images re-packed with their containerd name (airlock.bundle.build.images), the
lab's OCI images and their layers (airlock.lab.bundle.oci) and the lab's release-style
.tar.gz files (airlock.lab.bundle.profile). Each member gets the mtime of the writer
(0 unless given), uid/gid 0, the owner names of the writer ("" unless given) and the mode
the caller states, never what the file happens to have on disk; `add_tree` is the one
exception: a whole directory keeps its modes, types and link targets, with time and
owner fixed, in sorted order.

Members are written in the order they are added. Callers add them in a fixed order
(sorted, or a documented one: a bundle starts with INDEX so a reader can check each
member as it streams past).

    with tar_writer(path, part_suffix=".tmp") as tar:   # path.tmp, renamed when complete
        tar.add_dir("blobs")
        tar.add_bytes("index.json", data)
        tar.add_file("bin/kubeadm", source, mode=0o755)
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO


class TarWriter:
    """Adds members with fixed metadata to an open tarfile (see the module docstring)."""

    def __init__(self, tar: tarfile.TarFile, *, mtime: int = 0, owner: str = "") -> None:
        self.tar = tar
        self.mtime = mtime
        self.owner = owner

    def info(
        self, name: str, *, size: int = 0, mode: int = 0o644, kind: bytes = tarfile.REGTYPE
    ) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = self.owner
        return info

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(self.info(name, mode=mode, kind=tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.tar.addfile(self.info(name, size=len(data), mode=mode), io.BytesIO(data))

    def add_stream(self, name: str, handle: BinaryIO, size: int, mode: int = 0o644) -> None:
        """`size` bytes read from `handle`."""
        self.tar.addfile(self.info(name, size=size, mode=mode), handle)

    def add_file(self, name: str, source: Path, mode: int = 0o644, size: int = -1) -> None:
        """The file `source` (its size on disk unless `size` is given)."""
        with source.open("rb") as handle:
            self.add_stream(name, handle, source.stat().st_size if size < 0 else size, mode)

    def add_tree(self, root: Path) -> None:
        """Everything under `root`, sorted, named relative to it; modes, types and link
        targets as on disk, time and owner fixed."""
        for path in sorted(root.rglob("*")):
            info = self.tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
            info.mtime, info.uid, info.gid = self.mtime, 0, 0
            info.uname = info.gname = self.owner
            if info.isreg():
                with path.open("rb") as handle:
                    self.tar.addfile(info, handle)
            else:
                self.tar.addfile(info)


@contextmanager
def tar_writer(
    target: Path | BinaryIO,
    *,
    fmt: int = tarfile.PAX_FORMAT,
    gzipped: bool = False,
    mtime: int = 0,
    owner: str = "",
    part_suffix: str = "",
) -> Iterator[TarWriter]:
    """A TarWriter on `target` (a path, or an open binary file such as io.BytesIO).

    `gzipped`: a .tar.gz whose gzip header has mtime 0. `part_suffix`: write PATH+suffix
    and rename it to PATH once the archive is complete, so PATH is never half-written.
    """
    with ExitStack() as stack:
        final: Path | None = None
        if isinstance(target, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
            if part_suffix:
                final, target = target, target.with_name(target.name + part_suffix)
            target = stack.enter_context(target.open("wb"))
        if gzipped:
            target = stack.enter_context(gzip.GzipFile(fileobj=target, mode="wb", mtime=0))
        tar = stack.enter_context(tarfile.open(fileobj=target, mode="w", format=fmt))
        yield TarWriter(tar, mtime=mtime, owner=owner)
    if final is not None:
        os.replace(final.with_name(final.name + part_suffix), final)
