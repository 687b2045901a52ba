"""The engine's log window and memory reading (berth.engine.sdk), without an engine: the
stamps docker puts on log lines, the exact (since, until] cut, and memory as the CLI shows it."""
from datetime import UTC, datetime

import pytest

from berth.engine import ContainerSpec, Endpoint
from berth.engine.fake import FakeEngine
from berth.engine.sdk import DockerEngine, lines_between, memory_in_use, timestamp_ns, to_ns

T0 = int(datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp())  # Unix seconds
NS = 1_000_000_000


@pytest.mark.parametrize("text, expected", [
    ("2026-01-05T12:00:00.000000001Z", T0 * NS + 1),
    ("2026-01-05T12:00:00.5Z", T0 * NS + NS // 2),  # RFC 3339 Nano drops trailing zeros
    ("2026-01-05T12:00:00Z", T0 * NS),
    ("2026-01-05T13:00:00.25+01:00", T0 * NS + NS // 4),
    ("2026-01-05T11:30:00-00:30", T0 * NS),
    ("2026-01-05T12:00:00.1234567891Z", T0 * NS + 123456789),  # beyond ns: cut
    ("", None), ("hello", None), ("2026-13-05T12:00:00Z", None), ("2026-01-05 12:00:00Z", None),
])
def test_timestamp_ns(text, expected):
    assert timestamp_ns(text) == expected


def stamped(*records: tuple[int, str]) -> bytes:
    return "".join(f"{datetime.fromtimestamp(ns // NS, UTC):%Y-%m-%dT%H:%M:%S}.{ns % NS:09d}Z "
                   f"{line}\n" for ns, line in records).encode()


LOG = stamped((T0 * NS, "on since"), (T0 * NS + 1, "just after since"),
              (T0 * NS + 5 * NS, "ERROR on until"), (T0 * NS + 5 * NS + 1, "just after until"))


@pytest.mark.parametrize("since_ns, until_ns, expected", [
    (T0 * NS, T0 * NS + 5 * NS, ["just after since", "ERROR on until"]),  # (since, until]
    (None, T0 * NS + 5 * NS, ["on since", "just after since", "ERROR on until"]),
    (T0 * NS + 5 * NS, T0 * NS + 9 * NS, ["just after until"]),  # the next window: the rest
    (T0 * NS + 9 * NS, T0 * NS + 10 * NS, []),
])
def test_lines_between_cuts_by_each_lines_own_stamp(since_ns, until_ns, expected):
    assert lines_between(LOG, since_ns, until_ns) == expected


def test_a_log_out_of_stamp_order_is_cut_by_stamp_not_by_place():
    # stdout and stderr are stamped, then written, apart: a later stamp can come first.
    raw = stamped((T0 * NS + 3, "ERROR late"), (T0 * NS + 1, "early"), (T0 * NS + 2, "middle"))
    first, second = lines_between(raw, None, T0 * NS + 1), lines_between(raw, T0 * NS + 1, T0 * NS + 9)
    assert (first, second) == (["early"], ["ERROR late", "middle"])


def test_lines_between_keeps_spaces_drops_carriage_returns_and_survives_bad_bytes():
    raw = stamped((T0 * NS, "  two  spaces "), (T0 * NS, "tty\r"), (T0 * NS, "")) \
        + b"2026-01-05T12:00:00Z caf\xe9\n"
    assert lines_between(raw, None, T0 * NS) == ["  two  spaces ", "tty", "", "caf\ufffd"]


def test_a_long_line_in_parts_counts_once():
    # Docker splits a line past 16 KiB into parts, each stamped; only the last ends it.
    raw = stamped((T0 * NS, "short")) + b"2026-01-05T12:00:01.000000000Z " + b"x" * 10 \
        + b"2026-01-05T12:00:01.000000100Z yyy\n"
    assert len(lines_between(raw, None, (T0 + 2) * NS)) == 2


@pytest.mark.parametrize("memory, expected", [
    ({}, None),  # not running
    ({"usage": 100, "stats": {"inactive_file": 30, "active_file": 5}}, 70),  # cgroup v2
    ({"usage": 100, "stats": {"total_inactive_file": 40, "inactive_file": 30}}, 60),  # v1
    ({"usage": 100, "stats": {"total_inactive_file": 400}}, 100),  # more than usage: usage
    ({"usage": 100, "stats": {}}, 100),
    ({"usage": 100}, 100),
])
def test_memory_in_use_like_the_docker_cli(memory, expected):
    assert memory_in_use(memory) == expected


class FakeApi:
    def __init__(self, raw):
        self.raw, self.asked = raw, []

    def logs(self, container, **params):
        self.asked.append((container, params))
        return self.raw


def test_docker_engine_asks_a_little_more_than_the_window_and_cuts_it_exactly():
    engine = DockerEngine(Endpoint("unix:///nonexistent/docker.sock"))
    try:
        api = FakeApi(LOG)
        engine._client.api.logs = api.logs  # the request the SDK would send, answered here
        since, until = float(T0), float(T0 + 5)
        assert engine.logs_since("c1", since, until) == ["just after since", "ERROR on until"]
        (container, params), = api.asked
        assert container == "c1" and params["stdout"] and params["stderr"] and params["timestamps"]
        assert params["since"] < since and params["until"] > until
        assert engine.logs_since("c1", None, until)[0] == "on since"
        assert api.asked[1][1]["since"] is None
    finally:
        engine.close()


def test_to_ns_keeps_microseconds():
    moment = datetime(2026, 1, 5, 12, 0, 0, 123457, tzinfo=UTC)
    assert to_ns(moment.timestamp()) == T0 * NS + 123457000


def test_fake_engine_keeps_each_containers_log_in_its_window():
    engine = FakeEngine(images={"img"})
    state = engine.create(ContainerSpec(name="a", image="img", labels={}))
    engine.start(state.id)
    engine.log("a", "one", "two", at=10.0)
    engine.log(state.id, "three", at=20.0)
    assert engine.logs_since("a", None, 15.0) == ["one", "two"]
    assert engine.logs_since("a", 10.0, 20.0) == ["three"]
    assert engine.logs_since("missing", None, 20.0) is None
    engine.in_use["a"] = 5
    assert engine.memory_usage("a") == 5
    engine.stop("a")
    assert engine.memory_usage("a") is None
