"""A canary's analysis: the canaries against the baseline instances over the window, on
the rate of error log lines above all, then CPU, memory and restarts. Pure.

Flagger and Argo Rollouts judge canaries by metrics; Berth's requirement puts error-log
volume first, since broken code shows there before anywhere else. A window with no log
lines and no CPU worth comparing (no traffic yet) is inconclusive: it says so, and neither
passes nor fails the canary.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

# "Clearly worse": above the baseline by this factor AND by this much, so a quiet baseline
# (0 errors) does not fail a canary for one stray line, nor a busy one for noise.
ERROR_FACTOR, ERROR_MARGIN_PER_MIN = 2.0, 5.0
CPU_FACTOR, CPU_MARGIN = 1.5, 10.0  # percent of a core
MEMORY_FACTOR, MEMORY_MARGIN = 1.5, 64 * 2**20
MIN_LINES = 10  # fewer log lines in the window than this: no error signal to judge
MIN_CPU = 1.0  # below this (in both groups) the containers are idle: no CPU signal


class Signal(NamedTuple):
    """One instance's figures: log line counts in the window, CPU% and memory now, restarts."""

    log_lines: int = 0
    error_lines: int = 0
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class Verdict:
    outcome: str  # pass, fail, inconclusive
    detail: str
    signal: str | None = None  # the one that failed
    canary: dict | None = None  # per-instance figures of each group
    baseline: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _figures(group: Sequence[Signal], window_s: float) -> dict:
    n = max(1, len(group))
    minutes = window_s / 60.0
    cpus = [s.cpu_percent for s in group if s.cpu_percent is not None]
    memory = [s.memory_bytes for s in group if s.memory_bytes is not None]
    return {
        "instances": len(group),
        "lines": sum(s.log_lines for s in group),
        "errors_per_min": round(sum(s.error_lines for s in group) / n / minutes, 2),
        "cpu_percent": round(sum(cpus) / len(cpus), 2) if cpus else None,
        "memory_bytes": int(sum(memory) / len(memory)) if memory else None,
        "restarts": max((s.restarts for s in group), default=0),
    }


def _worse(canary: float, baseline: float, factor: float, margin: float) -> bool:
    return canary > baseline * factor and canary - baseline >= margin


def analyse(canaries: Sequence[Signal], baseline: Sequence[Signal], window_s: float) -> Verdict:
    c, b = _figures(canaries, window_s), _figures(baseline, window_s)

    def verdict(outcome, detail, signal=None):
        return Verdict(outcome, detail, signal, c, b)

    if not canaries or not baseline:
        return verdict("inconclusive", "no data: no canary or no baseline instance reported figures yet")
    if _worse(c["errors_per_min"], b["errors_per_min"], ERROR_FACTOR, ERROR_MARGIN_PER_MIN):
        return verdict("fail", f"error log lines {c['errors_per_min']:g}/min per canary against "
                       f"{b['errors_per_min']:g}/min per baseline instance", "errors")
    if c["restarts"] > b["restarts"]:
        return verdict("fail", f"restarts {c['restarts']} per canary against {b['restarts']}", "restarts")
    cpu_known = c["cpu_percent"] is not None and b["cpu_percent"] is not None
    if cpu_known and _worse(c["cpu_percent"], b["cpu_percent"], CPU_FACTOR, CPU_MARGIN):
        return verdict("fail", f"CPU {c['cpu_percent']:g}% per canary against "
                       f"{b['cpu_percent']:g}%", "cpu")
    if c["memory_bytes"] is not None and b["memory_bytes"] is not None and _worse(
            c["memory_bytes"], b["memory_bytes"], MEMORY_FACTOR, MEMORY_MARGIN):
        return verdict("fail", f"memory {c['memory_bytes'] / 2**20:.0f} MiB per canary against "
                       f"{b['memory_bytes'] / 2**20:.0f} MiB", "memory")
    has_errors_signal = c["lines"] + b["lines"] >= MIN_LINES
    has_cpu_signal = cpu_known and max(c["cpu_percent"], b["cpu_percent"]) >= MIN_CPU
    if not has_errors_signal and not has_cpu_signal:
        return verdict("inconclusive", f"no data: {c['lines'] + b['lines']} log lines and no CPU "
                       f"use to compare in the window (no traffic yet?)")
    return verdict("pass", f"error log lines {c['errors_per_min']:g}/min per canary against "
                   f"{b['errors_per_min']:g}/min; CPU {c['cpu_percent']}% against {b['cpu_percent']}%")
