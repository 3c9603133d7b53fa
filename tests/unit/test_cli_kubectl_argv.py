"""`airlock kubectl` passes kubectl's own flags through wherever they stand."""

from __future__ import annotations

from airlock.cli import build_parser
from airlock.cli.kubectl import kubectl_argv


def _args(*argv: str) -> list[str]:
    parsed = build_parser().parse_args(kubectl_argv(list(argv)))
    return parsed.args[1:] if parsed.args[:1] == ["--"] else parsed.args


def test_kubectl_flags_before_the_verb_go_to_kubectl() -> None:
    assert _args("kubectl", "-i", "inv", "-n", "ns", "get", "pods") == ["-n", "ns", "get", "pods"]
    assert _args("--debug", "kubectl", "--inventory=inv", "-A", "get", "pods") == [
        "-A",
        "get",
        "pods",
    ]


def test_airlock_options_stay_airlocks_and_other_commands_are_untouched() -> None:
    parsed = build_parser().parse_args(kubectl_argv(["kubectl", "--path", "-i", "inv"]))
    assert parsed.path and parsed.inventory and not [a for a in parsed.args if a != "--"]
    assert _args("kubectl", "-i", "inv", "get", "nodes") == ["get", "nodes"]
    assert kubectl_argv(["deploy", "-i", "inv", "--full"]) == ["deploy", "-i", "inv", "--full"]
