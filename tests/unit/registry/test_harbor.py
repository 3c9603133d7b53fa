"""Role registry's Harbor implementation, as far as this machine can show it (Harbor itself
cannot run here: its installer needs Docker and Compose). The role's own task files run on a
local host with every path under a temporary directory: the certificate and harbor.yml as
configure.yml writes them (keys Harbor's prepare needs, modes, passwords never printed, a
second run changing nothing), the installer layout check on small tarballs made here, the
unit as the role renders it, and the preflight refusing harbor without the bundle's artifacts.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_preflight import Authority, run_stage

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).with_name("harbor_tasks.yml")
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOSTNAME = "harbor.example.internal"
PORT = 8443

# Every key Harbor's prepare reads with [] (a KeyError when absent) or needs to run with
# HTTPS and its own database: goharbor/harbor v2.15.2
# (commit 080b0220574cc853ae1e2946ce7a5610ba855757),
# make/photon/prepare/utils/configs.py, parse_yaml_config(): configs["hostname"],
# https_config["certificate"] / ["private_key"] (protocol https only when `https` is set),
# configs['data_volume'], configs["harbor_admin_password"], db_configs.get("password")
# (without `database` no harbor_db_* is set and the templates lack them),
# js_config["max_job_workers"] / ["job_loggers"] / ["logger_sweeper_duration"],
# notification_config["webhook_job_max_retry"] / ["webhook_job_http_client_timeout"],
# log_configs['level']; `_version` is what prepare's migrate reads (commands/migrate.py).
REQUIRED = [
    ("hostname",),
    ("https", "port"),
    ("https", "certificate"),
    ("https", "private_key"),
    ("harbor_admin_password",),
    ("database", "password"),
    ("data_volume",),
    ("jobservice", "max_job_workers"),
    ("jobservice", "job_loggers"),
    ("jobservice", "logger_sweeper_duration"),
    ("notification", "webhook_job_max_retry"),
    ("notification", "webhook_job_http_client_timeout"),
    ("log", "level"),
    ("_version",),
]
# configs.py validate(): what prepare refuses.
PLACEHOLDERS = {"hostname": {"127.0.0.1", "reg.mydomain.com"}, "cert": {"/your/certificate/path"}}
LOG_LEVELS = {"debug", "info", "warning", "error", "fatal"}  # configs.py allowed_levels
INSTALLER_FILES = ["install.sh", "prepare", "common.sh", "harbor.yml.tmpl", "LICENSE"]


@pytest.fixture
def cluster_ca(tmp_path: Path) -> Authority:
    """The cluster CA where the pki stage leaves it (as test_preflight.py's fixture)."""
    directory = tmp_path / "credentials" / "kubernetes"
    directory.mkdir(parents=True)
    ca = Authority(directory, "ca")
    ca.crt, ca.key_file = (
        ca.crt.rename(directory / "ca.crt"),
        ca.key_file.rename(directory / "ca.key"),
    )
    return ca


def run_tasks(
    tmp_path: Path, files: list[str], **extra: Any
) -> tuple[int, dict[str, Any], str, dict[str, Any]]:
    """Run the role's task files on host m1 (local connection); return the exit code, the
    failures by task name, the whole output, and the recap of m1."""
    inventory = {
        "all": {
            "hosts": {"m1": {"ip": "127.0.0.1"}},
            "children": {"registry": {"hosts": {"m1": None}}},
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            },
        }
    }
    root = tmp_path / "root"
    variables = {
        "harbor_task_files": files,
        "airlock_cluster_name": "unit",
        "airlock_credentials_dir": str(tmp_path / "credentials"),
        "registry_impl": "harbor",
        "registry_port": PORT,
        "registry_names": [HOSTNAME],
        "registry_storage_dir": str(root / "var/lib/harbor"),
        "registry_harbor_install_dir": str(root / "opt/harbor"),
        # Internal paths of the role (vars/main.yml), moved under the temporary directory.
        "_registry_harbor_tls_dir": str(root / "etc/harbor/tls"),
        "_registry_harbor_cert": str(root / "etc/harbor/tls/registry.crt"),
        "_registry_harbor_key": str(root / "etc/harbor/tls/registry.key"),
        "_registry_harbor_ca": str(root / "etc/harbor/tls/ca.crt"),
        **extra,
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "extra.json").write_text(json.dumps(variables))
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", "-e", f"@{tmp_path / 'extra.json'}",
         PLAYBOOK],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(result.stdout + result.stderr)
    failures: dict[str, Any] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get("m1", {})
            if res.get("failed"):
                failures[task["task"]["name"]] = res.get("msg")
    return result.returncode, failures, result.stdout + result.stderr, report["stats"]["m1"]


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        assert isinstance(doc, dict) and key in doc, ".".join(path)
        doc = doc[key]
    return doc


# --- configure.yml: certificate, passwords, harbor.yml -------------------------------------
def test_harbor_yml_has_what_prepare_needs_and_keeps_its_passwords_secret(
    tmp_path: Path, cluster_ca: Authority
) -> None:
    unit = tmp_path / "harbor.service"
    files = ["pki", "harbor/configure"]
    # The install phase (unpack.yml) made it.
    (tmp_path / "root/opt/harbor").mkdir(mode=0o700, parents=True)
    code, failures, output, stats = run_tasks(tmp_path, files, harbor_unit_dest=str(unit))
    assert code == 0 and not failures, failures
    root = tmp_path / "root"
    creds = tmp_path / "credentials" / "registry"
    config = root / "opt/harbor/harbor.yml"

    # Modes: harbor.yml holds both passwords; so do the controller's files; the key.
    assert config.stat().st_mode & 0o777 == 0o600 and config.stat().st_uid == os.getuid()
    assert (root / "etc/harbor/tls/registry.key").stat().st_mode & 0o777 == 0o600
    passwords = {}
    for name in ("harbor-admin.password", "harbor-db.password"):
        assert (creds / name).stat().st_mode & 0o777 == 0o600
        passwords[name] = (creds / name).read_text()
        assert len(passwords[name]) == 32 and passwords[name].isalnum()

    doc = yaml.safe_load(config.read_text())
    for path in REQUIRED:
        assert _get(doc, path) not in (None, ""), ".".join(path)
    # What validate() refuses, and what clients need.
    assert doc["hostname"] == HOSTNAME and doc["hostname"] not in PLACEHOLDERS["hostname"]
    assert doc["https"]["port"] == PORT
    assert doc["https"]["certificate"] == str(root / "etc/harbor/tls/registry.crt")
    assert doc["https"]["private_key"] == str(root / "etc/harbor/tls/registry.key")
    assert {doc["https"]["certificate"], doc["https"]["private_key"]}.isdisjoint(
        PLACEHOLDERS["cert"]
    )
    # HTTPS is on, so Harbor's proxy only redirects on the published HTTP port; no external_url
    # (which could point clients at http://) and no internal override of the protocol.
    assert doc["http"] == {"port": 80} and "external_url" not in doc
    assert doc["log"]["level"] in LOG_LEVELS
    assert doc["data_volume"] == str(root / "var/lib/harbor")
    assert doc["harbor_admin_password"] == passwords["harbor-admin.password"]
    assert doc["database"]["password"] == passwords["harbor-db.password"]
    assert doc["database"]["password"] != doc["harbor_admin_password"]
    # The certificate Harbor serves is the one tasks/pki.yml issued and checked.
    issued = (creds / "m1.crt").read_text()
    assert (root / "etc/harbor/tls/registry.crt").read_text() == issued
    assert (root / "etc/harbor/tls/ca.crt").read_bytes() == cluster_ca.crt.read_bytes()

    # Never printed: not in the play's output (results, diffs, invocations).
    for secret in passwords.values():
        assert secret not in output

    # The unit as the role renders it.
    text = unit.read_text()
    compose = root / "opt/harbor/docker-compose.yml"
    assert f"ExecStart=/usr/bin/docker compose --file {compose} up --detach" in text
    assert f"ExecStop=/usr/bin/docker compose --file {compose} down\n" in text
    assert f"ConditionPathExists={compose}" in text
    assert f"WorkingDirectory={root / 'opt/harbor'}" in text
    for line in ("Requires=docker.service", "Type=oneshot", "RemainAfterExit=yes",
                 "WantedBy=multi-user.target"):  # fmt: skip
        assert f"\n{line}\n" in text, line

    # A second run changes nothing, and nothing is generated again.
    code, failures, _, stats = run_tasks(tmp_path, files, harbor_unit_dest=str(unit))
    assert code == 0 and stats["changed"] == 0, (failures, stats)
    assert yaml.safe_load(config.read_text()) == doc


def test_configure_writes_harbor_yml_root_only_without_a_diff() -> None:
    """The task as written: 0600, no diff, and every password task no_log."""
    tasks = yaml.safe_load((REPO / "roles/registry/tasks/harbor/configure.yml").read_text())
    [write] = [
        t
        for t in tasks
        if t.get("ansible.builtin.template", {}).get("src") == "harbor/harbor.yml.j2"
    ]
    assert write["ansible.builtin.template"]["mode"] == "0600"
    assert write["ansible.builtin.template"]["owner"] == "root" and write["diff"] is False
    # Every task that generates or reads a password hides it.
    touching = [t["name"] for t in tasks if "_registry_harbor_passwords" in json.dumps(t)
                or "ansible.builtin.password" in json.dumps(t)]  # fmt: skip
    assert touching and all(
        next(t for t in tasks if t["name"] == n).get("no_log") is True for n in touching
    ), touching


# --- unpack.yml: the installer's layout -----------------------------------------------------
def _installer(path: Path, members: list[str]) -> Path:
    """A tarball shaped like Harbor's offline installer: harbor/<member> for each member."""
    with tarfile.open(path, "w:gz") as tar:
        for name in members:
            data = b"#!/bin/sh\nexit 0\n"
            info = tarfile.TarInfo(f"harbor/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_installer_laid_out_as_install_sh_expects_is_unpacked_once(tmp_path: Path) -> None:
    archive = _installer(tmp_path / "good.tgz", [*INSTALLER_FILES, "harbor.v2.15.2.tar.gz"])
    code, failures, _, stats = run_tasks(
        tmp_path, ["harbor/unpack"], registry_harbor_installer_archive=str(archive)
    )
    assert code == 0 and not failures, failures
    install = tmp_path / "root/opt/harbor"
    assert (install / "install.sh").stat().st_mode & 0o111
    assert (install / ".airlock-installer.sha256").read_text().strip()
    assert stats["changed"] > 0
    code, failures, _, stats = run_tasks(
        tmp_path, ["harbor/unpack"], registry_harbor_installer_archive=str(archive)
    )
    assert code == 0 and stats["changed"] == 0, (failures, stats)


@pytest.mark.parametrize(
    ("members", "missing"),
    [
        (
            [f for f in INSTALLER_FILES if f != "install.sh"] + ["harbor.v2.15.2.tar.gz"],
            "install.sh",
        ),
        (INSTALLER_FILES, "harbor.v*.tar.gz"),
        (["install.sh"], "prepare, common.sh, harbor.yml.tmpl, harbor.v*.tar.gz"),
    ],
)
def test_an_installer_without_harbors_layout_is_refused_in_one_line(
    tmp_path: Path, members: list[str], missing: str
) -> None:
    archive = _installer(tmp_path / "bad.tgz", members)
    code, failures, _, _ = run_tasks(
        tmp_path, ["harbor/unpack"], registry_harbor_installer_archive=str(archive)
    )
    assert code != 0
    [message] = failures.values()
    assert message.startswith(
        f"registry: {archive} is not Harbor's offline installer: it lacks {missing} "
    )
    assert "\n" not in message
    # Not recorded as unpacked: the next run checks again.
    assert not (tmp_path / "root/opt/harbor/.airlock-installer.sha256").exists()


# --- preflight: the bundle must carry the installer and the compose plugin -----------------
@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({}, "harbor-offline-installer or docker-compose"),
        ({"registry_harbor_installer_archive": "/srv/harbor.tgz"}, "docker-compose"),
    ],
)
def test_preflight_refuses_harbor_without_the_bundles_artifacts(
    tmp_path: Path, cluster_ca: Authority, settings: dict[str, str], missing: str
) -> None:
    code, failures, stats = run_stage(
        tmp_path, {"m1": {"ip": "127.0.0.1"}}, registry_impl="harbor",
        airlock_artifacts_dir=str(tmp_path / "artifacts"),
        registry_names=[HOSTNAME],
        **settings,
    )  # fmt: skip
    assert code != 0
    [message] = failures["m1"]
    assert message.startswith(f"registry: the bundle on m1 has no {missing} (artifact map in ")
    assert "offline-bundle/manifest.yml lists them as slots" in message
    assert "registry_impl: distribution" in message and "\n" not in message
    assert stats["m1"]["changed"] == 0
    assert not (tmp_path / "credentials" / "registry").exists()


def test_reset_removes_harbor_and_its_files_and_then_has_nothing_to_do(tmp_path: Path) -> None:
    """tasks/harbor/reset.yml under a temporary root: every file of an install goes (the unit
    is absent here, so nothing is stopped; Docker's packages are left out: this machine's
    apt is not the test's)."""
    root = tmp_path / "root"
    paths = {
        "_registry_harbor_unit_file": str(root / "etc/systemd/system/harbor.service.absent"),
        "_registry_harbor_log_dir": str(root / "var/log/harbor"),
        "_registry_harbor_compose_plugin": str(
            root / "usr/local/lib/docker/cli-plugins/docker-compose"
        ),
        "_registry_harbor_docker_dir": str(root / "var/lib/docker"),
        "registry_harbor_packages": [],
    }
    made = [
        root / "opt/harbor/harbor.yml",
        root / "etc/harbor/tls/registry.key",
        root / "var/lib/harbor/database/pg",
        root / "var/log/harbor/core.log",
        root / "usr/local/lib/docker/cli-plugins/docker-compose",
        root / "var/lib/docker/image/overlay2/repositories.json",
    ]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    code, failures, _, stats = run_tasks(tmp_path, ["harbor/reset"], **paths)
    assert code == 0 and not failures, failures
    left = [p for p in made if p.exists()]
    assert left == [], left
    for directory in (
        "opt/harbor",
        "etc/harbor",
        "var/lib/harbor",
        "var/log/harbor",
        "var/lib/docker",
    ):
        assert not (root / directory).exists(), directory
    assert stats["changed"] > 0
    code, failures, _, stats = run_tasks(tmp_path, ["harbor/reset"], **paths)
    assert code == 0 and stats["changed"] == 0, (failures, stats)
