"""A lab's shape: its name, hosts and addresses, and where its state and inventory live."""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from airlock.errors import AirlockError
from airlock.paths import project_root, state_dir

LABEL = "io.airlock.lab"
MAX_MASTERS = 9
MAX_WORKERS = 40
MASTER_OFFSET = 10  # m1 is .11
WORKER_OFFSET = 20  # w1 is .21
VIP_OFFSET = 250
BOOT_DEADLINE_S = 90.0
#: How long `lab up` keeps retrying an SSH connection that times out or is refused: a
#: host re-created at an address this machine still has a neighbour entry for (a replaced
#: m3 in make e2e-day2) answered "Connection timed out" while its sshd was running.
SSH_DEADLINE_S = 60.0


@dataclass(frozen=True)
class LabHost:
    name: str
    role: str  # "master" or "worker"
    ip: str


#: airlock_image_source's choices (roles/airlock/meta/argument_specs.yml).
IMAGE_SOURCES = ("import", "registry")


@dataclass
class LabSpec:
    name: str = "lab"
    masters: int = 3
    workers: int = 2
    subnet: str = ""
    internal: bool = False
    inventory_dir: Path | None = None
    kube_version: str | None = None  # a release of the lab profile; None: its default
    monitoring: tuple[str, ...] = ()  # lab hosts of the `monitoring` group
    registry: tuple[str, ...] = ()  # lab hosts of the `registry` group
    ceph: tuple[str, ...] = ()  # lab hosts of the `ceph` group (a lab-file OSD each)
    image_source: str = "import"  # airlock_image_source: import, or registry (the mirror)
    hosts: list[LabHost] = field(default_factory=list)

    def __post_init__(self) -> None:
        _validate_name(self.name)
        if not 1 <= self.masters <= MAX_MASTERS:
            raise AirlockError(f"--masters {self.masters}: give 1 to {MAX_MASTERS}")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise AirlockError(f"--workers {self.workers}: give 0 to {MAX_WORKERS}")
        self.subnet = self.subnet or default_subnet(self.name)
        net = _parse_subnet(self.subnet)
        base = net.network_address
        self.hosts = [
            LabHost(f"m{i}", "master", str(base + MASTER_OFFSET + i))
            for i in range(1, self.masters + 1)
        ] + [
            LabHost(f"w{i}", "worker", str(base + WORKER_OFFSET + i))
            for i in range(1, self.workers + 1)
        ]
        names = [h.name for h in self.hosts]
        for flag, chosen, example in (
            ("--monitoring", self.monitoring, "w1,w2"),
            ("--registry", self.registry, "m1"),
            ("--ceph", self.ceph, "m1,m2,m3"),
        ):
            for host in chosen:
                if host not in names:
                    raise AirlockError(
                        f"{flag} {','.join(chosen)}: {host} is not a host of this lab "
                        f"({', '.join(names)}); give some of them, e.g. {flag} {example}"
                    )
        if self.image_source not in IMAGE_SOURCES:
            raise AirlockError(
                f"--image-source {self.image_source}: give one of {', '.join(IMAGE_SOURCES)}"
            )
        if self.image_source == "registry" and not self.registry:
            raise AirlockError(
                "--image-source registry: nodes would pull from the registry's mirror, but the "
                "lab has no registry host; add one, e.g. --registry m3"
            )
        if self.inventory_dir is None:
            self.inventory_dir = (
                project_root() / "inventories" / "lab"
                if self.name == "lab"
                else state_dir() / "labs" / self.name / "inventory"
            )

    @property
    def network(self) -> str:
        return f"airlock-{self.name}"

    @property
    def vip(self) -> str:
        return str(_parse_subnet(self.subnet).network_address + VIP_OFFSET)

    def container(self, host: LabHost | str) -> str:
        return f"airlock-{self.name}-{host if isinstance(host, str) else host.name}"

    def volume(self, host: LabHost) -> str:
        return f"{self.container(host)}-containerd"


def _validate_name(name: str) -> None:
    if not name or not all(c.isalnum() or c == "-" for c in name) or len(name) > 30:
        raise AirlockError(
            f"lab name {name!r}: use up to 30 letters, digits and '-' (e.g. lab, mol-etcd)"
        )


def _parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise AirlockError(
            f"--subnet {subnet}: not an IPv4 network ({exc}); e.g. 10.77.10.0/24"
        ) from exc
    if net.prefixlen != 24:
        raise AirlockError(f"--subnet {subnet}: the lab uses a /24; e.g. 10.77.10.0/24")
    return net


def default_subnet(name: str) -> str:
    """10.77.10.0/24 for the default lab; a stable per-name /24 for any other."""
    if name == "lab":
        return "10.77.10.0/24"
    return f"10.77.{20 + zlib.crc32(name.encode()) % 230}.0/24"


def lab_dir(name: str) -> Path:
    path = state_dir() / "labs" / name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
