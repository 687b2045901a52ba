"""The autoscaler's decision: how many replicas a service should have for its CPU use."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CORE, LIMIT = "core", "limit"
UP, DOWN, HOLD = "up", "down", "none"
# Float noise (e.g. 4 × 55.00000001 / 50) must not buy a whole extra container.
_EPSILON = 1e-9
# How long the desired count may stay above the running one before the autoscaler takes it
# that the missing replicas cannot be placed (no host fits, a crash loop, an image that will
# not pull) and stops asking for more. Well above a normal start (a docker run is ~0.25 s,
# a first pull of an image seconds), well below the scale-down window, and two minutes is
# what an operator would call "a while" when watching a page.
PLACEMENT_GRACE_S = 120.0


@dataclass(frozen=True)
class AutoscalingPolicy:
    """Keep average CPU near `target_cpu_percent` with between min and max replicas.

    cpu_basis 'core': 100% is one full core (docker stats' view); 'limit': 100% is the
    container's CPU limit. Within ±tolerance of the target nothing changes, so the service
    does not flap around it. `cooldown_s` follows a scale-up and holds further scale-ups
    only; scale-downs are governed by `scale_down_stabilization_s` alone.
    """

    min_replicas: int
    max_replicas: int
    target_cpu_percent: float
    cpu_basis: str = LIMIT
    scale_up_factor: float = 2.0
    cooldown_s: float = 300.0
    scale_down_stabilization_s: float = 300.0
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            # min 0 would strand a service: with no containers there is no CPU to scale up on.
            raise ValueError(f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas}..{self.max_replicas}")
        if self.target_cpu_percent <= 0:
            raise ValueError(f"target_cpu_percent must be > 0, got {self.target_cpu_percent}")
        if self.cpu_basis not in (CORE, LIMIT):
            raise ValueError(f"cpu_basis must be {CORE!r} or {LIMIT!r}, got {self.cpu_basis!r}")
        if self.scale_up_factor <= 1:
            raise ValueError(f"scale_up_factor must be > 1, got {self.scale_up_factor}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {self.tolerance}")


@dataclass(frozen=True)
class Sample:
    """One CPU reading of one instance: docker stats' percentage (100 = one core) and its limit."""

    instance: str
    cpu_percent_of_one_core: float
    cpu_limit_cores: float | None = None


@dataclass(frozen=True)
class Observed:
    """What the autoscaler knows of one service now.

    `desired` is the replica count the service is asked to run; `ready` names the instances
    that run and are healthy (or have no healthcheck): only they carry load, so only they
    are the base of a decision. `running` counts running instances, ready or not (None: as
    many as are ready). `unschedulable` is the scheduler's reason when the service's status
    says no host fits; `changed_at` is when the desired count last changed (a deploy or a
    scale), from which "desired above running for a while" is timed.
    """

    desired: int
    ready: Sequence[str] = ()
    samples: Sequence[Sample] = ()
    running: int | None = None
    unschedulable: str | None = None
    changed_at: float | None = None


@dataclass(frozen=True)
class Recommendation:
    """A replica count decide() recommended at time `at`; the caller keeps the recent ones."""

    at: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    """The replicas to run and why.

    `direction` is 'up', 'down' or 'none'; after an 'up' the caller records `now` as
    last_scaled_at. `recommendation` (None without metrics) is what the metrics alone ask for;
    the caller stores it as Recommendation(now, recommendation) for later scale-down decisions.
    """

    desired_replicas: int
    reason: str
    direction: str = HOLD
    utilisation: float | None = None
    recommendation: int | None = None


def _usage(sample: Sample, basis: str) -> float | None:
    if basis == CORE:
        return sample.cpu_percent_of_one_core
    if sample.cpu_limit_cores:
        return sample.cpu_percent_of_one_core / sample.cpu_limit_cores
    return None  # under 'limit' a sample without a limit has no denominator


def per_instance_usage(samples: Iterable[Sample], basis: str) -> dict[str, float]:
    """Each instance's mean CPU % on `basis`; instances without a usable sample are absent."""
    if basis not in (CORE, LIMIT):
        raise ValueError(f"cpu basis must be {CORE!r} or {LIMIT!r}, got {basis!r}")
    values: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        usage = _usage(sample, basis)
        if usage is not None:
            values[sample.instance].append(usage)
    return {name: sum(v) / len(v) for name, v in values.items()}


def cpu_utilisation(samples: Iterable[Sample], basis: str) -> float | None:
    """Mean CPU % over instances (each instance's samples averaged first); None without usable samples.

    Only the instances that have a usable sample count here; decide() fills in the others.
    """
    usage = per_instance_usage(samples, basis)
    return sum(usage.values()) / len(usage) if usage else None


def placement_problem(observed: Observed, now: float, grace_s: float = PLACEMENT_GRACE_S) -> str | None:
    """Why more replicas would not run, or None: the scheduler found no host, or the desired
    count has stayed above the running one for longer than `grace_s`."""
    if observed.unschedulable is not None:
        return f"it cannot be placed ({observed.unschedulable[:120]})"
    running = len(observed.ready) if observed.running is None else observed.running
    if (running < observed.desired and observed.changed_at is not None
            and now - observed.changed_at > grace_s):
        return (f"only {running} of {observed.desired} replicas run"
                f" {now - observed.changed_at:.0f}s after the last change")
    return None


def decide(policy: AutoscalingPolicy, observed: Observed, now: float,
           last_scaled_at: float | None = None,
           recent_recommendations: Sequence[Recommendation] = (),
           placement_grace_s: float = PLACEMENT_GRACE_S) -> Decision:
    """The replicas to run now. Rules, first match wins:

    1. desired outside [min, max]: clamp, whatever the metrics say;
    2. no ready instance with a usable sample: hold ("no metrics");
    3. the ready instances' mean CPU within target × (1 ± tolerance): hold;
    4. ready instances without a sample are filled in conservatively, as Kubernetes' HPA
       does: at 0% when the others ask to scale up, at exactly the target when they ask to
       scale down; if the filled-in mean no longer asks the same way, hold;
    5. up: max(ceil(ready × scale_up_factor), ceil(ready × utilisation / target)), capped at
       max, so a big spike is met in one step; held if that is not above desired (the
       replicas asked for are still starting), if the service cannot be placed
       (placement_problem), or within cooldown_s of the last scale-up (`last_scaled_at`),
       so the new containers can take load before they are judged;
    6. down: ceil(ready × utilisation / target), floored at min, but never lower than the
       highest recommendation within the last scale_down_stabilization_s; so a service
       scales down only once load has stayed low. The cooldown does not apply to it.

    The base is the ready count, never the desired one: a service whose new replicas cannot
    start must not keep multiplying a count that exists only on paper.
    """
    desired = observed.desired
    if desired < 0:
        raise ValueError(f"desired replicas must be >= 0, got {desired}")
    lo, hi = policy.min_replicas, policy.max_replicas
    if desired < lo:
        return Decision(lo, f"{desired} replicas below minimum {lo}: {desired} -> {lo}", UP)
    if desired > hi:
        return Decision(hi, f"{desired} replicas above maximum {hi}: {desired} -> {hi}", DOWN)

    ready = list(dict.fromkeys(observed.ready))
    usage = {name: value for name, value in per_instance_usage(observed.samples, policy.cpu_basis).items()
             if name in set(ready)}
    if not usage:
        return Decision(desired, f"no metrics: keeping {desired}")
    target = policy.target_cpu_percent
    high, low = target * (1 + policy.tolerance), target * (1 - policy.tolerance)
    measured = sum(usage.values()) / len(usage)
    unit = "of one core" if policy.cpu_basis == CORE else "of limit"
    base = len(ready)
    on = "" if base == desired else f" on {base} ready of {desired}"
    if low <= measured <= high:
        return Decision(desired, f"CPU {measured:.0f}% {unit}{on} within {policy.tolerance:.0%} of target"
                        f" {target:.0f}%: keeping {desired}", HOLD, measured, desired)

    direction = UP if measured > high else DOWN
    missing = base - len(usage)
    fill = 0.0 if direction == UP else target
    utilisation = (sum(usage.values()) + missing * fill) / base
    filled = f", {missing} without a sample counted at {fill:.0f}%" if missing else ""
    cpu = f"CPU {utilisation:.0f}% {unit}{on}{filled}"
    if (direction == UP and utilisation <= high) or (direction == DOWN and utilisation >= low):
        return Decision(desired, f"CPU {measured:.0f}% {unit} on {len(usage)} sampled of {base} ready,"
                        f" but {utilisation:.0f}% counting {missing} without a sample at {fill:.0f}%:"
                        f" keeping {desired}", HOLD, utilisation, desired)

    proportional = math.ceil(base * utilisation / target - _EPSILON)
    if direction == UP:
        wanted = min(hi, max(math.ceil(base * policy.scale_up_factor - _EPSILON), proportional))
        comparison = f"{cpu} > target {target:.0f}%"
    else:
        wanted = max(lo, proportional)
        comparison = f"{cpu} < target {target:.0f}%"

    def hold(why: str) -> Decision:
        return Decision(desired, f"{comparison}, but {why}: keeping {desired}", HOLD, utilisation, wanted)

    if direction == UP:
        if wanted <= desired:
            if desired >= hi:
                return hold(f"already at maximum {hi}")
            return hold(f"waiting for {desired - base} more to be ready")
        problem = placement_problem(observed, now, placement_grace_s)
        if problem is not None:
            return hold(f"{problem}: not asking for more")
        if last_scaled_at is not None and now - last_scaled_at < policy.cooldown_s:
            return hold(f"cooling down {policy.cooldown_s - (now - last_scaled_at):.0f}s more after scaling up")
        return Decision(wanted, f"{comparison}: {desired} -> {wanted}", UP, utilisation, wanted)

    window_start = now - policy.scale_down_stabilization_s
    highest = max([wanted, *(r.replicas for r in recent_recommendations if r.at >= window_start)])
    if highest >= desired:
        if wanted >= desired:
            return hold(f"already at minimum {lo}" if desired <= lo else f"{wanted} would not be fewer")
        return hold(f"{highest} recommended within the last {policy.scale_down_stabilization_s:.0f}s")
    return Decision(highest, f"{comparison}: {desired} -> {highest}", DOWN, utilisation, wanted)
