"""Constraint strings: what parses to what, what matches which labels, and how bad syntax is refused."""
from __future__ import annotations

import pytest

from scheduler.placement import Constraint, PlacementRequest, parse_constraint, parse_constraints


@pytest.mark.parametrize(("text", "key", "op", "values", "canonical"), [
    ("disk==ssd", "disk", "==", ("ssd",), "disk==ssd"),
    ("  disk == ssd ", "disk", "==", ("ssd",), "disk==ssd"),
    ("zone!=b", "zone", "!=", ("b",), "zone!=b"),
    ("gpu in (a100,h100)", "gpu", "in", ("a100", "h100"), "gpu in (a100,h100)"),
    ("gpu in ( a100 , h100, a100 )", "gpu", "in", ("a100", "h100"), "gpu in (a100,h100)"),
    ("gpu not in (t4)", "gpu", "not in", ("t4",), "gpu not in (t4)"),
    ("kernel in (6.1,6.6)", "kernel", "in", ("6.1", "6.6"), "kernel in (6.1,6.6)"),
    ("disk", "disk", "exists", (), "disk"),
    ("!gpu", "gpu", "not exists", (), "!gpu"),
    ("berth.io/tier==gold", "berth.io/tier", "==", ("gold",), "berth.io/tier==gold"),
])
def test_parses(text, key, op, values, canonical):
    constraint = parse_constraint(text)
    assert (constraint.key, constraint.op, constraint.values) == (key, op, values)
    assert str(constraint) == canonical
    assert parse_constraint(str(constraint)) == constraint


@pytest.mark.parametrize(("text", "labels", "matches"), [
    ("disk==ssd", {"disk": "ssd"}, True),
    ("disk==ssd", {"disk": "hdd"}, False),
    ("disk==ssd", {}, False),
    ("zone!=b", {"zone": "a"}, True),
    ("zone!=b", {"zone": "b"}, False),
    ("zone!=b", {}, True),  # a host without the label is not in zone b
    ("gpu in (a100,h100)", {"gpu": "h100"}, True),
    ("gpu in (a100,h100)", {"gpu": "t4"}, False),
    ("gpu in (a100,h100)", {}, False),
    ("gpu not in (t4)", {"gpu": "t4"}, False),
    ("gpu not in (t4)", {}, True),
    ("disk", {"disk": ""}, True),
    ("disk", {"zone": "a"}, False),
    ("!gpu", {}, True),
    ("!gpu", {"gpu": "a100"}, False),
])
def test_matches(text, labels, matches):
    assert parse_constraint(text).matches(labels) is matches


@pytest.mark.parametrize(("text", "why"), [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("disk=ssd", "use '==' to compare, not '='"),
    ("disk==", "no value after '=='"),
    ("zone!=", "no value after '!='"),
    ("disk==s s", "'s s' is not a valid label value"),
    ("disk===ssd", "'=ssd' is not a valid label value"),
    ("gpu in a100,h100", "the values after 'in' must be in parentheses"),
    ("gpu not in t4", "the values after 'not in' must be in parentheses"),
    ("gpu in ()", "the value list is empty"),
    ("gpu in (a100,)", "'' is not a valid label value"),
    ("!", "'' is not a valid label key"),
    ("!-gpu", "'-gpu' is not a valid label key"),
    ("==ssd", "unrecognised syntax"),
    ("disk ssd", "unrecognised syntax"),
])
def test_rejects_bad_syntax(text, why):
    with pytest.raises(ValueError) as error:
        parse_constraint(text)
    message = str(error.value)
    assert message.startswith(f"invalid constraint {text!r}: {why}; expected ")
    assert "'key in (a,b)'" in message  # every message lists the accepted forms


def test_parse_constraints_keeps_order_and_passes_objects_through():
    ready = Constraint("net", "exists")
    assert parse_constraints(["disk==ssd", ready, "!gpu"]) == (
        Constraint("disk", "==", ("ssd",)), ready, Constraint("gpu", "not exists"))


def test_request_parses_constraint_strings():
    request = PlacementRequest("api", 1.0, 1 << 30, constraints=["disk==ssd", "!gpu"])
    assert request.constraints == (Constraint("disk", "==", ("ssd",)), Constraint("gpu", "not exists"))


def test_request_refuses_a_bad_constraint_string():
    with pytest.raises(ValueError, match=r"invalid constraint 'disk=ssd'"):
        PlacementRequest("api", 1.0, 1 << 30, constraints=["disk=ssd"])
