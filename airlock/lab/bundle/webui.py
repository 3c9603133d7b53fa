"""Prometheus' web UI for the lab's Prometheus build, from the npm registry.

Prometheus' Go module carries the UI's sources (web/ui: a pnpm workspace with its
lockfile) but not the built assets; upstream's release runs `make assets-compress`
(pnpm install, `build_ui.sh`, `scripts/compress_assets.sh`) and builds with
`-tags builtinassets`. This does the same on the module copy gobuild prepares, for the
Mantine UI (Prometheus 3's default; the old React UI is left out), with pnpm at a pinned
version installed into the cache by npm and its store kept in the cache.

Needs Node.js >= 20.19 and npm (vite 8's floor); pnpm 10 runs on it (pnpm 11 needs 22).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from airlock.errors import AirlockError, CommandError

PNPM_VERSION = "10.34.9"
NODE_MINIMUM = (20, 19)


def build_prometheus_ui(src: Path, cache: Path) -> None:
    """Build web/ui's Mantine UI in `src` (a Prometheus module copy) and embed it."""
    _require_node()
    pnpm = _pnpm(cache)
    ui = src / "web" / "ui"
    env = {
        **os.environ,
        "CI": "",
        "PATH": f"{pnpm.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "npm_config_store_dir": str(cache / "pnpm-store"),
        "npm_config_update_notifier": "false",
    }
    _run([str(pnpm), "install", "--frozen-lockfile"], ui, env)
    _run([str(pnpm), "run", "build:mantine-ui"], ui, env)
    _run(["bash", "scripts/compress_assets.sh"], src, env)
    if not (ui / "embed.go").is_file():
        raise AirlockError(f"{ui}: the UI build wrote no embed.go; see its output above")


def _require_node() -> None:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise AirlockError(
            "Node.js and npm are not installed: the lab's Prometheus embeds its web UI, "
            "built from the npm registry; install Node.js >= 20.19 with npm, then run "
            "`airlock bundle build --profile lab` again (built programs are cached)"
        )
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.(\d+)", out.stdout.strip())
    if match is None or (int(match.group(1)), int(match.group(2))) < NODE_MINIMUM:
        raise AirlockError(
            f"Node.js {out.stdout.strip() or '?'} is too old for Prometheus' web UI build "
            f"(needs >= {'.'.join(map(str, NODE_MINIMUM))}); install a newer Node.js and "
            "run `airlock bundle build --profile lab` again"
        )


def _pnpm(cache: Path) -> Path:
    """pnpm PNPM_VERSION under <cache>/node, installed by npm once."""
    prefix = cache / "node" / f"pnpm-{PNPM_VERSION}"
    pnpm = prefix / "node_modules" / ".bin" / "pnpm"
    if not pnpm.is_file():
        _run(
            [
                "npm",
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"pnpm@{PNPM_VERSION}",
            ],
            cache,
            dict(os.environ),
        )
    return pnpm


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise CommandError(
            cmd,
            proc.returncode,
            (proc.stderr or proc.stdout)[-2000:],
            "the npm registry must be reachable for Prometheus' web UI",
        )
