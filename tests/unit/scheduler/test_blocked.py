"""The bulk skip over hosts at a service's limit: it must stop exactly at the first host not at it."""
from __future__ import annotations

import random

import pytest

from scheduler.placement.blocked import skip_backward, skip_forward


def entries_and_blocked(pattern: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """'x' marks a blocked entry, '.' a free one; loads repeat to exercise equal-load runs."""
    entries = [(position // 2, position) for position in range(len(pattern))]
    return entries, [entry for entry, mark in zip(entries, pattern) if mark == "x"]


@pytest.mark.parametrize(("pattern", "at", "end", "expected"), [
    ("x", 0, 1, 1),
    ("x.", 0, 2, 1),
    ("xxx.x", 0, 5, 3),
    ("xxxxx", 0, 5, 5),
    ("xxxxx", 0, 3, 3),        # never beyond the end of the scan
    (".xx.xx", 1, 6, 3),
    (".xx.xx", 4, 6, 6),
    ("x.x.x.", 2, 6, 3),
])
def test_skip_forward(pattern, at, end, expected):
    entries, blocked = entries_and_blocked(pattern)
    assert skip_forward(entries, at, end, blocked) == expected


@pytest.mark.parametrize(("pattern", "at", "expected"), [
    ("x", 0, -1),
    (".x", 1, 0),
    ("x.xxx", 4, 1),
    ("xxxxx", 4, -1),
    ("xx.xx.", 1, -1),
    ("xx.xx.", 4, 2),
])
def test_skip_backward(pattern, at, expected):
    entries, blocked = entries_and_blocked(pattern)
    assert skip_backward(entries, at, blocked) == expected


@pytest.mark.parametrize("seed", range(5))
def test_skips_agree_with_a_step_by_step_walk(seed):
    rng = random.Random(seed)
    pattern = "".join(rng.choice("xx.") for _ in range(200))
    entries, blocked = entries_and_blocked(pattern)
    for at, mark in enumerate(pattern):
        if mark != "x":
            continue
        forward = at
        while forward < len(pattern) and pattern[forward] == "x":
            forward += 1
        backward = at
        while backward >= 0 and pattern[backward] == "x":
            backward -= 1
        assert skip_forward(entries, at, len(pattern), blocked) == forward
        assert skip_backward(entries, at, blocked) == backward
