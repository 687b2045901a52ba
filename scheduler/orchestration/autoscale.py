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


@dataclass(frozen=True)
class AutoscalingPolicy:
    """Keep average CPU near `target_cpu_percent` with between min and max replicas.

    cpu_basis 'core': 100% is one full core (docker stats' view); 'limit': 100% is the
    container's CPU limit. Within ±tolerance of the target nothing changes, so the service
    does not flap around it.
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


def cpu_utilisation(samples: Iterable[Sample], basis: str) -> float | None:
    """Mean CPU % over instances (each instance's samples averaged first); None without usable samples.

    Instances without a sample are left out rather than counted as idle. Under basis 'limit' a
    sample without a CPU limit has no denominator, so it is left out too.
    """
    if basis not in (CORE, LIMIT):
        raise ValueError(f"cpu basis must be {CORE!r} or {LIMIT!r}, got {basis!r}")
    per_instance: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if basis == CORE:
            per_instance[sample.instance].append(sample.cpu_percent_of_one_core)
        elif sample.cpu_limit_cores:
            per_instance[sample.instance].append(sample.cpu_percent_of_one_core / sample.cpu_limit_cores)
    if not per_instance:
        return None
    means = [sum(values) / len(values) for values in per_instance.values()]
    return sum(means) / len(means)


def decide(policy: AutoscalingPolicy, current_replicas: int, samples: Iterable[Sample], now: float,
           last_scaled_at: float | None = None,
           recent_recommendations: Sequence[Recommendation] = ()) -> Decision:
    """The replicas to run now. Rules, first match wins:

    1. outside [min, max]: clamp, whatever the metrics say;
    2. no usable samples: hold ("no metrics");
    3. within cooldown_s of the last scale-up (`last_scaled_at`): hold, so the new containers
       can take load before they are judged;
    4. above target × (1 + tolerance): max(ceil(current × scale_up_factor),
       ceil(current × utilisation / target)), so a big spike is met in one step, capped at max;
    5. below target × (1 - tolerance): the proportional ceil(current × utilisation / target),
       floored at min, but never lower than the highest recommendation within the last
       scale_down_stabilization_s; so a service scales down only once load has stayed low;
    6. otherwise hold.
    """
    if current_replicas < 0:
        raise ValueError(f"current_replicas must be >= 0, got {current_replicas}")
    lo, hi = policy.min_replicas, policy.max_replicas
    if current_replicas < lo:
        return Decision(lo, f"{current_replicas} replicas below minimum {lo}: {current_replicas} -> {lo}", UP)
    if current_replicas > hi:
        return Decision(hi, f"{current_replicas} replicas above maximum {hi}: {current_replicas} -> {hi}", DOWN)

    utilisation = cpu_utilisation(samples, policy.cpu_basis)
    if utilisation is None:
        return Decision(current_replicas, f"no metrics: keeping {current_replicas}")
    target = policy.target_cpu_percent
    unit = "of one core" if policy.cpu_basis == CORE else "of limit"
    cpu = f"CPU {utilisation:.0f}% {unit}"
    proportional = math.ceil(current_replicas * utilisation / target - _EPSILON)

    if utilisation > target * (1 + policy.tolerance):
        direction = UP
        wanted = min(hi, max(math.ceil(current_replicas * policy.scale_up_factor - _EPSILON), proportional))
        comparison = f"{cpu} > target {target:.0f}%"
    elif utilisation < target * (1 - policy.tolerance):
        direction = DOWN
        wanted = max(lo, proportional)
        comparison = f"{cpu} < target {target:.0f}%"
    else:
        return Decision(current_replicas, f"{cpu} within {policy.tolerance:.0%} of target {target:.0f}%:"
                        f" keeping {current_replicas}", HOLD, utilisation, current_replicas)

    def hold(why: str) -> Decision:
        return Decision(current_replicas, f"{comparison}, but {why}: keeping {current_replicas}",
                        HOLD, utilisation, wanted)

    if last_scaled_at is not None and now - last_scaled_at < policy.cooldown_s:
        return hold(f"cooling down {policy.cooldown_s - (now - last_scaled_at):.0f}s more after scaling up")
    if direction == UP:
        if wanted <= current_replicas:
            return hold(f"already at maximum {hi}")
        return Decision(wanted, f"{comparison}: {current_replicas} -> {wanted}", UP, utilisation, wanted)

    window_start = now - policy.scale_down_stabilization_s
    highest = max([wanted, *(r.replicas for r in recent_recommendations if r.at >= window_start)])
    if highest >= current_replicas:
        if wanted >= current_replicas:
            return hold(f"already at minimum {lo}")
        return hold(f"{highest} recommended within the last {policy.scale_down_stabilization_s:.0f}s")
    return Decision(highest, f"{comparison}: {current_replicas} -> {highest}", DOWN, utilisation, wanted)
