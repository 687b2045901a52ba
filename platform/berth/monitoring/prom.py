"""A small client of Prometheus' HTTP API (instant and range queries).

Every failure (not configured, unreachable, slow past TIMEOUT_S, a PromQL error) is None:
the caller falls back to Berth's own samples. Never raises.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)
TIMEOUT_S = 2.0


class Prometheus:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S):
        self.url = (url or "").rstrip("/")
        self.timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def _get(self, path: str, params: dict) -> list | None:
        if not self.url:
            return None
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout_s) as response:  # noqa: S310
                body = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError) as error:
            log.info("Prometheus query failed: %s", error)
            return None
        if not isinstance(body, dict) or body.get("status") != "success":
            return None
        data = body.get("data") or {}
        result = data.get("result")
        return result if isinstance(result, list) else None

    def query(self, promql: str, at: float | None = None) -> list | None:
        """The instant vector: [{"metric": {...}, "value": [ts, "v"]}, ...], or None."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list | None:
        """The range matrix: [{"metric": {...}, "values": [[ts, "v"], ...]}, ...], or None."""
        return self._get("/api/v1/query_range", {"query": promql, "start": f"{start:.3f}",
                                                 "end": f"{end:.3f}", "step": f"{step:g}"})

    def healthy(self) -> bool:
        return self.query("vector(1)") is not None


def number(raw) -> float | None:
    """A sample value as Prometheus writes it ("NaN" and "+Inf" are no number to show)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None
