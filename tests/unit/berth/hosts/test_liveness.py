from datetime import datetime, timedelta

import pytest

from berth.hosts.liveness import Liveness, after_probe, is_alive


@pytest.mark.parametrize("before, answered, expected", [
    (Liveness("unknown", 0), True, Liveness("up", 0)),
    (Liveness("up", 0), False, Liveness("up", 1)),  # one miss is not down yet
    (Liveness("up", 1), False, Liveness("down", 2)),
    (Liveness("down", 5), False, Liveness("down", 6)),
    (Liveness("down", 6), True, Liveness("up", 0)),
    (Liveness("unknown", 1), False, Liveness("down", 2)),
])
def test_after_probe_with_two_failures_for_down(before, answered, expected):
    assert after_probe(before, answered, failures_for_down=2) == expected


NOW = datetime(2026, 11, 23, 12, 0, 0)


@pytest.mark.parametrize("state, heartbeat, alive", [
    ("up", NOW - timedelta(seconds=5), True),
    ("up", NOW - timedelta(seconds=60), False),  # probes stopped: stale
    ("up", None, False),
    ("down", NOW, False),
    ("unknown", NOW, False),
])
def test_is_alive_needs_up_and_a_fresh_heartbeat(state, heartbeat, alive):
    assert is_alive(state, heartbeat, NOW, timedelta(seconds=30)) is alive
