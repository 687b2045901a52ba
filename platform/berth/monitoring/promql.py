"""The PromQL Berth's pages and alert rules read: pure strings, one place to get them right.

A service that declares `metrics` exposes a Prometheus histogram (default
`http_request_duration_seconds`, with a status label, default `code`). Prometheus scrapes its
healthy instances through Berth's discovery endpoint, which labels each target with
application, service, revision, host, pool and idc; the functions here select on those.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HISTOGRAM = "http_request_duration_seconds"
DEFAULT_STATUS_LABEL = "code"
# A request counts as an error when its status label matches this (server errors).
ERROR_STATUS = "5.."
DEFAULT_RANGE = "1m"


@dataclass(frozen=True)
class MetricsSpec:
    """What a service declares under `metrics:`."""

    port: int
    path: str = "/metrics"
    histogram: str = DEFAULT_HISTOGRAM
    status_label: str = DEFAULT_STATUS_LABEL

    @classmethod
    def from_json(cls, data: dict | None) -> "MetricsSpec | None":
        if not data:
            return None
        return cls(port=int(data["port"]), path=data.get("path") or "/metrics",
                   histogram=data.get("histogram") or DEFAULT_HISTOGRAM,
                   status_label=data.get("status_label") or DEFAULT_STATUS_LABEL)


def _quote(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(application: str, service: str, revision: int | None = None,
             extra: str = "") -> str:
    """The label matchers of one service's series (optionally one revision's)."""
    parts = [f"application={_quote(application)}", f"service={_quote(service)}"]
    if revision is not None:
        parts.append(f"revision={_quote(str(revision))}")
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _by(by: tuple[str, ...]) -> str:
    return f" by ({', '.join(by)})" if by else ""


def qps(spec: MetricsSpec, sel: str, rng: str = DEFAULT_RANGE, by: tuple[str, ...] = ()) -> str:
    """Requests per second."""
    return f"sum{_by(by)}(rate({spec.histogram}_count{sel}[{rng}]))"


def avg_seconds(spec: MetricsSpec, sel: str, rng: str = DEFAULT_RANGE,
                by: tuple[str, ...] = ()) -> str:
    """Average time of a request: rate of the sum over rate of the count."""
    return (f"sum{_by(by)}(rate({spec.histogram}_sum{sel}[{rng}]))"
            f" / sum{_by(by)}(rate({spec.histogram}_count{sel}[{rng}]))")


def quantile_seconds(spec: MetricsSpec, sel: str, q: float = 0.999, rng: str = DEFAULT_RANGE,
                     by: tuple[str, ...] = ()) -> str:
    """A quantile (P999 by default) from the histogram's buckets."""
    keep = ", ".join(("le",) + by)
    return (f"histogram_quantile({q}, sum by ({keep})"
            f"(rate({spec.histogram}_bucket{sel}[{rng}])))")


def p999_seconds(spec: MetricsSpec, sel: str, rng: str = DEFAULT_RANGE,
                 by: tuple[str, ...] = ()) -> str:
    return quantile_seconds(spec, sel, 0.999, rng, by)


def error_ratio(spec: MetricsSpec, sel: str, rng: str = DEFAULT_RANGE,
                by: tuple[str, ...] = ()) -> str:
    """The share of requests that failed (0..1)."""
    errors = sel[:-1] + ("," if sel != "{}" else "") + \
        f"{spec.status_label}=~{_quote(ERROR_STATUS)}" + "}"
    return (f"sum{_by(by)}(rate({spec.histogram}_count{errors}[{rng}]))"
            f" / sum{_by(by)}(rate({spec.histogram}_count{sel}[{rng}]))")
