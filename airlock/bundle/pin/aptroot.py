"""A private apt for one distribution and architecture, to resolve packages anywhere.

`AptRoot(dir, arch)` is apt with its own configuration, sources, keyrings, lists, cache
and an empty dpkg status, all under `dir` (APT_CONFIG points at `dir/apt.conf`, which
sets every Dir:: path, so neither /etc/apt nor /var/lib/apt of the build machine is
read or written). Its architecture is `APT::Architecture`, so an amd64 machine resolves
arm64 just as well.

Every source line names the keyrings (and, where pinned, the key fingerprints) that may
sign its Release file (`signed-by=`); there is no `trusted=yes`. A Release that does
not verify is refused (ReleaseNotTrusted), as is any index apt could not fetch
(`APT::Update::Error-Mode any`), so a stale list never passes for a fresh one.

`resolve(names)` asks apt's own solver what installing `names` (without Recommends) on
an empty system takes: the packages and every dependency, one version each, installable
together, the newest across the suites. On a real host apt installs only what is not
already there. Then `apt-get download --print-uris` gives each .deb's URL, size and the
SHA256 of the signed index (`Acquire::ForceHash`: Ubuntu's indexes list SHA512 first).
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airlock.errors import AirlockError

_INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[[^\]]*\] )?\((?P<version>\S+) .*\[(?P<arch>[^\]\s]+)\]\)"
)
_URI = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$")
_NOT_FOUND = (
    re.compile(r"Unable to locate package (\S+)"),
    re.compile(r"Package '?([^' ]+)'? has no installation candidate"),
    re.compile(r"Couldn't find any package by (?:glob|regex) '([^']+)'"),
)
_GPG_ERROR = re.compile(r"^GPG error: (?P<url>\S+) (?P<suite>\S+) (?:In)?Release: ")
_GPG_STATUS = re.compile(r"\b(?:NO_PUBKEY|BADSIG|EXPKEYSIG|REVKEYSIG|NODATA) ?\S*")
_SIGNATURE = re.compile(
    r"NO_PUBKEY|is not signed|signatures were invalid|couldn't be verified|BADSIG|"
    r"EXPKEYSIG|REVKEYSIG|NODATA|not signed by a key|Signed-By"
)


class AptError(AirlockError):
    """apt could not read the archive or resolve the packages."""


class ReleaseNotTrusted(AptError):
    """A Release file is not signed by a key this distribution trusts."""


class PackageNotFound(AptError):
    """A package name the archive does not have."""

    def __init__(self, message: str, names: Sequence[str]) -> None:
        super().__init__(message)
        self.names = tuple(names)


@dataclass(frozen=True)
class SourceLine:
    """One `deb` line: an archive URL, a suite, components, who may sign its Release."""

    url: str
    suite: str
    components: tuple[str, ...]
    signed_by: tuple[str, ...]  # keyring paths, then pinned key fingerprints

    def render(self, arch: str) -> str:
        options = f"arch={arch} signed-by={','.join(self.signed_by)}"
        return f"deb [{options}] {self.url} {self.suite} {' '.join(self.components)}\n"


@dataclass(frozen=True)
class ResolvedDeb:
    """One .deb as the signed index describes it."""

    name: str
    version: str
    arch: str  # the package's Architecture: the root's, or "all"
    url: str  # as apt fetches it (percent-encoded)
    filename: str
    size: int
    sha256: str


class AptRoot:
    """apt confined to `root`, resolving for `arch`; `label` names it in messages."""

    def __init__(self, root: Path, arch: str, label: str) -> None:
        self.root = root.resolve()
        self.arch = arch
        self.label = label

    @property
    def config(self) -> Path:
        return self.root / "apt.conf"

    def configure(self, lines: Sequence[SourceLine]) -> None:
        """Write the configuration and sources; keep lists already fetched."""
        etc = self.root / "etc"
        for sub in (
            etc / "apt.conf.d",
            etc / "preferences.d",
            etc / "sources.list.d",
            etc / "trusted.gpg.d",
            self.root / "state" / "lists" / "partial",
            self.root / "cache" / "archives" / "partial",
            self.root / "log",
        ):
            sub.mkdir(parents=True, exist_ok=True)
        (self.root / "status").write_text("", encoding="utf-8")
        (etc / "sources.list").write_text(
            "".join(line.render(self.arch) for line in lines), encoding="utf-8"
        )
        self.config.write_text(self._config_text(), encoding="utf-8")

    def _config_text(self) -> str:
        etc, root = self.root / "etc", self.root
        settings = {
            "Dir::Etc": etc,
            "Dir::Etc::main": etc / "apt.conf",
            "Dir::Etc::parts": etc / "apt.conf.d",
            "Dir::Etc::sourcelist": etc / "sources.list",
            "Dir::Etc::sourceparts": etc / "sources.list.d",
            "Dir::Etc::preferences": etc / "preferences",
            "Dir::Etc::preferencesparts": etc / "preferences.d",
            "Dir::Etc::trusted": etc / "trusted.gpg",
            "Dir::Etc::trustedparts": etc / "trusted.gpg.d",
            "Dir::State": root / "state",
            "Dir::State::status": root / "status",
            "Dir::Cache": root / "cache",
            "Dir::Log": root / "log",
            "APT::Architecture": self.arch,
            "APT::Update::Error-Mode": "any",
            "APT::Install-Recommends": "false",
            "Acquire::Languages": "none",
            "Acquire::AllowInsecureRepositories": "false",
            "Acquire::AllowDowngradeToInsecureRepositories": "false",
        }
        lines = [f'{key} "{value}";' for key, value in settings.items()]
        lines.append(f'APT::Architectures {{ "{self.arch}"; }};')
        return "// Written by airlock (airlock/bundle/aptroot.py).\n" + "\n".join(lines) + "\n"

    def update(self) -> None:
        """Fetch and verify the indexes of every source."""
        proc = self._apt(["apt-get", "-q", "update"])
        text = f"{proc.stdout}\n{proc.stderr}"
        untrusted = [line for line in _messages(text) if _SIGNATURE.search(line)]
        if untrusted:
            where, why = _signature_problem(untrusted)
            raise ReleaseNotTrusted(
                f"{self.label}: refused the Release file of {where}: not signed by a trusted "
                f"key (apt: {why}). The mirror serves another (or a tampered) archive, or the "
                "archive changed its signing key: check --mirror, and the keyring and pinned "
                "fingerprints in airlock/bundle/distros.py"
            )
        if proc.returncode:
            raise AptError(
                f"{self.label}: apt-get update failed: {'; '.join(_messages(text)) or text}; "
                "check that the mirror URL serves this distribution and is reachable "
                "(this apt reads no settings from /etc/apt: set http_proxy for a proxy)"
            )

    def resolve(self, names: Sequence[str]) -> list[ResolvedDeb]:
        """`names` and everything they depend on (no Recommends), sorted by name."""
        chosen = self._solve(names)
        debs = self._uris(chosen)
        return sorted(debs, key=lambda d: d.name)

    def download(self, name: str, dest: Path) -> Path:
        """Fetch one package's .deb into `dest` (apt checks it against the signed index)."""
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        proc = self._apt(["apt-get", "-q", "download", name], cwd=dest)
        if proc.returncode:
            raise AptError(
                f"{self.label}: could not download {name}: "
                f"{'; '.join(_messages(proc.stderr)) or proc.stderr.strip()}"
            )
        new = sorted(set(dest.glob(f"{name}_*.deb")) - before) or sorted(dest.glob(f"{name}_*.deb"))
        if not new:
            raise AptError(f"{self.label}: apt-get download {name} left no .deb in {dest}")
        return new[-1]

    def _solve(self, names: Sequence[str]) -> list[tuple[str, str, str]]:
        proc = self._apt(["apt-get", "-s", "-q", "install", "--no-install-recommends", *names])
        if proc.returncode:
            self._explain_solve_failure(proc, names)
        chosen = []
        for line in proc.stdout.splitlines():
            match = _INST.match(line)
            if match:
                chosen.append((match["name"], match["version"], match["arch"]))
        if not chosen:
            raise AptError(f"{self.label}: apt chose nothing to install for {' '.join(names)}")
        return chosen

    def _explain_solve_failure(
        self, proc: subprocess.CompletedProcess[str], names: Sequence[str]
    ) -> None:
        text = f"{proc.stdout}\n{proc.stderr}"
        missing = sorted({m for pattern in _NOT_FOUND for m in pattern.findall(text)})
        if missing:
            raise PackageNotFound(
                f"{self.label}: no package {', '.join(missing)} in this archive; fix the "
                "name in the manifest's os_packages (apt-cache search NAME on a host of "
                "that distribution finds the right one)",
                missing,
            )
        detail = " ".join(line.strip() for line in text.splitlines() if line.startswith(" "))
        raise AptError(
            f"{self.label}: apt cannot install {' '.join(names)} together: "
            f"{detail or '; '.join(_messages(text))}; change the os_packages list"
        )

    def _uris(self, chosen: Sequence[tuple[str, str, str]]) -> list[ResolvedDeb]:
        wanted = {(name, arch): version for name, version, arch in chosen}
        proc = self._apt(
            [
                "apt-get",
                "-q",
                "-o",
                "Acquire::ForceHash=SHA256",
                "download",
                "--print-uris",
                *(f"{name}={version}" for name, version, _ in chosen),
            ]
        )
        if proc.returncode:
            raise AptError(
                f"{self.label}: apt-get download --print-uris failed: "
                f"{'; '.join(_messages(proc.stderr)) or proc.stderr.strip()}"
            )
        debs = []
        for line in proc.stdout.splitlines():
            match = _URI.match(line.strip())
            if not match:
                continue
            # The pool's file name: apt's own (match["file"]) carries the epoch as "1%3a".
            filename = urllib.parse.unquote(match["url"].rsplit("/", 1)[1])
            name, _, rest = filename.removesuffix(".deb").partition("_")
            arch = rest.rsplit("_", 1)[-1]
            if (name, arch) not in wanted:
                continue
            debs.append(
                ResolvedDeb(
                    name,
                    wanted.pop((name, arch)),
                    arch,
                    match["url"],
                    filename,
                    int(match["size"]),
                    match["sha"],
                )
            )
        if wanted:
            raise AptError(
                f"{self.label}: apt gave no SHA256-pinned URL for "
                f"{', '.join(f'{n}={v}' for (n, _), v in sorted(wanted.items()))}"
            )
        return debs

    def _apt(self, cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "APT_CONFIG": str(self.config), "LC_ALL": "C"}
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd
            )
        except FileNotFoundError:
            raise AptError(
                f"{cmd[0]} is not installed; pinning OS packages needs apt "
                "(run it on a Debian or Ubuntu machine)"
            ) from None


def _signature_problem(lines: Sequence[str]) -> tuple[str, str]:
    """("URL SUITE, SUITE", "NO_PUBKEY ...") from apt's GPG error lines."""
    suites: dict[str, list[str]] = {}
    for line in lines:
        repo = _GPG_ERROR.match(line)
        if repo and repo["suite"] not in suites.setdefault(repo["url"], []):
            suites[repo["url"]].append(repo["suite"])
    statuses = list(dict.fromkeys(s for line in lines for s in _GPG_STATUS.findall(line)))
    where = "; ".join(f"{url} {', '.join(names)}" for url, names in suites.items())
    return where or "a suite", ", ".join(statuses) or "; ".join(lines)


def _messages(text: str) -> list[str]:
    """apt's error and warning lines, without the prefix."""
    return [
        line[3:].strip()
        for line in text.splitlines()
        if line.startswith(("E: ", "W: ")) and "unsandboxed" not in line
    ]
