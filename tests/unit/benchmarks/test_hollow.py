"""The hollow engines (benchmarks/hollow.py) answer the real docker SDK as dockerd would, for
the calls Berth makes: a smoke test on loopback with the delays scaled to zero."""
import pytest

from benchmarks.hollow import HollowFleet, Latency
from berth.engine import ContainerSpec, EngineError, Endpoint, cpu_percent
from berth.engine.sdk import DockerEngine

IMAGE = "127.0.0.1:5000/library/busybox:1"


@pytest.fixture
def fleet():
    with HollowFleet(2, latency=Latency(scale=0), cpu_busy=0.5, healthy_after_s=0) as fleet:
        yield fleet


@pytest.fixture
def engine(fleet):
    engine = DockerEngine(Endpoint(url=fleet.urls[0], timeout_s=5))
    yield engine
    engine.close()


def test_ping_and_info(engine):
    assert engine.ping()
    info = engine.info()
    assert (info.cpus, info.engine_version) == (4, "20.10.24+hollow")


def test_pull_create_start_list_inspect_remove(engine, fleet):
    engine.pull(IMAGE)
    labels = {"io.berth.managed": "1", "io.berth.application": "shop"}
    spec = ContainerSpec(name="shop-api-1-0", image=IMAGE, labels=labels, cpus=0.25,
                         healthcheck={"test": ["CMD", "true"], "interval_s": 1})
    created = engine.create(spec)
    assert (created.name, created.status) == ("shop-api-1-0", "created")
    with pytest.raises(EngineError, match="already in use"):
        engine.create(spec)
    engine.start(spec.name)
    engine.start(spec.name)  # already running: 304, not an error
    other = ContainerSpec(name="other", image=IMAGE, labels={"io.berth.managed": "1"})
    engine.create(other)

    listed = engine.list_containers({"io.berth.application": "shop"})
    assert [(c.name, c.status, c.health, c.labels) for c in listed] == [
        ("shop-api-1-0", "running", "healthy", labels)]
    assert {c.name for c in engine.list_containers({"io.berth.managed": "1"})} == {
        "shop-api-1-0", "other"}
    assert [c.name for c in engine.list_containers({"io.berth.managed": "1"}, all=False)] == [
        "shop-api-1-0"]
    assert engine.inspect(created.id).name == "shop-api-1-0"

    engine.remove(spec.name)
    engine.remove(spec.name)  # twice is fine
    assert engine.inspect(spec.name) is None
    calls = fleet.call_counts()
    assert calls["create"] == 3 and calls["start"] == 2 and calls["pull"] == 1, calls
    assert not [route for route in calls if route.startswith("unknown")], calls


def test_create_needs_the_image_and_engines_are_separate(fleet, engine):
    with pytest.raises(EngineError, match="is not on"):
        engine.create(ContainerSpec(name="x", image="missing:1", labels={}))
    engine.pull(IMAGE)
    engine.create(ContainerSpec(name="x", image=IMAGE, labels={}))
    second = DockerEngine(Endpoint(url=fleet.urls[1], timeout_s=5))
    try:
        assert second.list_containers() == []
    finally:
        second.close()


def test_stats_report_cpu_capped_at_the_limit(engine):
    engine.pull(IMAGE)
    engine.create(ContainerSpec(name="burn", image=IMAGE, labels={}, cpus=0.25))
    assert engine.cpu_sample("burn") is None  # not running: zeros, as dockerd sends
    engine.start("burn")
    first = engine.cpu_sample("burn")
    percent = engine.cpu_percent("burn")  # stream=false carries its own previous sample
    second = engine.cpu_sample("burn")
    assert first.online_cpus == 4
    assert percent == pytest.approx(25.0, rel=0.05)
    assert cpu_percent(first, second) == pytest.approx(25.0, rel=0.05)
