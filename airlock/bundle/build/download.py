"""Fetch pinned artifacts into a content-addressed cache: parallel, resumable, verified.

The cache keeps each verified file under `sha256/<2 hex>/<64 hex>`, so an artifact whose
checksum is unchanged is never fetched again and a changed one is fetched afresh. A
download in progress lives in `partial/<64 hex>`; after a cut connection the next attempt
asks for the rest with an HTTP Range request. A file whose checksum does not match is
deleted and refused; the other downloads go on, and the run fails at the end naming it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from airlock.errors import AirlockError

CHUNK = 1 << 20
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(AirlockError):
    """An artifact could not be fetched."""


class ChecksumMismatchError(DownloadError):
    """The fetched bytes are not the pinned ones; the artifact is refused."""


@dataclass(frozen=True)
class Request:
    """One file to fetch: where from, its pinned sha256, and a label for messages."""

    url: str
    sha256: str
    label: str


class Cache:
    """Content-addressed store of verified files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def partial_for(self, sha256: str) -> Path:
        return self.root / "partial" / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def add_file(self, source: Path, sha256: str) -> Path:
        """Move a verified file into the cache atomically."""
        final = self.path_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, final)
        return final


class Progress:
    """A one-line progress display on stderr (only when stderr is a terminal)."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self.bytes = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count
            self._draw("")

    def finished(self, label: str) -> None:
        with self._lock:
            self.done += 1
            self._draw(label)

    def _draw(self, label: str) -> None:
        if not self.enabled:
            return
        rate = self.bytes / max(time.monotonic() - self._start, 1e-6) / 2**20
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r[{bar}] {self.done}/{self.total} {self.bytes / 2**20:8.1f} MiB "
            f"{rate:6.1f} MiB/s {label[:30]:<30}"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def fetch(
    req: Request,
    cache: Cache,
    retries: int = 4,
    timeout: float = 30.0,
    on_bytes: Callable[[int], None] | None = None,
    backoff: float = 0.2,
) -> Path:
    """Return the cached, verified file for `req`, downloading it if needed."""
    if cache.has(req.sha256):
        return cache.path_for(req.sha256)
    partial = cache.partial_for(req.sha256)
    partial.parent.mkdir(parents=True, exist_ok=True)
    resumed_once = False
    attempt = 0
    while True:
        try:
            _transfer(req.url, partial, timeout, on_bytes or (lambda _n: None))
        except _RetryableError as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"{req.label}: {req.url}: gave up after {retries} retries ({exc}); "
                    "check the mirror is reachable, or point --mirror at one that is"
                ) from None
            time.sleep(min(backoff * 2 ** (attempt - 1), 5.0))
            resumed_once = True
            continue
        actual = sha256_file(partial)
        if actual == req.sha256:
            return cache.add_file(partial, req.sha256)
        partial.unlink()
        if resumed_once:
            # The first attempt was stitched from pieces; fetch it once more from zero.
            resumed_once = False
            continue
        raise ChecksumMismatchError(
            f"{req.label}: {req.url} has sha256 {actual}, the manifest pins {req.sha256}; "
            "the artifact was refused. Fix the source (mirror) or, if the new file is "
            "trusted, update the manifest's sha256"
        )


class _RetryableError(Exception):
    """A transient failure: a cut connection, a timeout, a 5xx."""


def _transfer(url: str, partial: Path, timeout: float, on_bytes: Callable[[int], None]) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        _copy_local(Path(urllib.parse.unquote(parsed.path)), partial, on_bytes)
        return
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "airlock-bundle"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # our partial is already as long as the file (or longer)
            partial.unlink()
            raise _RetryableError("range not satisfiable, starting over") from None
        if exc.code in _RETRYABLE_HTTP:
            raise _RetryableError(f"HTTP {exc.code}") from None
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}; check the URL and mirror"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _RetryableError(str(exc)) from None
    with resp:
        append = resp.status == 206 and _range_start(resp.headers.get("Content-Range")) == have
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with partial.open("ab" if append else "wb") as out:
            got = _pump(resp, out, on_bytes)
    if expected is not None and got < expected:
        raise _RetryableError(f"connection cut after {got} of {expected} bytes")


def _pump(
    src: BinaryIO | http.client.HTTPResponse, out: BinaryIO, on_bytes: Callable[[int], None]
) -> int:
    got = 0
    while True:
        try:
            chunk = src.read(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            out.flush()
            raise _RetryableError(f"connection cut after {got} bytes: {exc}") from None
        if not chunk:
            return got
        out.write(chunk)
        got += len(chunk)
        on_bytes(len(chunk))


def _range_start(content_range: str | None) -> int | None:
    # "bytes 100-199/200"
    if not content_range or not content_range.startswith("bytes "):
        return None
    first = content_range[6:].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def _copy_local(source: Path, partial: Path, on_bytes: Callable[[int], None]) -> None:
    if not source.is_file():
        raise DownloadError(f"{source}: no such file; build it first or fix the manifest URL")
    with source.open("rb") as src, partial.open("wb") as out:
        _pump(src, out, on_bytes)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Outcome:
    """What fetch_all did: the verified files, and the errors of those that failed."""

    paths: dict[str, Path]
    errors: dict[str, DownloadError]
    fetched: int
    reused: int


def fetch_all(
    requests: Iterable[Request],
    cache: Cache,
    jobs: int = 4,
    retries: int = 4,
    timeout: float = 30.0,
    progress: bool | None = None,
) -> Outcome:
    """Fetch every request in parallel; failures are collected, never stop the others."""
    unique = {r.sha256: r for r in requests}
    reused = sum(1 for sha in unique if cache.has(sha))
    bar = Progress(len(unique), progress)
    outcome = Outcome({}, {}, len(unique) - reused, reused)

    def one(req: Request) -> None:
        try:
            outcome.paths[req.sha256] = fetch(req, cache, retries, timeout, bar.add_bytes)
        except DownloadError as exc:
            outcome.errors[req.sha256] = exc
        bar.finished(req.label)

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        list(pool.map(one, unique.values()))
    return outcome


def copy_into_cache(source: Path, cache: Cache) -> tuple[str, Path]:
    """Add a locally produced file to the cache; returns (sha256, cached path)."""
    sha = sha256_file(source)
    if not cache.has(sha):
        tmp = cache.partial_for(sha)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp)
        cache.add_file(tmp, sha)
    return sha, cache.path_for(sha)
