"""Roles get the bundle's files and images from one artifact map (docs/bundle.md).

Only roles/airlock maps x86_64/aarch64 to the bundle's architecture names; only
roles/bundle_client knows where things are inside the bundle (it writes the map), besides
roles/bundle_server, which serves the bundle itself; images are imported one way,
airlock.cluster.containerd_image. Every other role looks its files up with
airlock.cluster.bundle_artifacts. The checks read the role files as text and YAML; each is
also run on lines the roles had before the map, so it cannot pass by matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The roles allowed to know the architecture names / the bundle's layout: bundle_client
# writes the map from MANIFEST.json; bundle_server unpacks and serves the bundle itself (its
# apt repository debs/CODENAME/ on the bundle host), it never reads fetched artifacts.
ARCH_OWNER = "airlock"
LAYOUT_OWNERS = ("bundle_client", "bundle_server")
# Roles that install files from the bundle: each must read the map.
READERS = ("containerd", "etcd", "kubernetes")

ARCH_MAP = re.compile(r"\bx86_64\b|\baarch64\b")
BUNDLE_LAYOUT = (
    # A bundle directory with a templated or searched part: bin/{{ arch }}, archives/[^/]+,
    # images/*, images/<arch>/.
    re.compile(r"\b(?:bin|archives|images|debs)/(?:\{\{|\[|\*|<)"),
    # A bundle directory joined to a directory variable: {{ x_dir }}/bin/, x_dir ~ '/images/'.
    re.compile(r"_dir\s*(?:\}\}\s*|~\s*['\"])/(?:bin|archives|images|debs)\b"),
    # A file name pattern of the bundle's archives, or an image archive named by suffix.
    re.compile(r"\b(?:containerd|cni-plugins|crictl|etcd)-(?:\*|\[)[^'\"\s]*(?:tar|tgz)"),
    re.compile(r"\*\.oci\.tar|oci\\?\.tar\b"),
)
# The artifacts directory may be passed whole (to bundle_artifacts, in a message) or joined
# only to a directory a role owns there (etcd unpacks its release archive in unpacked/).
ARTIFACTS_DIR_JOIN = re.compile(r"airlock_artifacts_dir\s*(?:\}\}\s*/|~\s*['\"]/)(?!unpacked/)")
OLD_NAMES = re.compile(
    r"\b(?:bundle_client_dir|containerd_artifacts_dir|etcd_bundle_dir|kubernetes_artifact_dir"
    r"|containerd_arch|_bundle_client_arch|_kubernetes_arch|_etcd_bundle_arch)\b"
)
FIND_MODULES = {"ansible.builtin.find", "find"}
COMMAND_MODULES = {"ansible.builtin.command", "command", "ansible.builtin.shell", "shell"}


def role_files() -> Iterator[tuple[str, Path]]:
    """(role, file) for every Ansible file of every role (tasks, vars, defaults, templates...)."""
    for path in sorted((ROOT / "roles").rglob("*")):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
            yield path.relative_to(ROOT / "roles").parts[0], path


def code_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines that are not YAML comments (comments may describe the layout)."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.lstrip().startswith("#"):
            yield number, line


def layout_problems(text: str) -> list[str]:
    found = []
    for number, line in code_lines(text):
        if any(p.search(line) for p in BUNDLE_LAYOUT) or ARTIFACTS_DIR_JOIN.search(line):
            found.append(f"line {number}: {line.strip()}")
    return found


def tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every task in a tasks file, blocks included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from tasks(node.get(key))


def task_problems(data: Any) -> list[str]:
    """Searches of the artifacts directory, and images imported with raw ctr."""
    found = []
    for task in tasks(data):
        for module in FIND_MODULES & set(task):
            if "artifacts" in str(task[module]):
                found.append(f"{task.get('name')}: searches the artifacts directory")
        for module in COMMAND_MODULES & set(task):
            args = task[module]
            argv = (
                args.get("argv") or str(args.get("cmd", "")).split()
                if isinstance(args, dict)
                else str(args).split()
            )
            if argv and Path(str(argv[0])).name == "ctr":
                found.append(f"{task.get('name')}: runs ctr (use airlock.cluster.containerd_image)")
    return found


# --- the checks are not blind: each catches what the roles did before the map -----------
@pytest.mark.parametrize(
    "line",
    [
        '_containerd_bin_dir: "{{ containerd_artifacts_dir }}/bin/{{ containerd_arch }}"',
        '_containerd_images_dir: "{{ containerd_artifacts_dir }}/images/{{ containerd_arch }}"',
        "  containerd: '/archives/[^/]+/containerd-[^/]+\\.tar\\.gz$'",
        "  runc: '/bin/[^/]+/runc$'",
        '    patterns: "*.oci.tar"',
        '_etcd_bundle_archives: "{{ etcd_bundle_dir }}/archives/{{ _etcd_bundle_arch }}"',
        '    patterns: ["etcd-*.tar.gz"]',
        '    src: "{{ kubernetes_artifact_dir }}/bin/{{ _kubernetes_arch }}/{{ item }}"',
        '    path: "{{ airlock_artifacts_dir }}/bin/{{ airlock_arch }}/kubeadm"',
        "    path: \"{{ airlock_artifacts_dir ~ '/images/' ~ airlock_arch }}\"",
        '      - "{{ airlock_artifacts_dir }}/{{ item.path }}"',
    ],
)
def test_the_layout_check_catches_a_bundle_path(line: str) -> None:
    assert layout_problems(line), line


@pytest.mark.parametrize(
    "line",
    [
        '    dir: "{{ airlock_artifacts_dir }}"',
        "         else airlock_artifacts_dir ~ '/unpacked/etcd-' ~ sha[:16] }}",
        "    src: \"{{ _containerd_artifacts['containerd'].path }}\"",
        "    ctr: \"{{ _containerd_prefix ~ '/bin/ctr' }}\"",
        "ExecStart={{ _containerd_prefix }}/bin/containerd",
        '    dest: "{{ kubernetes_bin_dir }}/{{ item }}"',
        "# archives/<arch>/etcd-<version>.tar.gz in a comment",
        '    patterns: ["etcd-*.db"]',
    ],
)
def test_the_layout_check_leaves_lookups_alone(line: str) -> None:
    assert not layout_problems(line), line


def test_the_task_check_catches_a_search_and_raw_ctr() -> None:
    old = yaml.safe_load(
        """
- name: Find the image archives the bundle stage fetched
  ansible.builtin.find:
    paths: "{{ _containerd_images_dir }}"
- block:
    - name: Find the etcd release archive
      ansible.builtin.find:
        paths: "{{ airlock_artifacts_dir }}"
- name: Import each image containerd lacks
  ansible.builtin.command:
    argv: [ctr, --namespace, k8s.io, images, import, x.oci.tar]
- name: Import with a path
  ansible.builtin.command: /usr/local/bin/ctr -n k8s.io images import x.oci.tar
"""
    )
    # The first find names no artifacts dir (a variable derived from it): the text check
    # above catches how such a variable is built.
    assert len(task_problems(old)) == 3


# --- the roles -------------------------------------------------------------------------
def test_only_the_airlock_role_maps_architecture_names() -> None:
    holders = [
        str(path.relative_to(ROOT))
        for path in [*(p for _, p in role_files()), *sorted((ROOT / "playbooks").glob("*.yml"))]
        if any(ARCH_MAP.search(line) for _, line in code_lines(path.read_text()))
    ]
    assert holders == ["roles/airlock/vars/main.yml"]
    assert "airlock_arch:" in (ROOT / "roles" / "airlock" / "vars" / "main.yml").read_text()


def test_no_role_but_bundle_client_builds_a_path_inside_the_bundle() -> None:
    problems = [
        f"{path.relative_to(ROOT)} {problem}"
        for role, path in role_files()
        if role != ARCH_OWNER and role not in LAYOUT_OWNERS
        for problem in layout_problems(path.read_text())
    ]
    assert problems == []


def test_no_role_searches_the_artifacts_or_imports_with_ctr() -> None:
    problems = [
        f"{path.relative_to(ROOT)}: {problem}"
        for role, path in role_files()
        if path.parent.name in ("tasks", "handlers")
        for problem in task_problems(yaml.safe_load(path.read_text()))
        if role not in LAYOUT_OWNERS or "ctr" in problem
    ]
    assert problems == []


def test_the_old_directory_and_architecture_names_are_gone() -> None:
    paths = [
        *(p for _, p in role_files()),
        *sorted((ROOT / "roles").rglob("README.md")),
        *sorted((ROOT / "playbooks").glob("*.yml")),
        ROOT / "docs" / "bundle.md",
    ]
    left = [str(p.relative_to(ROOT)) for p in paths if OLD_NAMES.search(p.read_text())]
    assert left == []


@pytest.mark.parametrize("role", READERS)
def test_each_role_that_installs_bundle_files_reads_the_map(role: str) -> None:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "roles" / role / "tasks").glob("*.yml")))
    assert "airlock.cluster.bundle_artifacts:" in text
    assert 'dir: "{{ airlock_artifacts_dir }}"' in text
