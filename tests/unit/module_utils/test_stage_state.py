"""What a stage left on a host (module_utils.stage_state) and the controller's digest of
its inputs (lookup stage_fingerprint): a re-deploy skips a stage only when both hold, and
every kind of drift a user could cause makes it run again."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.airlock.cluster.plugins.lookup.stage_fingerprint import (
    declared_names,
    digests,
    renewal,
    tree_digest,
)
from ansible_collections.airlock.cluster.plugins.module_utils.stage_state import (
    StageStateError,
    current,
    difference,
    read_record,
    record_path,
    write_record,
)

ROOT = Path(__file__).resolve().parents[3]
F1 = {"code/roles": "a1", "inventory": "b1", "var:etcd_data_dir": "c1"}
F2 = {"code/roles": "a1", "inventory": "b1", "var:etcd_data_dir": "c2"}


def _converge(tmp_path: Path) -> tuple[Path, list[str]]:
    conf = tmp_path / "etc" / "app"
    conf.mkdir(parents=True)
    (conf / "app.conf").write_text("port = 1\n")
    (conf / "pki").mkdir()
    (conf / "pki" / "server.key").write_text("key\n")
    binary = tmp_path / "bin-app"
    binary.write_bytes(b"\0" * 4096)
    return conf, [str(conf), str(binary)]


def _recorded(paths: list[str], fingerprint: dict[str, str] = F1) -> dict:
    return {"fingerprint": fingerprint, **current(paths, [])}


def test_an_untouched_host_is_converged(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    assert difference(_recorded(paths), F1, current(paths, [])) == ""


def test_no_record_runs_the_stage(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    assert difference(None, F1, current(paths, [])) == "no record of an earlier run"


def test_changed_inputs_run_the_stage(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    assert difference(_recorded(paths), F2, current(paths, [])) == (
        "its inputs changed: var:etcd_data_dir"
    )


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (lambda c: (c / "app.conf").write_text("port = 2\n"), "app.conf changed"),
        # Same size, mtime put back: the content tells.
        (
            lambda c: (
                (st := (c / "app.conf").stat()),
                (c / "app.conf").write_text("port = 9\n"),
                os.utime(c / "app.conf", ns=(st.st_atime_ns, st.st_mtime_ns)),
            ),
            "app.conf changed",
        ),
        (lambda c: os.chmod(c / "pki" / "server.key", 0o604), "server.key changed"),
        (lambda c: (c / "app.conf").unlink(), "app.conf was removed"),
        (lambda c: (c / "extra.conf").write_text("x\n"), "extra.conf is new"),
        (lambda c: shutil.rmtree(c / "pki"), "was removed"),
    ],
)
def test_every_edit_by_hand_runs_the_stage(tmp_path: Path, drift, expected: str) -> None:
    conf, paths = _converge(tmp_path)
    before = _recorded(paths)
    drift(conf)
    assert expected in difference(before, F1, current(paths, []))


def test_the_same_bytes_written_again_are_no_change(tmp_path: Path) -> None:
    conf, paths = _converge(tmp_path)
    before = _recorded(paths)
    (conf / "app.conf").unlink()
    (conf / "app.conf").write_text("port = 1\n")  # kubeadm join rewrites ca.crt like this
    assert difference(before, F1, current(paths, [])) == ""


def test_a_program_replaced_by_one_of_the_same_size_is_seen(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    big = tmp_path / "bin-big"
    big.write_bytes(b"\0" * (2 << 20))
    before = _recorded([*paths, str(big)])
    big.write_bytes(b"\1" * (2 << 20))
    assert "bin-big changed" in difference(before, F1, current([*paths, str(big)], []))


def test_what_another_stage_adds_below_an_excluded_path_does_not_count(tmp_path: Path) -> None:
    conf, paths = _converge(tmp_path)
    (conf / "unpacked").mkdir()
    exclude = [str(conf / "unpacked")]
    before = {"fingerprint": F1, **current(paths, [], exclude)}
    (conf / "unpacked" / "node_exporter-1").mkdir()
    assert difference(before, F1, current(paths, [], exclude)) == ""
    (conf / "app.conf").write_text("port = 3\n")
    assert "app.conf changed" in difference(before, F1, current(paths, [], exclude))


def test_a_stopped_service_runs_the_stage(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    before = _recorded(paths)
    before["services"] = {"app.service": {"ActiveState": "active", "UnitFileState": "enabled"}}
    now = current(paths, [])
    now["services"] = {"app.service": {"ActiveState": "inactive", "UnitFileState": "enabled"}}
    assert difference(before, F1, now) == (
        "app.service is inactive/enabled, not as the last run left it"
    )


def test_an_object_deleted_behind_the_stage_runs_it(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    state = tmp_path / "objects"
    state.write_text("uid-1/1\n")
    probes = [{"name": "the flannel DaemonSet", "argv": ["cat", str(state)]}]
    before = {"fingerprint": F1, **current(paths, [], probes=probes)}
    assert difference(before, F1, current(paths, [], probes=probes)) == ""
    state.write_text("uid-2/1\n")  # deleted and applied again by someone
    assert difference(before, F1, current(paths, [], probes=probes)) == (
        "probe 'the flannel DaemonSet' answers differently than after the last run"
    )
    state.unlink()  # the probe now fails
    assert "answers differently" in difference(before, F1, current(paths, [], probes=probes))


def test_the_record_is_private_and_read_back(tmp_path: Path) -> None:
    _, paths = _converge(tmp_path)
    path = record_path(str(tmp_path / "stages"), "etcd")
    write_record(path, _recorded(paths))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert read_record(path) == _recorded(paths)


def test_a_torn_record_runs_the_stage(tmp_path: Path) -> None:
    path = record_path(str(tmp_path), "etcd")
    path.write_text('{"fingerprint": ')
    assert read_record(path) is None


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a b"])
def test_stage_names_stay_in_the_directory(name: str) -> None:
    with pytest.raises(StageStateError):
        record_path("/var/lib/airlock/stages", name)


def test_relative_paths_are_refused() -> None:
    with pytest.raises(StageStateError, match="absolute"):
        current(["etc/app"], [])


def test_the_code_digest_follows_content(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("---\n")
    first = tree_digest(tmp_path)
    (tmp_path / "tasks" / "__pycache__").mkdir()
    (tmp_path / "tasks" / "__pycache__" / "x.pyc").write_bytes(b"1")
    assert tree_digest(tmp_path) == first
    (tmp_path / "tasks" / "main.yml").write_text("---\n# changed\n")
    assert tree_digest(tmp_path) != first


def test_inputs_are_every_variable_the_roles_declare() -> None:
    names = declared_names(ROOT, ["airlock", "etcd"])
    # a setting, a role default, a derived private variable of the role
    assert {"airlock_kube_version", "etcd_data_dir", "_etcd_artifacts"} <= names  # all declared
    assert not any(name.startswith("_airlock_stage") for name in names)


def _certificate(path: Path, days_left: float) -> None:
    """A self-signed certificate at `path` that expires `days_left` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, path.stem)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_a_certificate_falling_due_runs_the_stage_that_renews_it(tmp_path: Path) -> None:
    """A gated stage that renews certificates within N days of expiry must not be skipped
    once one falls due, though no input and no file changed."""
    _certificate(tmp_path / "server-m1.crt", days_left=40)
    _certificate(tmp_path / "peer-m1.crt", days_left=200)
    pattern = [str(tmp_path / "*-*.crt")]
    today = renewal(pattern, 30)
    assert today == {str(tmp_path / "peer-m1.crt"): "ok", str(tmp_path / "server-m1.crt"): "ok"}
    # Fifteen days later server-m1 expires within the 30-day window.
    later = renewal(pattern, 30, now=datetime.now(UTC) + timedelta(days=15))
    assert later[str(tmp_path / "server-m1.crt")] == "due"
    recorded = digests({**_PARTS, "renew": today})
    reason = difference(
        {"fingerprint": recorded, "files": {}, "services": {}},
        digests({**_PARTS, "renew": later}),
        {"files": {}, "services": {}},
    )
    assert reason == f"its inputs changed: renew:{tmp_path / 'server-m1.crt'}"


def test_no_window_counts_no_certificate_and_garbage_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    assert renewal([str(tmp_path / "*.crt")], 0) == {}
    assert renewal([str(tmp_path / "*.crt")], 30) == {str(tmp_path / "bad.crt"): "unreadable"}
    assert renewal([str(tmp_path / "none-*.crt")], 30) == {}


_PARTS = {
    "stage": "etcd",
    "inventory": "i",
    "code": {"roles": "r"},
    "controller": {},
    "groups": {},
    "facts": {},
    "vars": {},
}
