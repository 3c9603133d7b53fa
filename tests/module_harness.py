"""Run one of our Ansible modules in-process, as Ansible would, for tests.

`run_module(module_py, params)` builds the module with `params` (check mode on request)
and returns what `run_module()` returns; a `fail_json` raises ModuleFailed, whose text is
the module's message (so `pytest.raises(ModuleFailed, match=...)` reads like the error a
user would see) and whose `.result` is everything the module reported.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ansible.module_utils.testing import patch_module_args


class ModuleFailed(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


def run_module(module_py: ModuleType, params: dict[str, Any], check_mode: bool = False) -> dict:
    """build_module() + run_module() of `module_py` with `params`."""
    args = dict(params)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        module = module_py.build_module()

    def fail_json(**kwargs: Any) -> None:
        raise ModuleFailed(kwargs)

    module.fail_json = fail_json
    return module_py.run_module(module)
