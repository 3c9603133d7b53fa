"""The distributions whose OS packages the bundle pins: their archives and who signs them.

Each distribution is resolved per architecture in a private apt root
(airlock.bundle.pin.aptroot) from the suites below, on the mirrors the manifest declares
(`{mirror.debian}`, ...), so `--mirror` points resolution at an internal mirror too.

Release files are always signature-checked. Debian's are checked against the build
machine's debian-archive-keyring (installed and kept current by its own apt). Ubuntu's
keyring is not in Debian 12's main, so it is taken from the build machine if present
(`/usr/share/keyrings/ubuntu-archive-keyring.gpg`, package ubuntu-keyring), otherwise
fetched as the `ubuntu-keyring` package from Debian's signed archive (trixie main:
apt checks it against Debian's keyring); either way, only the pinned fingerprint below
may sign, and a keyring without it is refused.

Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>,
F6EC B376 2474 EDA9 D21B  7022 8719 20D1 991B C93C: the key that signs the InRelease
files of jammy, noble and their -updates/-security pockets (checked with gpg on
archive.ubuntu.com's files when this was written); the same full fingerprint is what
debootstrap reports for jammy ("Valid Release signature (key id F6ECB376...C93C)") and
what Launchpad bug 1881278 ("Ship 2018 Archive key in xenial's ubuntu-keyring") added
to older releases. The 2012 key (790B C727 ... C0B2 1F32) is in the same keyring but no
longer signs these suites, so it is not trusted here. A key rotation shows up as a
refused Release naming the new key: check it against ubuntu.com and add it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airlock.errors import AirlockError

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
UBUNTU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
UBUNTU_ARCHIVE_KEY_2018 = "F6ECB3762474EDA9D21B7022871920D1991BC93C"


class DistroError(AirlockError):
    """A distribution or architecture airlock does not know."""


@dataclass(frozen=True)
class Source:
    """Suites of one archive: a `deb` line per suite."""

    mirror: str  # name of a mirror in the manifest's mirrors:
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class KeyringPackage:
    """A keyring shipped as a .deb in an archive the build machine already trusts."""

    mirror: str
    suite: str
    component: str
    package: str
    member: str  # the keyring's path inside the package
    trusted_by: str  # keyring that signs that archive


@dataclass(frozen=True)
class Keyring:
    """Which keys may sign a distribution's Release files."""

    local: str  # keyring file on the build machine, used when present
    fingerprints: tuple[str, ...] = ()  # only these keys (empty: every key of the file)
    package: KeyringPackage | None = None  # where to get it when `local` is absent


@dataclass(frozen=True)
class Distro:
    """One distribution release, per architecture."""

    key: str  # "debian-12": the name in the manifest's os_packages
    title: str
    codename: str  # hosts find its repository as debs/<codename>/
    sources: Mapping[str, tuple[Source, ...]]  # architecture -> sources
    keyring: Keyring

    def sources_for(self, arch: str) -> tuple[Source, ...]:
        try:
            return self.sources[arch]
        except KeyError:
            raise DistroError(
                f"{self.key}: no archive for architecture {arch!r}; "
                f"pick one of {', '.join(sorted(self.sources))}"
            ) from None

    @property
    def mirrors(self) -> set[str]:
        return {s.mirror for sources in self.sources.values() for s in sources}


def _debian(number: str, codename: str) -> Distro:
    sources = (
        Source("debian", (codename, f"{codename}-updates"), ("main",)),
        Source("debian-security", (f"{codename}-security",), ("main",)),
    )
    return Distro(
        f"debian-{number}",
        f"Debian {number} ({codename})",
        codename,
        {"amd64": sources, "arm64": sources},
        Keyring(DEBIAN_KEYRING),
    )


# Ubuntu's keyring, from Debian's signed archive when the build machine has none.
UBUNTU_KEYRING_FROM_DEBIAN = KeyringPackage(
    mirror="debian",
    suite="trixie",
    component="main",
    package="ubuntu-keyring",
    member="usr/share/keyrings/ubuntu-archive-keyring.gpg",
    trusted_by=DEBIAN_KEYRING,
)


def _ubuntu(number: str, codename: str) -> Distro:
    # main has haproxy and keepalived; universe has nginx-light (noble: a transitional
    # package to nginx) and what else the lists need outside main.
    suites = (codename, f"{codename}-updates", f"{codename}-security")
    components = ("main", "universe")
    return Distro(
        f"ubuntu-{number}",
        f"Ubuntu {number} ({codename})",
        codename,
        {
            "amd64": (Source("ubuntu", suites, components),),
            "arm64": (Source("ubuntu-ports", suites, components),),
        },
        Keyring(UBUNTU_KEYRING, (UBUNTU_ARCHIVE_KEY_2018,), UBUNTU_KEYRING_FROM_DEBIAN),
    )


DISTROS: Mapping[str, Distro] = {
    d.key: d
    for d in (_debian("12", "bookworm"), _ubuntu("22.04", "jammy"), _ubuntu("24.04", "noble"))
}


def distro(key: str) -> Distro:
    try:
        return DISTROS[key]
    except KeyError:
        raise DistroError(
            f"no distribution {key!r}; airlock pins packages for {', '.join(DISTROS)}"
        ) from None
