"""Carrying out the plans' engine actions, in parallel lanes per host, with no database
transaction open: pulls once per host and image, then creates and starts, then removals;
wave after wave. Every call goes by container id or by a name whose labels are checked."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from berth.config import Config
from berth.engine import EngineError, NameInUse
from berth.hosts.services import Connect
from berth.projects import pull_credentials
from berth.registry_auth import project_of
from berth.workloads.observe import HostView
from registry_sync.nearest import PullTable, Source, pull_sources
from registry_sync.registries import PRIMARY
from scheduler.orchestration.containers import LABEL_APPLICATION, LABEL_INSTALLATION, is_slot
from scheduler.orchestration.state import AppPlan, Boot, Discard, EngineAction, Launch

# Engine calls run in parallel, host by host in turn: at most PER_HOST_PARALLEL at once on
# one engine, MAX_PARALLEL in all. A start mostly waits (the container's first process runs
# inside its CPU quota: ~2 s at 0.01 CPU), so 16 per engine beat 8 (benchmarks/deploy.py);
# 32 gained nothing more on a 2-core test bed.
PER_HOST_PARALLEL = 16
MAX_PARALLEL = 64


log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one action: `container_id` of a started container, or the error."""

    action: EngineAction
    app_id: int
    error: str | None = None
    container_id: str | None = None
    skipped: bool = False
    pulled_from: str | None = None  # the registry a Launch's image came from, if pulled

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped


class _Lanes:
    """A thread pool for engine calls, bounded per host (see PER_HOST_PARALLEL)."""

    def __init__(self, host_ids: Iterable[int]):
        hosts = set(host_ids)
        self._limits = {h: threading.BoundedSemaphore(PER_HOST_PARALLEL) for h in hosts}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(MAX_PARALLEL, PER_HOST_PARALLEL * len(hosts))))

    def submit(self, host_id: int, call: Callable, *args, after: Future | None = None) -> Future:
        """Run call(*args) on `host_id`'s lane, once `after` (if any) is done; its error is ours."""
        def run():
            if after is not None:
                after.result()  # waited for outside the host's limit: it takes no engine slot
            with self._limits[host_id]:
                return call(*args)
        return self._pool.submit(run)

    def __enter__(self) -> "_Lanes":
        return self

    def __exit__(self, *exc_info) -> None:
        self._pool.shutdown(wait=True)


def round_robin(items: list, host_of: Callable) -> list:
    """`items` reordered host by host in turn, each host's own order kept, so that a FIFO pool
    works on every host from the start instead of on the first host's whole share first."""
    queues: dict[int, list] = {}
    for item in items:
        queues.setdefault(host_of(item), []).append(item)
    ordered, turn = [], 0
    while len(ordered) < len(items):
        for queue in queues.values():
            if turn < len(queue):
                ordered.append(queue[turn])
        turn += 1
    return ordered


class Executor:
    def __init__(self, config: Config, hosts: dict[int, HostView], connect: Connect,
                 pull_table: PullTable | None = None):
        self.config, self.hosts, self.connect = config, hosts, connect
        self.pull_table = pull_table or PullTable()

    def run(self, plans: list[AppPlan], *, stop: Callable[[], bool] = lambda: False
            ) -> dict[int, list[Outcome]]:
        """Every plan's waves, wave by wave across all plans; an action whose slot failed in
        an earlier wave, or any later wave of a strict (teardown) plan after a failure, is
        skipped; so is everything once `stop()` says the pass ran out of time."""
        outcomes: dict[int, list[Outcome]] = {plan.app_id: [] for plan in plans}
        for wave in range(max((len(p.waves) for p in plans), default=0)):
            batch = []
            for plan in plans:
                if wave >= len(plan.waves):
                    continue
                done = outcomes[plan.app_id]
                failed_slots = {_slot(o.action) for o in done if not o.ok}
                halted = plan.strict and any(not o.ok for o in done)
                for action in plan.waves[wave]:
                    outcome = Outcome(action, plan.app_id)
                    if halted or stop() or _slot(action) in failed_slots:
                        outcome.skipped = True
                        done.append(outcome)
                    else:
                        batch.append(outcome)
            self._run_batch(batch)
            for outcome in batch:
                outcomes[outcome.app_id].append(outcome)
        return outcomes

    def _run_batch(self, batch: list[Outcome]) -> None:
        if not batch:
            return
        order = round_robin(batch, lambda o: o.action.host_id)
        with _Lanes(o.action.host_id for o in batch) as lanes:
            pulls: dict[tuple[int, str], Future] = {}
            futures = []
            for outcome in order:
                action = outcome.action
                if isinstance(action, Launch):
                    key = (action.host_id, action.spec.image)
                    if key not in pulls:
                        pulls[key] = lanes.submit(action.host_id, self._pull, *key)
                    futures.append((outcome, lanes.submit(action.host_id, self._launch, action,
                                                          after=pulls[key])))
                elif isinstance(action, Boot):
                    futures.append((outcome, lanes.submit(action.host_id, self._boot, action)))
                else:
                    futures.append((outcome, lanes.submit(action.host_id, self._discard, action)))
        for outcome, future in futures:
            error = future.exception()
            if isinstance(error, EngineError):
                outcome.error = str(error)[:1000]
            elif error is not None:
                raise error
            else:
                outcome.container_id = future.result()
                if isinstance(outcome.action, Launch):
                    outcome.pulled_from = pulls[(outcome.action.host_id,
                                                 outcome.action.spec.image)].result()

    def _engine(self, host_id: int):
        return self.connect(self.hosts[host_id].endpoint)

    def _pull(self, host_id: int, image: str) -> str | None:
        """Pull `image` from the nearest source that has it (registry_sync.nearest) and
        return that source's name; a mirror's copy is tagged with the primary's name, which
        the container spec uses. A source that fails gives way to the next one: an IDC whose
        mirror is down keeps deploying from the next. None: the image is not Berth's."""
        registry, _, path = image.partition("/")
        if registry != self.config.registry_host or not project_of(path.split(":")[0].split("@")[0]):
            engine = self._engine(host_id)
            try:
                engine.pull(image)
            finally:
                engine.close()
            return None
        username, password = pull_credentials.issue(self.config.secret_key, path.split("/")[0])
        primary = Source(PRIMARY, registry)
        sources = pull_sources(self.hosts[host_id].idc, path, self.pull_table, primary)
        engine = self._engine(host_id)
        try:
            for source in sources:
                if source is primary:
                    engine.pull(image, username, password)
                    return source.name
                try:
                    engine.pull(f"{source.host}/{path}", username, password)
                    engine.tag(f"{source.host}/{path}", image)
                    return source.name
                except EngineError as error:
                    log.warning("pull of %s from mirror %s on %s failed, trying the next "
                                "source: %s", path, source.name, self.hosts[host_id].name, error)
        finally:
            engine.close()
        return None  # not reached: the primary is always the last source

    def _launch(self, action: Launch) -> str:
        """Create and start; a container that already holds the name is used only if its
        labels say it is this very slot (a retried pass finds its own container)."""
        spec = action.spec
        engine = self._engine(action.host_id)
        try:
            try:
                state = engine.create(spec)
            except NameInUse:
                state = engine.inspect(spec.name)
                if state is None or not is_slot(
                        state.labels, spec.labels[LABEL_INSTALLATION], spec.labels[LABEL_APPLICATION],
                        action.service, action.revision, action.slot):
                    raise EngineError(f"the name {spec.name} on {self.hosts[action.host_id].name} "
                                      f"is taken by a container that is not this slot's") from None
            if state.status != "running":
                engine.start(state.id)
            return state.id
        finally:
            engine.close()

    def _boot(self, action: Boot) -> str:
        engine = self._engine(action.host_id)
        try:
            engine.start(action.container_id)
            return action.container_id
        finally:
            engine.close()

    def _discard(self, action: Discard) -> None:
        engine = self._engine(action.host_id)
        try:
            engine.remove(action.container_id)
        finally:
            engine.close()


def _slot(action: EngineAction) -> tuple[str, int, int]:
    return (action.service, action.slot, action.revision)
