"""Liveness on real engines: beat probes them; a stopped dockerd goes down, gets no
placements, and comes back up once restarted."""

from berth import db
from berth.clock import utcnow
from berth.hosts.placement import place_replicas
from berth.models import Host
from scheduler.placement import PlacementRequest
from tests.support import wait_for

CLUSTER = "testbed"


def liveness_of(host_id: int) -> str:
    with db.unit_of_work():
        return db.session.get(Host, host_id).liveness


def placements(berth_app, count: int, **constraints) -> list:
    request = PlacementRequest(service="it-live", cpus=0.1, memory=16 * 2**20, cluster=CLUSTER,
                               max_per_host=2, **constraints)
    with db.unit_of_work():
        return place_replicas(request, count, now=utcnow(),
                              probe_interval_s=berth_app.config.probe_interval_s)


def test_stopped_engine_goes_down_gets_no_placements_and_comes_back(berth_app, bed, fleet, database):
    config = berth_app.config
    # The configured window: enough failed probe rounds, each bounded by the probe timeout,
    # plus a few seconds for beat and the worker to pick the rounds up.
    window_s = (config.probe_failures_for_down + 1) * (config.probe_interval_s + config.probe_timeout_s) + 5
    wait_for(lambda: all(liveness_of(h) == "up" for h in fleet.values()), window_s,
             "beat's probes to mark every engine up")
    before = placements(berth_app, 6)
    assert {d.host_name for d in before} == {"bed-e1", "bed-e2", "bed-e3"}

    bed.stop_engine("e3")
    try:
        wait_for(lambda: liveness_of(fleet["e3"]) == "down", window_s, "e3 to be marked down")
        after = placements(berth_app, 4)
        assert [d.placed for d in after] == [True] * 4
        assert "bed-e3" not in {d.host_name for d in after}
        only_e3 = placements(berth_app, 1, constraints=("engine==e3",))[0]
        assert not only_e3.placed and "1 down" in only_e3.explanation
    finally:
        bed.start_engine("e3")
    wait_for(lambda: liveness_of(fleet["e3"]) == "up", window_s, "e3 to come back up")
    assert "bed-e3" in {d.host_name for d in placements(berth_app, 6)}
