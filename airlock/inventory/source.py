"""Reading one inventory file: YAML with line numbers, duplicate keys and one-line errors.

Every file of an inventory (hosts.yml, group_vars/, host_vars/) is read here before
anything else looks at it, with libyaml's CSafeLoader where it is installed. A file that
cannot be read becomes a `Problem` located at FILE:LINE instead of a parser traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airlock.inventory.model import Problem

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Vaulted:
    """An `!vault` value: encrypted, so nothing about it can be checked statically."""

    def __repr__(self) -> str:
        return "<vaulted>"


class _Loader(_BASE):  # type: ignore[misc,valid-type]
    pass


def _vault(loader: Any, node: Any) -> Vaulted:
    return Vaulted()


def _unsafe(loader: Any, node: Any) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_constructor("!vault", _vault)
_Loader.add_constructor("!unsafe", _unsafe)

Path_ = tuple[Any, ...]


@dataclass
class Doc:
    """One parsed file: its data, the line of every mapping key, and its problems."""

    name: str  # as shown to the user: relative to the inventory
    data: Any = None
    lines: dict[Path_, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: bool = False  # unreadable: data is None and nothing else should look at it

    def where(self, *path: Any) -> str:
        """FILE:LINE of the key at `path` (or of the nearest enclosing key)."""
        while path:
            if path in self.lines:
                return f"{self.name}:{self.lines[path]}"
            path = path[:-1]
        return f"{self.name}:1"

    def fail(self, line: int, what: str, fix: str) -> Doc:
        self.problems.append(Problem("", what, fix, where=f"{self.name}:{line}"))
        self.broken = True
        self.data = None
        return self


def _syntax_fix(message: str) -> str:
    if "\\t" in message or "\t" in message:
        return "indent with spaces, never tabs"
    if "expected a single document" in message:
        return "keep one YAML document per file (remove the second `---`)"
    return "fix the YAML syntax at that line (`key: value`, consistent indentation)"


def _decode(raw: bytes, doc: Doc) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        doc.fail(line, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})", "save the file as UTF-8")
        return None
    return text[1:] if text.startswith("\ufeff") else text


def _yaml_failure(doc: Doc, exc: yaml.YAMLError, stage: str, text: str) -> Doc:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else 1
    lines = text.splitlines()
    if mark and stage == "parse" and line <= len(lines) and "\t" in lines[line - 1]:
        return doc.fail(
            line, "YAML syntax error: a tab character", "indent with spaces, never tabs"
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    else:
        what = (str(exc).splitlines() or [type(exc).__name__])[0]
    if stage == "parse":
        return doc.fail(line, f"YAML syntax error: {what}", _syntax_fix(what))
    return doc.fail(line, f"YAML error: {what}", "write plain keys and values (no custom tags)")


def read_yaml(path: Path, name: str, track_depth: int = 6) -> Doc:
    """Parse `path`; problems are collected in the Doc, never raised."""
    doc = Doc(name)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return doc.fail(1, f"cannot be read ({exc.strerror})", "check the file's permissions")
    text = _decode(raw, doc)
    if text is None:
        return doc
    loader = _Loader(text)
    stage = "parse"
    try:
        node = loader.get_single_node()
        if node is not None:
            _walk(node, doc, track_depth)
            stage = "construct"
            doc.data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        return _yaml_failure(doc, exc, stage, text)
    except (TypeError, ValueError, RecursionError) as exc:
        return doc.fail(1, f"cannot be read as YAML ({type(exc).__name__})", "simplify the data")
    finally:
        loader.dispose()
    return doc


def _walk(root: Any, doc: Doc, track_depth: int) -> None:
    """Record each mapping key's line; report keys given twice in one mapping."""
    seen_nodes: set[int] = set()
    stack: list[tuple[Any, Path_ | None]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                child: Path_ | None = None
                if (
                    isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag != "tag:yaml.org,2002:merge"
                ):
                    key = key_node.value
                    line = key_node.start_mark.line + 1
                    if key in first:
                        doc.problems.append(
                            Problem(
                                "",
                                f"key `{key}` is given twice in one mapping (first at line "
                                f"{first[key]}, and Ansible silently keeps only the last)",
                                "delete one of them",
                                where=f"{doc.name}:{line}",
                            )
                        )
                    else:
                        first[key] = line
                    if path is not None and len(path) < track_depth:
                        child = (*path, key)
                        doc.lines[child] = line  # the last one given is the one that counts
                stack.append((value_node, child))
                stack.append((key_node, None))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                stack.append((item, None))
