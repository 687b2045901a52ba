import pytest

from berth.engine import ContainerSpec, CpuSample, EngineError, cpu_percent
from berth.engine.fake import FakeEngine


@pytest.mark.parametrize("previous, current, expected", [
    # one core fully busy for one second on a 2-CPU host: 100% (of one core)
    (CpuSample(0, 0, 2), CpuSample(1_000_000_000, 2_000_000_000, 2), 100.0),
    (CpuSample(0, 0, 4), CpuSample(500_000_000, 4_000_000_000, 4), 50.0),
    (CpuSample(5, 10, 2), CpuSample(5, 10, 2), None),  # no time passed
    (CpuSample(9, 0, 2), CpuSample(5, 10, 2), None),  # counter reset (restarted container)
])
def test_cpu_percent_like_docker_stats(previous, current, expected):
    assert cpu_percent(previous, current) == expected


def test_fake_engine_create_is_refused_twice_for_one_name():
    engine = FakeEngine(images={"img:1"})
    spec = ContainerSpec(name="svc-1", image="img:1", labels={"io.berth.managed": "1"})
    engine.create(spec)
    with pytest.raises(EngineError, match="in use"):
        engine.create(spec)
    assert [c.name for c in engine.list_containers({"io.berth.managed": "1"})] == ["svc-1"]


def test_fake_engine_down_refuses_everything():
    engine = FakeEngine(alive=False)
    with pytest.raises(EngineError):
        engine.ping()


def test_the_list_form_gives_the_exit_code_of_an_exited_container():
    from berth.engine.sdk import _listed

    entry = {"Id": "c1", "Names": ["/a"], "State": "exited", "Status": "Exited (3) 2 seconds ago"}
    assert _listed(entry).exit_code == 3
    running = {"Id": "c2", "Names": ["/b"], "State": "running", "Status": "Up 3 s (healthy)"}
    assert _listed(running).exit_code is None and _listed(running).health == "healthy"
