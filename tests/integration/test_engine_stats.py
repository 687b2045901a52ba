"""The asyncio stats client (berth.engine.stats) on real dockerd: over the unix socket, TCP,
and TCP with client certificates; a busy container reads about its CPU limit."""
from __future__ import annotations

import asyncio
import time

import pytest

from berth.engine import (
    LABEL_MANAGED, LABEL_SERVICE, ContainerSpec, EngineError, Endpoint, TlsMaterial,
)
from berth.engine.sdk import DockerEngine
from berth.engine.stats import StatsClient
from berth.workloads.metrics import reading
from tests.integration.test_engine_tls import _pki, tls_engine  # noqa: F401  (the fixture)
from tests.support import wait_for


def samples(endpoint: Endpoint, ref: str, count: int, gap_s: float):
    """`count` one-shot samples of `ref`, `gap_s` apart, through one client."""
    async def run():
        client = StatsClient(per_host=2)
        try:
            taken = []
            for _ in range(count):
                taken.append(await client.cpu_sample(endpoint, ref))
                await asyncio.sleep(gap_s)
            return taken
        finally:
            await client.aclose()
    return asyncio.run(run())


@pytest.fixture
def busy(bed):
    engine = DockerEngine(Endpoint(bed.engine("e1")["url"]))
    spec = ContainerSpec(name="it-stats-busy", image=bed.image,
                         labels={LABEL_MANAGED: "1", LABEL_SERVICE: "it-stats"},
                         command=["sh", "-c", "while true; do :; done"], cpus=0.5)
    engine.pull(bed.image)
    created = engine.create(spec)
    engine.start(created.id)
    wait_for(lambda: engine.cpu_sample(created.id), 30, "a first CPU sample")
    yield created.id
    engine.remove(created.id)
    engine.close()


@pytest.mark.parametrize("transport", ["socket", "url"])
def test_a_busy_container_reads_about_its_limit(bed, busy, transport):
    endpoint = Endpoint(bed.engine("e1")[transport])
    began = time.monotonic()
    first, second = samples(endpoint, busy, 2, 3.0)
    # A busy loop capped at half a core, over ~4 s between the two samples (as two rounds
    # of the collector would see it): about 50% of one core.
    percent = reading(first, second, max_gap_s=60)
    assert percent is not None and 30 < percent <= 60, (percent, time.monotonic() - began)


def test_a_missing_container_is_none(bed):
    assert samples(Endpoint(bed.engine("e1")["socket"]), "it-stats-no-such", 1, 0) == [None]


def test_tls_with_client_certificates(tls_engine):  # noqa: F811
    url, pem = tls_engine
    endpoint = Endpoint(url, TlsMaterial(ca=pem["ca"], cert=pem["cert"], key=pem["key"]))
    assert samples(endpoint, "it-stats-no-such", 1, 0) == [None]  # a 404 after the handshake


def test_tls_refuses_a_client_of_another_ca(tls_engine, tmp_path):  # noqa: F811
    url, pem = tls_engine
    other, _ = _pki(tmp_path)
    endpoint = Endpoint(url, TlsMaterial(ca=pem["ca"], cert=other["cert"], key=other["key"]),
                        timeout_s=5)
    with pytest.raises(EngineError, match=url):
        samples(endpoint, "it-stats-no-such", 1, 0)
