"""Read a conformance run's JUnit report, classify every failure, print the summary.

The classes (docs/conformance.md):
- `cluster-defect`: airlock built the cluster wrong; fixed in the roles with a regression
  test, so a known entry of this class is only a defect not fixed yet;
- `lab-limit`: the lab cannot do what the spec needs (a kernel module, the internet,
  cgroup v1, two cores), said which;
- `image-gap`: a test image could not be made faithfully here, said which.

Known failures live in a YAML list (tests/conformance/known.yml): `spec` (a regular
expression searched in the spec's full name), `class`, `reason`. A failure no entry
explains is `unexplained`: the run fails on it until someone finds its cause.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from airlock.errors import AirlockError

CLASSES = ("cluster-defect", "lab-limit", "image-gap")


@dataclass(frozen=True)
class Known:
    spec: re.Pattern[str]
    klass: str
    reason: str


@dataclass(frozen=True)
class Spec:
    name: str
    status: str  # passed, failed, skipped
    seconds: float
    message: str = ""


@dataclass
class Summary:
    specs: list[Spec]
    classified: dict[str, list[tuple[Spec, str]]] = field(default_factory=dict)
    unexplained: list[Spec] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.specs if s.status == status)


def load_known(path: Path) -> list[Known]:
    """The known failures of `path`; a bad entry is one line naming it."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise AirlockError(f"{path}: cannot read the known failures: {exc}") from None
    if not isinstance(doc, list):
        raise AirlockError(f"{path}: must be a list of {{spec, class, reason}} entries")
    known = []
    for number, entry in enumerate(doc, 1):
        if not isinstance(entry, dict) or set(entry) != {"spec", "class", "reason"}:
            raise AirlockError(f"{path}: entry {number} needs exactly spec, class and reason")
        if entry["class"] not in CLASSES:
            raise AirlockError(
                f"{path}: entry {number}: class {entry['class']!r} is not one of "
                f"{', '.join(CLASSES)}"
            )
        if not str(entry["reason"]).strip():
            raise AirlockError(f"{path}: entry {number}: say why (reason is empty)")
        try:
            pattern = re.compile(str(entry["spec"]))
        except re.error as exc:
            raise AirlockError(f"{path}: entry {number}: spec is not a regex: {exc}") from None
        known.append(Known(pattern, entry["class"], str(entry["reason"]).strip()))
    return known


def read_junit(path: Path) -> list[Spec]:
    """Every spec of ginkgo's JUnit report (its setup and teardown nodes left out)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise AirlockError(f"{path}: not a JUnit report: {exc}") from None
    specs = []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        if not name.startswith("[It]"):
            continue  # [SynchronizedBeforeSuite], [ReportAfterSuite], ...
        failure = case.find("failure")
        error = case.find("error")
        if failure is not None or error is not None:
            node = failure if failure is not None else error
            assert node is not None
            status = "failed"
            message = (node.get("message") or node.text or "").strip()
        elif case.find("skipped") is not None:
            status, message = "skipped", ""
        else:
            status, message = "passed", ""
        specs.append(Spec(name.removeprefix("[It] "), status, float(case.get("time", 0)), message))
    return specs


def summarize(specs: list[Spec], known: list[Known]) -> Summary:
    summary = Summary(specs, {c: [] for c in CLASSES})
    for spec in specs:
        if spec.status != "failed":
            continue
        entry = next((k for k in known if k.spec.search(spec.name)), None)
        if entry is None:
            summary.unexplained.append(spec)
        else:
            summary.classified[entry.klass].append((spec, entry.reason))
    return summary


def render(summary: Summary, wall_seconds: float, focus: str) -> str:
    """The benchmark-style printout: counts by class, each failure with its reason."""
    ran = [s for s in summary.specs if s.status != "skipped"]
    lines = [
        f"conformance: focus {focus!r}",
        f"  specs run      {len(ran)}",
        f"  passed         {summary.count('passed')}",
        f"  failed         {summary.count('failed')}",
        *(f"    {c:<14} {len(summary.classified[c])}" for c in CLASSES),
        f"    {'unexplained':<14} {len(summary.unexplained)}",
        f"  wall time      {wall_seconds:.0f} s",
    ]
    for klass in CLASSES:
        for spec, reason in summary.classified[klass]:
            lines.append(f"{klass}: {spec.name}\n    why: {reason}")
    for spec in summary.unexplained:
        first = spec.message.splitlines()[0] if spec.message else ""
        lines.append(f"unexplained: {spec.name}\n    {first[:300]}")
    return "\n".join(lines)
