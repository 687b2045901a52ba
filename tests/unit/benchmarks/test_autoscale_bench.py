"""The autoscaler benchmark's decision part (benchmarks/autoscale.py) runs, small: every policy
is decided, busy services are scaled up and idle ones down, and the deploys are only counted."""
import argparse

from benchmarks.autoscale import measure_decide
from berth import db


def test_the_decision_part_decides_every_service():
    try:
        result = measure_decide(argparse.Namespace(services=9, replicas=3))
    finally:
        db.session.remove()
    assert result["decided"] == 9
    assert result["directions"] == {"up": 3, "down": 3, "none": 3}
    assert result["deploys_enqueued"] == 6  # the 3 up and the 3 down, none sent
