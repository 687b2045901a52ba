"""Reading what really runs: the hosts as a round needs them, and the containers carrying
given labels on every live host, one list call per host, in parallel."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from berth import db
from berth.config import Config

from berth.engine import ContainerState, EngineError
from berth.hosts.liveness import is_alive
from berth.hosts.overview import stale_after
from berth.hosts.services import Connect, endpoint_of
from berth.models import Host, Pool


# Lists in flight at once: a list is one short call (a few ms on an engine), so 32 lanes
# list 500 hosts in about 16 rounds of the slowest engine's answer.
LIST_PARALLEL = 32


@dataclass(frozen=True)
class HostView:
    """A host as one reconcile pass needs it, read before the transaction is released."""

    id: int
    name: str
    address: str
    alive: bool
    admin_state: str
    port_range: tuple[int, int]
    endpoint: object  # berth.engine.Endpoint
    pool: str | None = None  # where it is: a release's stages go by these
    idc: str | None = None


@dataclass(frozen=True)
class Seen:
    host_id: int
    container: ContainerState


def host_views(hosts, alive: dict[int, bool], pools: dict[int, str] | None = None) -> list[HostView]:
    pools = pools or {}
    return [HostView(h.id, h.name, h.address, alive[h.id], h.admin_state,
                     (h.port_range_start, h.port_range_end), endpoint_of(h, timeout_s=10),
                     pools.get(h.pool_id), h.idc)
            for h in hosts]


def read_hosts(config: Config, now: datetime) -> list[HostView]:
    """Every host; alive when up with a fresh heartbeat and not in maintenance."""
    stale = stale_after(config.probe_interval_s)
    hosts = list(db.session.scalars(select(Host)))
    alive = {h.id: h.admin_state != "maintenance"
             and is_alive(h.liveness, h.last_heartbeat_at, now, stale) for h in hosts}
    pools = {pool_id: name for pool_id, name in db.session.execute(select(Pool.id, Pool.name))}
    return host_views(hosts, alive, pools)


def list_labelled(labels: dict[str, str], hosts: list[HostView], connect: Connect
                  ) -> tuple[list[Seen], set[int]]:
    """Containers carrying `labels` on the live hosts, read in parallel, and the hosts that
    could not be read this time."""
    def read(host: HostView):
        engine = connect(host.endpoint)
        try:
            return engine.list_containers(labels)
        finally:
            engine.close()

    live = [h for h in hosts if h.alive]
    seen, unreadable = [], set()
    with ThreadPoolExecutor(max_workers=max(1, min(LIST_PARALLEL, len(live)))) as pool:
        futures = {h.id: pool.submit(read, h) for h in live}
    for host_id, future in futures.items():
        try:
            seen += [Seen(host_id, c) for c in future.result()]
        except EngineError:
            unreadable.add(host_id)
    return seen, unreadable
