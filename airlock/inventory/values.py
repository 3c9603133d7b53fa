"""A setting's value for one host, as the controller can know it without Ansible: the
inventory's value, else the role default (the argument specs), with simple `{{ var }}`
references resolved the same way. A value that needs Ansible's templating is refused with
the setting's name. `airlock monitoring open` and `airlock kubectl` read files the deploy
wrote on the controller through it."""

from __future__ import annotations

import re
from typing import Any

from airlock.errors import AirlockError

_SIMPLE_REF = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def setting(
    name: str, host_vars: dict[str, Any], base: dict[str, Any], where: str, use: str
) -> str:
    """`name` for one host (`host_vars` over `base`); `where` and `use` (the command) go in
    the error."""
    raw = host_vars.get(name, base.get(name))
    if raw is None:
        raise AirlockError(f"{where}: {name} has no value; set it in the inventory")
    text = str(raw)
    for _ in range(5):
        match = _SIMPLE_REF.search(text)
        if not match:
            break
        inner = setting(match.group(1), host_vars, base, where, use)
        text = text[: match.start()] + inner + text[match.end() :]
    if "{{" in text or "{%" in text:
        raise AirlockError(
            f"{where}: {name} is {raw!r}, which only Ansible can template; set it to a plain "
            f"value in the inventory to use `{use}`"
        )
    return text
