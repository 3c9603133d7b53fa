"""Paths from a bundle's MANIFEST.json, joined onto a host directory without leaving it.

MANIFEST.json comes from the bundle host; a path in it is data, never trusted. Every role
or module that turns an artifact path into a local file (bundle_client's artifact map:
`dest` of each download, the paths roles are handed) goes through `safe_join`, which
refuses a path that is absolute, has a `..`, `.` or empty component, a backslash or a
control character, or whose result would not lie below `base`. (The same rules as a
bundle member's name in airlock/bundle/build/bundletar.py, which a host cannot import.)

    from ansible_collections.airlock.cluster.plugins.module_utils.bundle_paths import safe_join
    dest = safe_join("/opt/airlock/artifacts", artifact["path"])   # ValueError if it leaves
"""

from __future__ import annotations

import os

FIX = (
    "the bundle's MANIFEST.json is damaged or hostile: verify the bundle "
    "(airlock bundle verify) or rebuild it"
)


def _refuse(relative: object, what: str) -> ValueError:
    return ValueError(f"artifact path {relative!r} {what}; {FIX}")


def safe_join(base: str, relative: str) -> str:
    """`base`/`relative` as a string; ValueError naming the path unless it stays below `base`."""
    if not isinstance(relative, str) or not relative:
        raise _refuse(relative, "is empty or not a string")
    if relative.startswith("/"):
        raise _refuse(relative, "is absolute")
    if "\\" in relative or not relative.isprintable():
        raise _refuse(relative, "has a backslash or control character")
    parts = relative.split("/")
    if ".." in parts:
        raise _refuse(relative, "leaves the directory ('..')")
    if any(part in ("", ".") for part in parts):
        raise _refuse(relative, "is not a plain relative path (empty or '.' component)")
    root = os.path.normpath(os.path.abspath(base))
    joined = os.path.normpath(os.path.join(root, *parts))
    if joined == root or os.path.commonpath([root, joined]) != root:
        raise _refuse(relative, f"leaves {root}")
    return joined
