"""module_utils/command.py, the runner every module uses: lookup, argv, environment, rc check."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.airlock.cluster.plugins.module_utils.command import (
    ERROR_TAIL,
    Command,
    find_program,
)

from tests.module_harness import ModuleFailed


class _Module:
    """Enough of AnsibleModule: PATH lookups and run_command, recording every call."""

    def __init__(self, rc: int = 0, out: str = "", err: str = "") -> None:
        self.answer = (rc, out, err)
        self.calls: list[dict[str, Any]] = []
        self.lookups: list[tuple[str, bool, list[str]]] = []

    def get_bin_path(self, name: str, required: bool = False, opt_dirs=None) -> str | None:
        self.lookups.append((name, required, opt_dirs))
        return None if name == "absent" else f"/found/{name}"

    def run_command(self, argv, environ_update=None, check_rc=False):
        self.calls.append({"argv": argv, "env": environ_update, "check_rc": check_rc})
        return self.answer

    def fail_json(self, **kwargs: Any) -> None:
        raise ModuleFailed(kwargs)


@pytest.mark.parametrize(
    ("program", "required", "expected"),
    [
        ("kubeadm", True, "/found/kubeadm"),
        ("/opt/bin/ctr", True, "/opt/bin/ctr"),  # a path is used as given
        ("absent", False, None),
    ],
)
def test_find_program(program, required, expected):
    assert find_program(_Module(), program, ["/usr/local/bin"], required) == expected


def test_run_builds_argv_and_environment_without_a_shell():
    module = _Module(0, "out", "")
    cmd = Command(module, "ctr", env={"X": "1"}, base_args=["--address", "/s"])
    assert module.lookups == [("ctr", True, [])]
    assert cmd.run(["images", "list"]) == (0, "out", "")
    assert module.calls == [
        {
            "argv": ["/found/ctr", "--address", "/s", "images", "list"],
            "env": {"LC_ALL": "C", "X": "1"},
            "check_rc": False,
        }
    ]


def test_a_failure_without_what_is_returned():
    assert Command(_Module(3, "", "boom"), "kubectl").run(["get"]) == (3, "", "boom")


@pytest.mark.parametrize(
    ("out", "err", "hint", "message"),
    [
        ("", "Error: boom\n", "", "kubeadm init failed (exit 1): Error: boom"),
        ("only stdout", "", "", "kubeadm init failed (exit 1): only stdout"),
        ("", "boom", "is it up?", "kubeadm init failed (exit 1): boom; is it up?"),
    ],
)
def test_a_failure_with_what_fails_the_module(out, err, hint, message):
    with pytest.raises(ModuleFailed) as failed:
        Command(_Module(1, out, err), "kubeadm").run(["init"], what="kubeadm init", hint=hint)
    assert failed.value.result == {"msg": message, "rc": 1}


def test_a_failure_message_keeps_the_end_of_long_output():
    err = "x" * ERROR_TAIL + "the end"
    with pytest.raises(ModuleFailed, match=r"the end$") as failed:
        Command(_Module(1, "", err), "ip").run(["addr"], what="ip addr")
    assert len(failed.value.result["msg"]) < ERROR_TAIL + 40
