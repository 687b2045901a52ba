"""Berth's engine boundary against real dockerd: containers on two engines, stats, cleanup."""
import pytest

from berth.engine import LABEL_MANAGED, LABEL_SERVICE, ContainerSpec, Endpoint, EngineError
from berth.engine.sdk import DockerEngine
from tests.support import wait_for


@pytest.fixture
def engines(bed):
    clients = {e["name"]: DockerEngine(Endpoint(e["url"])) for e in bed.state["engines"]}
    yield clients
    for client in clients.values():
        for container in client.list_containers({LABEL_SERVICE: "it-engines"}):
            client.remove(container.id)
        client.close()


def test_info_reads_the_real_hardware(engines):
    info = engines["e1"].info()
    assert info.cpus >= 1 and info.memory > 2**28 and info.engine_version


@pytest.mark.parametrize("engine_name", ["e1", "e2"])
def test_create_start_list_stop_remove(bed, engines, engine_name):
    engine = engines[engine_name]
    engine.pull(bed.image)  # anonymous pull: `library` is a public project
    spec = ContainerSpec(name=f"it-engines-{engine_name}", image=bed.image,
                         labels={LABEL_MANAGED: "1", LABEL_SERVICE: "it-engines"},
                         command=["sh", "-c", "while true; do :; done"], cpus=0.5,
                         memory=32 * 2**20)
    created = engine.create(spec)
    engine.start(created.id)
    running = engine.inspect(spec.name)
    assert running.status == "running" and running.labels[LABEL_SERVICE] == "it-engines"
    listed = engine.list_containers({LABEL_SERVICE: "it-engines"})
    assert [c.name for c in listed] == [spec.name]
    with pytest.raises(EngineError, match="Conflict|in use"):
        engine.create(spec)  # deterministic names: a retry finds the container, never a twin
    sample = wait_for(lambda: engine.cpu_sample(spec.name), 30, "a CPU sample")
    assert sample.container_cpu_ns > 0 and sample.online_cpus >= 1
    engine.stop(spec.name, timeout_s=1)
    assert engine.inspect(spec.name).status == "exited"
    engine.remove(spec.name)
    engine.remove(spec.name)  # twice is fine
    assert engine.inspect(spec.name) is None


def test_healthcheck_reports_health(bed, engines):
    engine = engines["e1"]
    spec = ContainerSpec(name="it-engines-health", image=bed.image,
                         labels={LABEL_MANAGED: "1", LABEL_SERVICE: "it-engines"},
                         command=["sleep", "300"],
                         healthcheck={"test": ["CMD", "true"], "interval_s": 0.5, "retries": 1})
    engine.create(spec)
    engine.start(spec.name)
    wait_for(lambda: engine.inspect(spec.name).health == "healthy", 30, "the container to be healthy")


def test_a_stopped_engine_is_an_engine_error():
    engine = DockerEngine(Endpoint("tcp://127.0.0.1:9", timeout_s=2))
    with pytest.raises(EngineError, match="tcp://127.0.0.1:9"):
        engine.ping()


def test_cpu_percent_of_a_busy_container(bed, engines):
    engine = engines["e1"]
    spec = ContainerSpec(name="it-engines-busy", image=bed.image,
                         labels={LABEL_MANAGED: "1", LABEL_SERVICE: "it-engines"},
                         command=["sh", "-c", "while true; do :; done"], cpus=0.5)
    engine.create(spec)
    engine.start(spec.name)
    # A busy loop capped at half a core reads between a little and about 50% of one core.
    percent = wait_for(lambda: engine.cpu_percent(spec.name), 30, "a CPU reading")
    assert 5 < percent <= 60
