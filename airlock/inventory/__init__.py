"""Static validation of an inventory: everything that can be known without touching a host.

`load` reads the files (`source`: YAML with lines, duplicate keys, one-line errors) into
the model (`model`: `Inventory`, `Problem`); `rules` holds the registered checks, `specs`
what the roles accept. Each problem is one line: FILE:LINE, what is wrong, how to fix it.
"""

from airlock.inventory.load import BUILTIN_GROUPS, load_inventory
from airlock.inventory.model import Definition, Inventory, Problem
from airlock.inventory.rules import GROUPS, RULES, Rule, rules_table, validate
from airlock.inventory.specs import known_settings, nearest, option_specs

__all__ = [
    "BUILTIN_GROUPS",
    "GROUPS",
    "RULES",
    "Definition",
    "Inventory",
    "Problem",
    "Rule",
    "known_settings",
    "load_inventory",
    "nearest",
    "option_specs",
    "rules_table",
    "validate",
]
