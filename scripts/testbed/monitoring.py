"""Monitoring for the bed: a Debian Prometheus and Alertmanager on free 127.0.0.1 ports,
with the configuration a Berth renders (berth.monitoring.config) and storage under DIR."""
from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from pathlib import Path

from .common import LOCALHOST, TestBedError
from .ports import free_port, http_status
from .processes import Proc, child_env, start_process, terminate, wait_until

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@dataclasses.dataclass
class Monitoring:
    """Prometheus and Alertmanager reading their configuration from `dir` (prometheus.yml,
    rules.yml, alertmanager.yml and the token file, as `berth monitoring config` writes)."""

    dir: Path
    prometheus_port: int = dataclasses.field(default_factory=free_port)
    alertmanager_port: int = dataclasses.field(default_factory=free_port)
    prometheus_proc: Proc | None = None
    alertmanager_proc: Proc | None = None

    prometheus_url = property(lambda self: f"http://{LOCALHOST}:{self.prometheus_port}")
    alertmanager_url = property(lambda self: f"http://{LOCALHOST}:{self.alertmanager_port}")
    prometheus_log = property(lambda self: self.dir / "prometheus.log")
    alertmanager_log = property(lambda self: self.dir / "alertmanager.log")

    def start(self, timeout: float = 60.0) -> "Monitoring":
        deadline = time.monotonic() + timeout
        (self.dir / "prometheus-data").mkdir(parents=True, exist_ok=True)
        (self.dir / "alertmanager-data").mkdir(parents=True, exist_ok=True)
        holder = _Holder()
        start_process(holder, [
            ALERTMANAGER, f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'alertmanager-data'}",
            f"--web.listen-address={LOCALHOST}:{self.alertmanager_port}",
            "--cluster.listen-address="], self.alertmanager_log, env=child_env(), cwd=self.dir)
        self.alertmanager_proc = holder.proc
        start_process(holder, [
            PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
            f"--web.listen-address={LOCALHOST}:{self.prometheus_port}",
            "--web.enable-lifecycle"], self.prometheus_log, env=child_env(), cwd=self.dir)
        self.prometheus_proc = holder.proc
        try:
            wait_until("alertmanager", lambda: http_status(self.alertmanager_port, "/-/ready") == 200,
                       deadline, self.alertmanager_proc, self.alertmanager_log)
            wait_until("prometheus", lambda: http_status(self.prometheus_port, "/-/ready") == 200,
                       deadline, self.prometheus_proc, self.prometheus_log)
        except TestBedError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        import signal

        terminate([("prometheus", self.prometheus_proc, signal.SIGTERM),
                   ("alertmanager", self.alertmanager_proc, signal.SIGTERM)], timeout=20)
        self.prometheus_proc = self.alertmanager_proc = None

    def reload(self) -> None:
        """Prometheus reads its configuration (and rules) again."""
        request = urllib.request.Request(f"{self.prometheus_url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.prometheus_url}{path}", timeout=10) as response:  # noqa: S310
            return json.loads(response.read())


class _Holder:
    proc: Proc | None = None
