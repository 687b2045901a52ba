"""One-shot CPU samples from many engines over asyncio, so thousands of stats calls can be in
flight on one thread: unix sockets, TCP, and TCP with TLS client certificates.

Docker's stats call mostly waits (about 1 s one-shot, 2 s stream=false, see DESIGN.md), so
the collector's cost is the number of calls held open at once. aiohttp rather than the
docker SDK (a thread per call) or httpx: against hollow engines on this 2-core machine,
10,000 one-shot calls cost 0.2 ms of CPU each with aiohttp and 1.4 ms each with httpx 0.28
(benchmarks/RESULTS.md, "reconcile and CPU sampling at fleet size").
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import tempfile
from pathlib import Path
from urllib.parse import quote

import aiohttp

from berth.engine import CpuSample, EngineError, Endpoint, TlsMaterial
from berth.engine.sdk import API_VERSION, sample_of

_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")  # container ids and names: nothing to escape


def ssl_context(material: TlsMaterial) -> ssl.SSLContext:
    """Verify the engine against its own CA only, and present the client certificate."""
    context = ssl.create_default_context(cadata=material.ca)
    # load_cert_chain reads files only: they exist for the length of this call.
    with tempfile.TemporaryDirectory(prefix="berth-tls-") as folder:
        paths = []
        for name in ("cert", "key"):
            path = Path(folder) / f"{name}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(getattr(material, name))
            paths.append(str(path))
        context.load_cert_chain(*paths)
    return context


class StatsClient:
    """One-shot stats of many engines, over keep-alive connections, at most `per_host` calls
    at once to one engine (so at most per_host x engines sockets), each within `timeout_s`.
    One session serves every TCP engine (TLS material per request), one per unix socket.
    Create and use it inside one running event loop."""

    def __init__(self, *, per_host: int = 16, timeout_s: float = 10.0, keepalive_s: float = 75.0):
        self.per_host = per_host
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # The bound is a semaphore per engine, not the connector's limits: with waiters
        # queued, aiohttp's connector shuffles the list of every host's queue on each release,
        # which at 500 engines cost more CPU than the calls themselves (benchmarks/RESULTS.md,
        # "reconcile and CPU sampling at fleet size").
        self._lanes: dict[str, asyncio.Semaphore] = {}
        # Idle connections are kept past the next round (a period is 10 s by default); engines
        # answer on loopback or a LAN: no happy eyeballs to race.
        self._keepalive_s = keepalive_s
        self._tcp = self._session(aiohttp.TCPConnector(
            limit=0, happy_eyeballs_delay=None, keepalive_timeout=keepalive_s))
        self._unix: dict[str, aiohttp.ClientSession] = {}
        self._ssl: dict[TlsMaterial, ssl.SSLContext] = {}

    def _session(self, connector) -> aiohttp.ClientSession:
        # trust_env stays off: no proxy variable or CA bundle from the environment applies.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False, timeout=self._timeout)

    def _route(self, endpoint: Endpoint):
        url = endpoint.url
        if url.startswith("unix://"):
            session = self._unix.get(url)
            if session is None:
                session = self._unix[url] = self._session(aiohttp.UnixConnector(
                    path=url.removeprefix("unix://"), limit=0,
                    keepalive_timeout=self._keepalive_s))
            return session, "http://docker", None
        if not url.startswith("tcp://"):
            raise EngineError(f"cannot use engine {url}: it must start with unix:// or tcp://")
        if endpoint.tls is None:
            return self._tcp, "http://" + url.removeprefix("tcp://"), False
        context = self._ssl.get(endpoint.tls)
        if context is None:
            context = self._ssl[endpoint.tls] = ssl_context(endpoint.tls)
        return self._tcp, "https://" + url.removeprefix("tcp://"), context

    async def cpu_sample(self, endpoint: Endpoint, name_or_id: str) -> CpuSample | None:
        """One one-shot reading; None when the container is gone or not running."""
        session, base, context = self._route(endpoint)
        ref = name_or_id if _PLAIN.fullmatch(name_or_id) else quote(name_or_id, safe="")
        url = f"{base}/v{API_VERSION}/containers/{ref}/stats?stream=0&one-shot=1"
        lane = self._lanes.get(endpoint.url)
        if lane is None:
            lane = self._lanes[endpoint.url] = asyncio.Semaphore(self.per_host)
        try:
            async with lane, session.get(
                    url, ssl=context if context is not None else True) as answer:
                body = await answer.read()
                status = answer.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ssl.SSLError) as error:
            raise EngineError(f"stats {name_or_id} on {endpoint.url} failed: "
                              f"{error.__class__.__name__} {error}") from error
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"stats {name_or_id} on {endpoint.url} failed: "
                              f"{status} {body[:200].decode(errors='replace')}")
        try:
            stats = json.loads(body)
        except ValueError as error:
            raise EngineError(f"stats {name_or_id} on {endpoint.url}: not JSON") from error
        return sample_of(stats.get("cpu_stats") or {})

    async def aclose(self) -> None:
        await asyncio.gather(self._tcp.close(), *(s.close() for s in self._unix.values()),
                             return_exceptions=True)
