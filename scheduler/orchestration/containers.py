"""What a Berth container is: its labels (its identity), its name, and the spec it is created
from. Pure data, shared by the planner that decides and the engine boundary that acts."""
from __future__ import annotations

from dataclasses import dataclass, field

# Every container Berth creates carries these labels; the reconciler never touches others.
LABEL_MANAGED = "io.berth.managed"
LABEL_APPLICATION = "io.berth.application"
LABEL_SERVICE = "io.berth.service"
LABEL_SLOT = "io.berth.slot"
LABEL_REVISION = "io.berth.revision"
# The host port Berth allocated to it, so an adopted container keeps its port (and its place
# in discovery) and the port is never handed out twice.
LABEL_PORT = "io.berth.port"
# Which Berth created it (see Config.installation_id): only its own containers are ever
# reused, adopted or removed, and only its own orphans are swept.
LABEL_INSTALLATION = "io.berth.installation"


def service_key(application: str, service: str) -> str:
    """A service's name across applications, as the slot planner knows it."""
    return f"{application}_{service}"


def slot_name(key: str, revision: int | str, slot: int) -> str:
    return f"{key}_{revision}_{slot}"


def container_name(application: str, service: str, revision: int | str, slot: int) -> str:
    """`shop_api_3_0` is slot 0 of revision 3 of shop's api. Application and service names
    hold no '_' (lowercase letters, digits and '-'), so no two slots share a name: with '-'
    as the separator, shop + api-x and shop-api + x both made shop-api-x-1-0."""
    return slot_name(service_key(application, service), revision, slot)


def identity_labels(installation: str, application: str, service: str, revision: int | str,
                    slot: int) -> dict[str, str]:
    return {LABEL_MANAGED: "1", LABEL_INSTALLATION: installation, LABEL_APPLICATION: application,
            LABEL_SERVICE: service, LABEL_SLOT: str(slot), LABEL_REVISION: str(revision)}


def is_slot(labels: dict[str, str], installation: str, application: str, service: str,
            revision: int | str, slot: int) -> bool:
    """Whether a container with `labels` is exactly this slot of ours (a name proves nothing:
    another application, or another Berth on the same engine, may hold it)."""
    wanted = identity_labels(installation, application, service, revision, slot)
    return all(labels.get(key) == value for key, value in wanted.items())


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: int | None = None
    network_mode: str = "none"  # "none", "host" or "bridge"
    ports: dict[int, int] = field(default_factory=dict)  # container port -> host port (bridge)
    healthcheck: dict | None = None  # {"test": [...], "interval_s": 1, "retries": 3, ...}
    # Hardening, on every container: no privilege gain (setuid binaries), every capability
    # dropped but these, a bounded number of processes, optionally a read-only root.
    cap_add: tuple[str, ...] = ()
    pids_limit: int = 512
    read_only: bool = False
