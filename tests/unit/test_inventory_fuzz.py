"""Property: whatever YAML or bytes land in hosts.yml, group_vars/ or host_vars/,
`airlock check --static` answers with an exit code and one-line messages, never a
traceback, and writes nothing outside the inventory's temp directory."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example"
TARGETS = (
    "hosts.yml",
    "group_vars/all/cluster.yml",
    "group_vars/kube_node.yml",
    "host_vars/cp1.yml",
    "host_vars/cp9.yml",
)
NAMES = st.sampled_from(
    [
        "all",
        "hosts",
        "children",
        "vars",
        "etcd",
        "kube_node",
        "lb",
        "cp1",
        "node1",
        "ip",
        "airlock_api_vip",
        "airlock_api_port",
        "airlock_pod_cidr",
        "airlock_cni",
        "airlock_extra_vars",
        "airlock_extra_groups",
        "ansible_host",
        "ansible_hsot",
        "x",
        "1",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["10.20.0.5", "0.0.0.0", "10.0.0.0/8", "{{ x }}", "{{", "", "flannel"]),
    st.text(max_size=12),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(NAMES, st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
CONTENT = st.one_of(
    DATA.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.binary(max_size=200),
    st.text(max_size=200),
)

_WRITES: list[str] = []
_WATCH: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Record every file opened for writing while the property runs."""
    if not _WATCH or event != "open" or not args or not isinstance(args[0], (str, bytes)):
        return
    mode, flags = args[1], args[2]
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    )
    if writing:
        _WRITES.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,  # nothing written to .hypothesis/ in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(target=st.sampled_from(TARGETS), content=CONTENT)
def test_any_file_content_gives_one_line_answers(target: str, content: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="airlock-fuzz-") as tmp:
        inv = Path(tmp) / "inv"
        shutil.copytree(EXAMPLE, inv)
        path = inv / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        _, err = _run(["check", "--static", "-i", str(inv)])
        assert "Traceback" not in err
        assert "internal error" not in err, err
        for line in err.splitlines():
            assert line.startswith(("inventory ", "  ", "nothing was changed")), line
        outside = [
            w for w in _WRITES if w != os.devnull and not os.path.realpath(w).startswith(tmp)
        ]
        assert not outside, outside


def _run(argv: list[str]) -> tuple[str, str]:
    import contextlib
    import io

    # TextIOWrapper, not StringIO: Ansible's Display wants a stream with a .buffer
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(2))
    _WRITES.clear()
    _WATCH.append(True)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        _WATCH.clear()
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode())
    assert rc in (0, 1), texts[1]
    return texts[0], texts[1]
