"""Release signals (berth.workloads.signals) on a real dockerd: a busybox container prints
known lines on stdout and stderr in bursts while looks land in the middle of them; after the
last look every line was counted exactly once, the errors among them too. The database is a
test's own SQLite (tests/conftest.py), so no Berth processes are started."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from berth import db, vault
from berth.clock import utcnow
from berth.engine import LABEL_MANAGED, LABEL_SERVICE, ContainerSpec, Endpoint
from berth.engine.sdk import DockerEngine
from berth.hosts import services as hosts
from berth.models import ContainerInstance, Release
from berth.workloads import definitions
from berth.workloads.signals import SETTLE_S, sample_signals
from tests.support import wait_for

BURSTS, PER_BURST, EVERY = 6, 40, 4  # 240 lines; each 4th is an ERROR, on stderr
TOTAL, ERRORS = BURSTS * PER_BURST, BURSTS * PER_BURST // EVERY
# Bursts of lines a second apart (a burst takes milliseconds), then quiet.
SCRIPT = (f"n=0; b=0; while [ $b -lt {BURSTS} ]; do b=$((b+1)); i=0; "
          f"while [ $i -lt {PER_BURST} ]; do i=$((i+1)); n=$((n+1)); "
          f"if [ $((n % {EVERY})) -eq 0 ]; then echo \"ERROR line $n\" >&2; "
          f"else echo \"INFO line $n\"; fi; done; sleep 1; done; "
          "echo done; exec sleep 600")


@pytest.fixture
def own_database(config):
    db.configure(config.database_url)
    vault.configure(config.secrets_keys)
    yield
    db.session.remove()


@pytest.fixture
def chatty(bed, own_database):
    """One running instance of a service in a release, on engine e1, printing SCRIPT."""
    url = bed.engine("e1")["url"]
    engine = DockerEngine(Endpoint(url))
    host = hosts.add_host("bed-e1", url, cluster="testbed", pool="p1")
    app = definitions.create_application(
        {"name": "it-signals", "services": [{"name": "api", "image": bed.image}]}, actor="admin")
    db.session.flush()
    service = app.services[0]
    db.session.add(Release(service=service, from_revision=1, to_revision=2, strategy="canary",
                           status="running", created_at=utcnow() - timedelta(minutes=1)))
    engine.pull(bed.image)
    spec = ContainerSpec(name="it-signals-api", image=bed.image, command=["sh", "-c", SCRIPT],
                         labels={LABEL_MANAGED: "1", LABEL_SERVICE: "it-signals"})
    engine.remove(spec.name)  # a leftover of an interrupted run
    created = engine.create(spec)
    row = ContainerInstance(service=service, slot=0, revision=2, host_id=host.id,
                            name=spec.name, container_id=created.id, state="running")
    db.session.add(row)
    db.session.commit()
    engine.start(created.id)
    yield engine, row.id, created.id
    engine.remove(created.id)
    engine.close()


def counts(row_id: int) -> tuple[int, int]:
    db.session.expire_all()
    row = db.session.get(ContainerInstance, row_id)
    return row.log_lines, row.error_lines


def look() -> dict:
    summary = sample_signals(None)
    db.session.commit()
    return summary


def test_every_line_is_counted_once_across_looks_in_the_middle_of_bursts(chatty):
    engine, row_id, container_id = chatty
    began = time.monotonic()
    looks = []
    while time.monotonic() - began < BURSTS + 2 and len(looks) < 40:
        looks.append(look())
        assert looks[-1]["failures"] == 0, looks[-1]
        time.sleep(0.37)  # out of step with the bursts: looks land before, in and after them
    wait_for(lambda: "done" in (engine.logs_since(container_id, None, time.time()) or []),
             30, "the container to print all its lines")
    time.sleep(SETTLE_S + 0.5)
    looks.append(look())
    assert counts(row_id) == (TOTAL + 1, ERRORS), looks  # + "done"
    assert sum(s["lines"] for s in looks) == TOTAL + 1
    assert sum(s["errors"] for s in looks) == ERRORS
    assert sum(1 for s in looks if 0 < s["lines"] < TOTAL + 1) >= 2, looks  # looks in between
    looks.append(look())
    assert looks[-1]["lines"] == 0 and counts(row_id) == (TOTAL + 1, ERRORS)
    row = db.session.get(ContainerInstance, row_id)
    assert row.logs_container_id == container_id and row.memory_bytes > 0


def test_the_engine_cuts_a_window_exactly(chatty):
    engine, _row_id, container_id = chatty
    wait_for(lambda: "done" in (engine.logs_since(container_id, None, time.time()) or []),
             30, "the container to print all its lines")
    everything = engine.logs_since(container_id, None, time.time())
    assert len(everything) == TOTAL + 1 and "INFO line 1" in everything
    assert sum("ERROR" in line for line in everything) == ERRORS  # stderr too
    # Cut at arbitrary points, the windows add up to the whole. (Not in the same order: the
    # log is not in stamp order, stdout and stderr are stamped and written apart.)
    start = time.time() - 30
    bounds = [start + k * 0.29 for k in range(int((time.time() - start) / 0.29) + 2)]
    pieces = [engine.logs_since(container_id, None if i == 0 else bounds[i - 1], bounds[i])
              for i in range(len(bounds))]
    assert sorted(line for piece in pieces for line in piece) == sorted(everything)
    assert engine.logs_since("it-signals-no-such", None, time.time()) is None
