"""A service's healthcheck in the API's definitions: a misspelt or mistyped field is refused
with the field named, instead of the engine quietly checking on its default rhythm; what a
Compose file's healthcheck becomes passes the same checks."""
import pytest

from berth.errors import InvalidInput
from berth.workloads import compose, definitions

IMAGE = "127.0.0.1:5000/shop/web:1"
TEST = ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:$PORT/"]


def parse(healthcheck):
    return definitions.parse_service({"name": "web", "image": IMAGE, "port": True,
                                      "healthcheck": healthcheck})


def test_a_full_healthcheck_is_kept_as_written():
    check = {"test": TEST, "interval_s": 0.5, "timeout_s": 5, "retries": 3, "start_period_s": 0}
    assert parse(check).healthcheck == check


@pytest.mark.parametrize("check, message", [
    ({"test": TEST, "interval": 1}, r"unknown field\(s\) interval; known: test, interval_s"),
    ({"test": TEST, "intervals_s": 1, "timout_s": 2}, r"unknown field\(s\) intervals_s, timout_s"),
    ({"test": TEST, "interval_s": "1s"}, "healthcheck.interval_s must be seconds"),
    ({"test": TEST, "timeout_s": -1}, "healthcheck.timeout_s must be seconds"),
    ({"test": TEST, "timeout_s": 0.0001}, "healthcheck.timeout_s must be seconds"),
    ({"test": TEST, "start_period_s": True}, "healthcheck.start_period_s must be seconds"),
    ({"test": TEST, "retries": 2.5}, "healthcheck.retries must be a whole number"),
    ({"test": TEST, "retries": -1}, "healthcheck.retries must be a whole number"),
    ({"interval_s": 1}, "healthcheck.test must be a list"),
    ("wget localhost", "healthcheck.test must be a list"),
])
def test_bad_healthchecks_are_refused_with_the_field_named(check, message):
    with pytest.raises(InvalidInput, match=message):
        parse(check)


def test_a_compose_healthcheck_passes_the_same_checks():
    text = f"""
name: shop
services:
  web:
    image: {IMAGE}
    healthcheck:
      test: ["CMD", "true"]
      interval: 500ms
      timeout: 0s
      retries: 4
      start_period: 1m
"""
    [web] = compose.parse(text)["services"]
    assert parse(web["healthcheck"]).healthcheck == {
        "test": ["CMD", "true"], "interval_s": 0.5, "timeout_s": 0, "retries": 4,
        "start_period_s": 60}
