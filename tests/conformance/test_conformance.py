"""`make conformance`: the upstream Kubernetes conformance suite against a cluster airlock
installed on the lab.

e2e.test and ginkgo of the lab bundle's Kubernetes release, and the test images the
`[Conformance]` specs run, are built here (airlock.lab.conformance.build: Go modules,
Debian's archive, busybox from source). A fresh --internal lab (one control plane, two
workers, the registry on w2 with `airlock_image_source: registry`) gets the platform from
the lab bundle with `airlock deploy`; the test images are pushed into the registry's
read-only mirror under the names the suite pulls (registry.k8s.io/e2e-test-images/...), so
every node pulls them as it pulls the bundle's images, with imagePullPolicy Always too.
ginkgo then runs the specs on the control plane host against the API server, one SIG at a
time, in parallel (`[Serial]` specs run last on one process, as ginkgo orders them), and
writes a JUnit report per part.

Every failure is classified by tests/conformance/known.yml (cluster defect, lab limit, test
image gap, each with its reason); the test fails on a failure no entry explains. The
summary (specs run, passed, failed by class, wall time) is printed and written with the
report and the suite's log to .airlock/artifacts/conformance/.

Settings (environment): AIRLOCK_CONFORMANCE_FOCUS (a ginkgo regex; default every
`[Conformance]` spec), AIRLOCK_CONFORMANCE_SKIP, AIRLOCK_CONFORMANCE_PROCS (default 4),
AIRLOCK_E2E_KEEP=1 keeps the lab, AIRLOCK_E2E_REUSE=1 runs on a kept one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from airlock.lab.conformance import build, report
from tests.conftest import ROOT, lab_hosts, run_airlock
from tests.labexec import lab_exec, podman_env, wait_for

LAB = "conformance"
SUBNET = "10.77.22.0/24"
RUNNER = "m1"
# The registry host: its read-only mirror serves the bundle's images and the test images
# (airlock_image_source registry), filled through the loader (registry_mirror_port + 1).
REGISTRY_HOST = "w2"
MIRROR_PORT = 5001
LOADER_PORT = MIRROR_PORT + 1
LOADER_UNIT = "airlock-registry-mirror-load"
AUTHFILE = "/root/.airlock-conformance-auth.json"
WORKDIR = "/var/lib/airlock-conformance"
ARTIFACTS = ROOT / ".airlock" / "artifacts" / "conformance"
KNOWN = Path(__file__).with_name("known.yml")
FOCUS = os.environ.get("AIRLOCK_CONFORMANCE_FOCUS", r"\[Conformance\]")
SKIP = os.environ.get("AIRLOCK_CONFORMANCE_SKIP", "")
PROCS = os.environ.get("AIRLOCK_CONFORMANCE_PROCS", "4")
# The suite runs one SIG at a time (each with its own JUnit report, so a run cut short
# keeps what finished); the last part is every [Conformance] spec of no SIG listed here.
SIGS = (
    "sig-node", "sig-apps", "sig-api-machinery", "sig-network", "sig-storage", "sig-cli",
    "sig-auth", "sig-scheduling", "sig-instrumentation", "sig-architecture",
)  # fmt: skip
# The whole suite on 2 cores: hours, not minutes.
PART_TIMEOUT = 4 * 3600


def _copy_in(host: str, source: Path, dest: str) -> None:
    subprocess.run(
        ["podman", "cp", str(source), f"airlock-{LAB}-{host}:{dest}"],
        check=True,
        env=podman_env(),
        capture_output=True,
    )


@pytest.fixture(scope="module")
def built() -> build.Built:
    started = time.monotonic()
    made = build.build(ROOT / ".airlock" / "cache" / "lab")
    print(f"\nconformance programs and images ready in {time.monotonic() - started:.0f}s")
    return made


@pytest.fixture(scope="module")
def lab(built: build.Built) -> Iterator[Path]:
    keep = os.environ.get("AIRLOCK_E2E_KEEP") == "1"
    bundle = run_airlock("bundle", "build", "--profile", "lab", timeout=4 * 3600)
    assert bundle.returncode == 0, bundle.stdout[-4000:] + bundle.stderr
    kept = ROOT / ".airlock" / "labs" / LAB / "inventory"
    hosts = (
        contextlib.nullcontext(kept)
        if os.environ.get("AIRLOCK_E2E_REUSE") == "1" and kept.is_dir()
        else lab_hosts(
            LAB, "--internal", "--masters", "1", "--workers", "2", "--subnet", SUBNET,
            "--registry", REGISTRY_HOST, "--image-source", "registry",
            timeout=1800, keep=keep,
        )
    )  # fmt: skip
    with hosts as inventory:
        run_airlock("check", "-i", str(inventory), check=True, timeout=600)
        deploy = run_airlock("deploy", "-i", str(inventory), timeout=3600)
        assert deploy.returncode == 0, deploy.stdout[-6000:] + deploy.stderr
        yield inventory


def _serve_images(built: build.Built, inventory: Path) -> None:
    """Every test image into the registry host's mirror under its own name, digest kept,
    through the loader (the mirror's writable twin, which the registry role also runs only
    while it pushes); the nodes then pull them from the mirror as they pull the bundle's,
    imagePullPolicy Always included."""
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    ip = next(
        str(group["hosts"][REGISTRY_HOST]["ip"])
        for group in _groups(hosts)
        if REGISTRY_HOST in (group.get("hosts") or {})
    )
    password = (inventory / ".credentials" / "registry" / "admin.password").read_text().strip()
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    auth = json.dumps({"auths": {f"{ip}:{LOADER_PORT}": {"auth": token}}})
    lab_exec(LAB, REGISTRY_HOST, "install", "-m", "0600", "/dev/stdin", AUTHFILE, stdin=auth)
    lab_exec(LAB, REGISTRY_HOST, "systemctl", "start", LOADER_UNIT)
    try:
        wait_for(
            "the mirror's loader answering over verified TLS",
            lambda: lab_exec(
                LAB, REGISTRY_HOST, "curl", "-sf", "-o", "/dev/null", f"https://{ip}:{LOADER_PORT}/",
                check=False,
            ).returncode == 0,
            timeout=60,
            every=2,
        )  # fmt: skip
        for reference, archive in built.archives.items():
            _copy_in(REGISTRY_HOST, archive, "/tmp/conformance-image.oci.tar")
            lab_exec(
                LAB, REGISTRY_HOST, "skopeo", "copy", "--quiet", "--preserve-digests",
                "--dest-authfile", AUTHFILE, "oci-archive:/tmp/conformance-image.oci.tar",
                f"docker://{ip}:{LOADER_PORT}/{reference}",
                timeout=600,
            )  # fmt: skip
        for reference in built.archives:
            name, tag = reference.split("/", 1)[1].rsplit(":", 1)
            url = f"https://{ip}:{MIRROR_PORT}/v2/{reference.split('/')[0]}/{name}/manifests/{tag}"
            served = lab_exec(
                LAB, REGISTRY_HOST, "curl", "-sf", "-o", "/dev/null", "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json", url, check=False,
            )  # fmt: skip
            assert served.returncode == 0, f"the mirror does not serve {reference} ({url})"
    finally:
        lab_exec(LAB, REGISTRY_HOST, "systemctl", "stop", LOADER_UNIT, check=False)
        lab_exec(LAB, REGISTRY_HOST, "rm", "-f", AUTHFILE, "/tmp/conformance-image.oci.tar")


def _groups(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _groups(value)


def _parts() -> list[tuple[str, str, str]]:
    """(name, focus, skip) of each part of the run."""
    listed = "|".join(re.escape(f"[{sig}]") for sig in SIGS)
    parts = [(sig, rf"{re.escape(f'[{sig}]')}.*(?:{FOCUS})", SKIP) for sig in SIGS]
    parts.append(("other", FOCUS, "|".join(filter(None, (SKIP, listed)))))
    return parts


def _run_part(name: str, focus: str, skip: str) -> Path:
    """One part with ginkgo on the runner host; returns its JUnit report here. ginkgo's exit
    code is not the verdict (known failures make it non-zero): the report is."""
    report_name = f"junit-{name}.xml"
    argv = [
        "env", "KUBERNETES_CONFORMANCE_TEST=y",
        "/usr/local/bin/ginkgo", f"--procs={PROCS}", f"--focus={focus}",
        *([f"--skip={skip}"] if skip else []),
        "--timeout=4h", "--no-color", "--silence-skips", "-v",
        f"--junit-report={report_name}", f"--output-dir={WORKDIR}",
        "/usr/local/bin/e2e.test", "--",
        "--kubeconfig=/etc/kubernetes/admin.conf", "--provider=skeleton",
        f"--report-dir={WORKDIR}", "--disable-log-dump",
    ]  # fmt: skip
    with (ARTIFACTS / f"e2e-{name}.log").open("w") as log:
        subprocess.run(
            ["podman", "exec", f"airlock-{LAB}-{RUNNER}", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=podman_env(),
            timeout=PART_TIMEOUT,
            check=False,
        )
    local = ARTIFACTS / report_name
    copied = subprocess.run(
        ["podman", "cp", f"airlock-{LAB}-{RUNNER}:{WORKDIR}/{report_name}", str(local)],
        env=podman_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, f"{name}: no JUnit report (see {log.name}): {copied.stderr}"
    return local


def test_the_images_are_the_ones_the_suite_names(built: build.Built) -> None:
    listed = subprocess.run(
        [str(built.programs["e2e.test"]), "--list-images"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [ref for ref in built.archives if ref not in listed] == [], listed


def test_conformance(built: build.Built, lab: Path) -> None:
    _serve_images(built, lab)
    for program in ("e2e.test", "ginkgo"):
        _copy_in(RUNNER, built.programs[program], f"/usr/local/bin/{program}")
    lab_exec(LAB, RUNNER, "mkdir", "-p", WORKDIR)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    started = time.monotonic()
    specs: list[report.Spec] = []
    for name, focus, skip in _parts():
        part_started = time.monotonic()
        part = report.read_junit(_run_part(name, focus, skip))
        specs += part
        ran = [s for s in part if s.status != "skipped"]
        failed = sum(1 for s in part if s.status == "failed")
        print(
            f"\n{name}: {len(ran)} specs, {failed} failed, {time.monotonic() - part_started:.0f}s"
        )
    wall = time.monotonic() - started
    summary = report.summarize(specs, report.load_known(KNOWN))
    text = report.render(summary, wall, FOCUS)
    (ARTIFACTS / "summary.txt").write_text(text + "\n")
    notes = "\n".join(f"  {ref}: {note}" for ref, note in built.notes.items())
    (ARTIFACTS / "images.txt").write_text(notes + "\n")
    print(f"\n{text}\n\ntest images (how they differ from upstream's):\n{notes}")
    shutil.copyfile(KNOWN, ARTIFACTS / "known.yml")
    assert [s for s in summary.specs if s.status != "skipped"], "no spec ran (focus?)"
    assert not summary.unexplained, (
        f"{len(summary.unexplained)} failures no entry of {KNOWN.relative_to(ROOT)} explains: "
        + "; ".join(s.name for s in summary.unexplained)
    )
