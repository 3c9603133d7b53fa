"""The collection airlock.cluster as an artifact, the round trip a user of AWX makes: build
the tarball, install it offline into an empty directory, then use it with nothing of this
checkout in sight (another directory, no ansible.cfg, only that collections path):
`ansible-doc`, a playbook calling a module by its FQCN, and the collection's own playbooks,
whose roles resolve inside the collection (`certs-renew.yml` is `airlock.cluster.certs_renew`
there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from airlock import __version__, collection
from tests.conftest import ROOT

BIN = Path(sys.executable).parent
PLAY = """\
- name: A module of the installed collection, by its FQCN
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check this host as airlock check does
      airlock.cluster.host_preflight:
        supported_os: [debian-12]
        min_free_gb: {/: 0}
      register: preflight
    - name: The module ran, with its module_utils
      ansible.builtin.assert:
        that:
          - preflight.checks | selectattr('check', 'equalto', 'os') | list | length == 1
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("collection")
    tarball = collection.build(ROOT, work / "dist")
    result = _run(work, "ansible-galaxy", "collection", "install", "--offline",
                  "-p", str(work / "collections"), str(tarball))  # fmt: skip
    assert f"airlock.cluster:{__version__} was installed successfully" in result.stdout
    return tarball, work


def _run(work: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "AIRLOCK_"))}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=work, env=env,
                          capture_output=True, text=True, check=False, timeout=600)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_the_tarball_carries_modules_roles_and_playbooks(installed: tuple[Path, Path]) -> None:
    tarball, _ = installed
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("airlock", "cluster", __version__)
    assert set(info["dependencies"]) == {"ansible.posix", "community.crypto", "community.general"}
    for member in ("plugins/modules/kubeadm_init.py", "plugins/module_utils/etcd.py",
                   "roles/etcd/tasks/main.yml", "roles/airlock/meta/argument_specs.yml",
                   "playbooks/site.yml", "meta/runtime.yml"):  # fmt: skip
        assert member in names, member
    assert not [n for n in names if "__pycache__" in n or "/molecule/" in n]


def test_ansible_doc_reads_the_installed_module(installed: tuple[Path, Path]) -> None:
    _, work = installed
    doc = _run(work, "ansible-doc", "airlock.cluster.kubeadm_init").stdout
    assert str(work / "collections" / "ansible_collections" / "airlock" / "cluster") in doc
    assert "kubeadm" in doc.lower()


def test_a_playbook_calls_a_module_by_fqcn(installed: tuple[Path, Path]) -> None:
    _, work = installed
    (work / "play.yml").write_text(PLAY)
    run = _run(work, "ansible-playbook", "play.yml")
    assert "failed=0" in run.stdout


def test_the_collections_playbooks_find_its_roles(installed: tuple[Path, Path]) -> None:
    _, work = installed
    (work / "hosts.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
    )
    for playbook in ("site", "upgrade", "reset", "certs_renew", "node_remove"):
        run = _run(work, "ansible-playbook", "-i", "hosts.yml", f"airlock.cluster.{playbook}",
                   "--syntax-check")  # fmt: skip
        assert f"ansible_collections/airlock/cluster/playbooks/{playbook}.yml" in run.stdout
