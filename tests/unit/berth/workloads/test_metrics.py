"""CPU sampling (berth.workloads.metrics): the pure parts table by table, then a round against
fake stats clients on the fake fleet's hosts."""
import pytest

from berth import db
from berth.engine import CpuSample, EngineError
from berth.models import ContainerInstance
from berth.workloads import definitions
from berth.workloads.metrics import Target, collect_cpu, reading, spread

NS = 1_000_000_000


def target(host_id, n):
    return Target(row_id=n, host_id=host_id, ref=f"c{n}", previous=None)


@pytest.mark.parametrize("targets, window_s, expected", [
    ([], 2.5, []),
    ([target(1, 1)], 2.5, [(0.0, 1)]),
    # hosts in turn, each host's own order kept, evenly over the window
    ([target(1, 1), target(1, 2), target(2, 3), target(2, 4)], 2.0,
     [(0.0, 1), (0.5, 3), (1.0, 2), (1.5, 4)]),
    # a host with more containers keeps going after the others are done
    ([target(1, 1), target(1, 2), target(1, 3), target(2, 4)], 4.0,
     [(0.0, 1), (1.0, 4), (2.0, 2), (3.0, 3)]),
    ([target(1, 1), target(2, 2)], 0.0, [(0.0, 1), (0.0, 2)]),  # no window: all at once
])
def test_spread_takes_hosts_in_turn_over_the_window(targets, window_s, expected):
    assert [(offset, t.row_id) for offset, t in spread(targets, window_s)] == expected


@pytest.mark.parametrize("previous, current, max_gap_s, expected", [
    # half a core for 10 s on a 4-CPU host (system time runs at 4 x wall)
    (CpuSample(0, 0, 0), CpuSample(5 * NS, 40 * NS, 4), 30, 50.0),
    (CpuSample(1 * NS, 100 * NS, 0), CpuSample(1 * NS, 140 * NS, 4), 30, 0.0),  # idle
    (CpuSample(0, 0, 0), CpuSample(20 * NS, 40 * NS, 4), 30, 200.0),  # two cores
    (None, CpuSample(5 * NS, 40 * NS, 4), 30, None),  # first sample: nothing to compare
    (CpuSample(0, 0, 0), None, 30, None),  # gone
    (CpuSample(9 * NS, 0, 0), CpuSample(5 * NS, 40 * NS, 4), 30, None),  # counter reset
    (CpuSample(0, 0, 0), CpuSample(5 * NS, 0, 4), 30, None),  # no time passed
    (CpuSample(0, 0, 0), CpuSample(50 * NS, 400 * NS, 4), 30, None),  # 100 s old: too stale
])
def test_reading_is_the_delta_between_rounds(previous, current, max_gap_s, expected):
    assert reading(previous, current, max_gap_s) == expected


class FakeStats:
    """Stands in for berth.engine.stats.StatsClient: samples from a dict, whatever the host."""

    def __init__(self, samples, opened):
        self.samples = samples
        opened.append(self)
        self.closed = False

    async def cpu_sample(self, endpoint, ref):
        sample = self.samples[ref]
        if isinstance(sample, Exception):
            raise sample
        return sample

    async def aclose(self):
        self.closed = True


@pytest.fixture
def instances(fleet):
    """Three running instances of one service on the fleet's first host, one stopped."""
    app = definitions.create_application({"name": "cpu", "services": [
        {"name": "s", "image": "img:1", "replicas": 4}]}, actor="admin")
    db.session.flush()
    service = app.services[0]
    rows = [ContainerInstance(service=service, slot=n, revision=1, name=f"cpu-s-1-{n}",
                              container_id=f"id{n}", host_id=1,
                              state="running" if n < 3 else "exited") for n in range(4)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def cpu_of(rows):
    db.session.expire_all()
    return [db.session.get(ContainerInstance, r.id).cpu_percent for r in rows]


def test_a_round_keeps_its_sample_and_the_next_one_reports_the_delta(instances):
    samples, opened = {}, []
    open_client = lambda per_host: FakeStats(samples, opened)  # noqa: E731
    samples.update({"id0": CpuSample(0, 0, 4), "id1": CpuSample(0, 0, 4),
                    "id2": CpuSample(0, 0, 4)})
    assert collect_cpu(open_client=open_client, window_s=0) == 0  # nothing to compare with yet
    db.session.commit()
    assert cpu_of(instances) == [None, None, None, None]

    samples.update({"id0": CpuSample(5 * NS, 40 * NS, 4),  # half a core over 10 s
                    "id1": None,  # gone meanwhile
                    "id2": EngineError("stats id2 failed: timeout")})
    assert collect_cpu(open_client=open_client, window_s=0) == 1
    db.session.commit()
    assert cpu_of(instances) == [50.0, None, None, None]
    assert len(opened) == 2 and all(client.closed for client in opened)  # one per round

    samples.update({"id0": CpuSample(6 * NS, 80 * NS, 4), "id1": CpuSample(1 * NS, 40 * NS, 4),
                    "id2": CpuSample(2 * NS, 40 * NS, 4)})
    assert collect_cpu(open_client=open_client, window_s=0) == 2
    db.session.commit()
    # id1 lost its sample when it was gone; id2 kept its own across the failed call
    assert cpu_of(instances) == [10.0, None, 20.0, None]


def test_a_sample_of_another_container_is_not_compared(instances):
    samples, opened = {"id0": CpuSample(0, 0, 4), "id1": CpuSample(0, 0, 4),
                       "id2": CpuSample(0, 0, 4)}, []
    open_client = lambda per_host: FakeStats(samples, opened)  # noqa: E731
    collect_cpu(open_client=open_client, window_s=0)
    db.session.commit()
    row = db.session.get(ContainerInstance, instances[0].id)
    row.container_id = "new0"  # the slot's container was replaced
    db.session.commit()
    samples["new0"] = CpuSample(5 * NS, 40 * NS, 4)
    samples.update({"id1": CpuSample(5 * NS, 40 * NS, 4), "id2": CpuSample(5 * NS, 40 * NS, 4)})
    assert collect_cpu(open_client=open_client, window_s=0) == 2
    db.session.commit()
    assert cpu_of(instances) == [None, 50.0, 50.0, None]
