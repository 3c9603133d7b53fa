"""Cut the part of Harbor's published API description that airlock's harbor modules use.

Harbor publishes its REST API as a Swagger 2.0 file, `api/v2.0/swagger.yaml` in
goharbor/harbor. The stand-in (`harbor_standin.py`) validates every request and response
against the operations and schemas of that file; this script copies the blocks it needs,
text for text, into `harbor-api-<version>.yaml` beside it, with a header naming the source.

    git -C harbor show v2.15.2:api/v2.0/swagger.yaml > /tmp/swagger.yaml
    python tests/unit/registry/extract_harbor_api.py /tmp/swagger.yaml v2.15.2 \
        080b0220574cc853ae1e2946ce7a5610ba855757

Blocks are copied as text (not re-serialised), so each is byte-for-byte upstream's; the
script then checks that the cut parses to exactly the same paths, parameters, responses
and definitions as the full file.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
#: The operations the modules call (module_utils/harbor.py), by path.
PATHS = [
    "/health",
    "/users/current",
    "/projects",
    "/projects/{project_name_or_id}",
    "/quotas",
    "/quotas/{id}",
    "/robots",
    "/robots/{robot_id}",
]
SECTIONS = ("paths", "parameters", "responses", "definitions")
HEADER = """\
# yamllint disable rule:line-length
# A part of Harbor's REST API description (Swagger 2.0), cut by extract_harbor_api.py.
# Source: https://github.com/goharbor/harbor/blob/{commit}/api/v2.0/swagger.yaml
#   (tag {version}, commit {commit}; whole file sha256 {sha256})
# Copyright Project Harbor Authors. Licensed under the Apache License, Version 2.0
# (https://www.apache.org/licenses/LICENSE-2.0); these blocks are unmodified copies.
# Kept: the paths {paths},
# and every parameter, response and definition they refer to. (Upstream's descriptions
# are long lines, hence line-length is off.)
---
"""


def refs(node: Any) -> set[tuple[str, str]]:
    """Every ('definitions', 'Project')-style target referenced anywhere below `node`."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            section, name = ref[2:].split("/", 1)
            found.add((section, name))
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def needed(spec: dict[str, Any]) -> dict[str, list[str]]:
    """Names to keep per section: PATHS and the closure of what they refer to."""
    keep: dict[str, set[str]] = {s: set() for s in SECTIONS}
    keep["paths"] = set(PATHS)
    todo = [spec["paths"][p] for p in PATHS]
    while todo:
        for section, name in refs(todo.pop()):
            if name not in keep[section]:
                keep[section].add(name)
                todo.append(spec[section][name])
    return {s: sorted(keep[s]) for s in SECTIONS}


def blocks(text: str, section: str) -> dict[str, str]:
    """The text of each top-level entry of `section`, keyed by its (unquoted) name."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"{section}:\n")
    out: dict[str, str] = {}
    name = None
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith(" "):
            break  # the next top-level section
        match = re.match(r"^  (['\"]?)([^ '\"].*?)\1:\s*$", line)
        if match:
            name = match.group(2)
            out[name] = ""
        if name is not None:
            out[name] += line
    return out


def extract(source: Path, version: str, commit: str) -> str:
    raw = source.read_bytes()
    text = raw.decode("utf-8")
    spec = yaml.safe_load(text)
    keep = needed(spec)
    lines = text.splitlines(keepends=True)
    head_end = next(i for i, line in enumerate(lines) if line == "paths:\n")
    out = [
        HEADER.format(
            commit=commit,
            version=version,
            sha256=hashlib.sha256(raw).hexdigest(),
            paths=", ".join(PATHS),
        ),
        *lines[:head_end],
    ]
    for section in SECTIONS:
        found = blocks(text, section)
        out.append(f"{section}:\n")
        out.extend(found[name] for name in keep[section])
    cut = "".join(out)
    check = yaml.safe_load(cut)
    for section in SECTIONS:
        assert check[section] == {n: spec[section][n] for n in keep[section]}, section
    return cut


def main() -> None:
    source, version, commit = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    target = HERE / f"harbor-api-{version}.yaml"
    target.write_text(extract(source, version, commit), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
