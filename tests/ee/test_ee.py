"""airlock's execution environment on the lab, as AWX would use it (`make e2e-ee`).

The EE image is built offline (`airlock ee build`: podman build --network=none from the
lab's Debian 12 image and the bundle's wheels), then ansible-runner runs, with its process
isolation in that image (container mode, as AWX does), `airlock check`'s per-host play
from the collection inside the image (`airlock.cluster.check`) against two lab hosts. The
private data directory holds only a one-line playbook importing it and the lab's
inventory: no role, module or collection of this checkout is visible to the run.

The container runs as root here (`--user=0`): podman runs rootful on this machine, so the
lab's SSH key (root's, 0600) is unreadable to the image's default user 1000; AWX passes its
machine credential to the EE itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airlock import __version__
from tests.conftest import lab_hosts, run_airlock
from tests.labexec import podman_env

LAB = "ee"
SUBNET = "10.77.23.0/24"
IMAGE = f"localhost/airlock-ee:{__version__}"
RUNNER = Path(sys.executable).parent / "ansible-runner"


@pytest.fixture(scope="module")
def image() -> str:
    built = run_airlock("ee", "build", timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert built.stdout.strip().endswith(IMAGE)
    return IMAGE


@pytest.fixture(scope="module")
def inventory() -> Iterator[Path]:
    with lab_hosts(LAB, "--masters", "1", "--workers", "1", "--subnet", SUBNET) as found:
        yield found


def test_the_check_play_runs_from_the_collection_inside_the_ee(
    image: str, inventory: Path, tmp_path: Path
) -> None:
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    (private / "project" / "check.yml").write_text(
        "- name: airlock check's per-host play, from the collection in the EE\n"
        "  ansible.builtin.import_playbook: airlock.cluster.check\n"
    )
    shutil.copytree(inventory, private / "inventory", ignore=shutil.ignore_patterns(".*"))
    settings = yaml.safe_load((inventory / "group_vars" / "all" / "lab.yml").read_text())
    keys = Path(settings["ansible_ssh_private_key_file"]).parent
    run = subprocess.run(
        [str(RUNNER), "run", str(private), "-p", "check.yml", "--process-isolation",
         "--process-isolation-executable", "podman", "--container-image", image,
         "--container-option=--network=host", "--container-option=--user=0",
         "--container-volume-mount", f"{keys}:{keys}:ro"],
        capture_output=True, text=True, timeout=900, check=False, env=podman_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    print("\n" + "\n".join(run.stdout.strip().splitlines()[-4:]))
    events = [
        json.loads(path.read_text()) for path in (private / "artifacts").glob("*/job_events/*.json")
    ]
    checked = {
        e["event_data"]["host"]: e["event_data"]["res"]
        for e in events
        if e.get("event") == "runner_on_ok"
        and e["event_data"].get("resolved_action") == "airlock.cluster.host_preflight"
    }
    assert set(checked) == {"m1", "w1"}, sorted(checked)
    for host, res in checked.items():
        assert {c["check"] for c in res["checks"]} >= {"os", "swap"}, (host, res)
    played = {
        e["event_data"].get("playbook") for e in events if e.get("event") == "playbook_on_start"
    }
    assert played == {"check.yml"}
    paths = {
        e["event_data"].get("task_path", "")
        for e in events
        if "task_path" in e.get("event_data", {})
    }
    assert any(
        p.startswith("/usr/share/ansible/collections/ansible_collections/airlock/cluster/")
        for p in paths
    ), sorted(paths)[:5]
