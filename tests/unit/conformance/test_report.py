"""The conformance summary: ginkgo's JUnit report read back, failures classified by the
known list, the counts printed; and the test images' definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.errors import AirlockError
from airlock.lab.conformance import build, report

JUNIT = (Path(__file__).with_name("junit.xml")).read_text()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_report_gives_every_spec_and_leaves_out_the_suite_nodes(tmp_path: Path) -> None:
    specs = report.read_junit(_write(tmp_path, "junit.xml", JUNIT))
    assert [(s.status, s.name.split("]")[0]) for s in specs] == [
        ("passed", "[sig-node"),
        ("failed", "[sig-network"),
        ("failed", "[sig-apps"),
        ("skipped", "[sig-storage"),
    ]
    assert specs[1].message.startswith("Timed out after 600s")


def test_failures_are_classified_and_the_rest_unexplained(tmp_path: Path) -> None:
    known = report.load_known(
        _write(
            tmp_path,
            "known.yml",
            "- spec: 'DNS should provide DNS for the cluster'\n"
            "  class: lab-limit\n"
            "  reason: no route to the internet\n",
        )
    )
    summary = report.summarize(report.read_junit(_write(tmp_path, "j.xml", JUNIT)), known)
    assert [(s.name.split(" ")[0], why) for s, why in summary.classified["lab-limit"]] == [
        ("[sig-network]", "no route to the internet")
    ]
    assert [s.name.split(" ")[0] for s in summary.unexplained] == ["[sig-apps]"]
    text = report.render(summary, 120.4, r"\[Conformance\]")
    assert "specs run      3" in text
    assert "passed         1" in text
    assert "lab-limit      1" in text
    assert "unexplained    1" in text
    assert "wall time      120 s" in text
    assert "Expected <int>: 1 to equal 2" in text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("spec: x\n", "must be a list"),
        ("- spec: x\n  class: lab-limit\n", "needs exactly spec, class and reason"),
        ("- spec: x\n  class: flaky\n  reason: r\n", "class 'flaky' is not one of"),
        ("- spec: x\n  class: image-gap\n  reason: ' '\n", "reason is empty"),
        ("- spec: '('\n  class: image-gap\n  reason: r\n", "spec is not a regex"),
        ("- [", "cannot read the known failures"),
    ],
)
def test_a_bad_known_list_is_one_line_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = _write(tmp_path, "known.yml", text)
    with pytest.raises(AirlockError) as caught:
        report.load_known(path)
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_the_repositorys_known_list_loads() -> None:
    report.load_known(Path(__file__).resolve().parents[2] / "conformance" / "known.yml")


def test_a_report_that_is_not_junit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AirlockError, match="not a JUnit report"):
        report.read_junit(_write(tmp_path, "junit.xml", "ginkgo: command not found\n"))


def test_the_images_are_named_once_and_say_how_they_differ() -> None:
    images = build.images("v1.37.2", "3.7.0-0")
    references = [i.reference for i in images]
    assert len(references) == len(set(references))
    assert "registry.k8s.io/e2e-test-images/agnhost:2.66.1" in references
    assert "registry.k8s.io/etcd:3.7.0-0" in references
    for image in images:
        assert image.note, image.reference
        # added accounts need the passwd and group files of base-passwd
        if image.users or image.groups or image.busybox:
            assert "base-passwd" in image.packages, image.reference
