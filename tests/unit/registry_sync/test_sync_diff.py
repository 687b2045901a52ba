import pytest

from registry_sync.diff import plan_sync

ALL = lambda repo, tag: True  # noqa: E731


@pytest.mark.parametrize("source, target, selects, deletes, copies, deleted, up_to_date", [
    ({("a", "1"): "d1"}, {}, ALL, False, [("a", "1")], [], 0),
    ({("a", "1"): "d1"}, {("a", "1"): "d1"}, ALL, False, [], [], 1),
    ({("a", "1"): "d2"}, {("a", "1"): "d1"}, ALL, False, [("a", "1")], [], 0),
    ({}, {("a", "1"): "d1"}, ALL, False, [], [], 0),
    ({}, {("a", "1"): "d1"}, ALL, True, [], [("a", "1")], 0),
    ({}, {("b", "1"): "d1"}, lambda r, t: r == "a", True, [], [], 0),
    ({("a", "1"): "d1", ("b", "1"): "d1"}, {}, lambda r, t: r == "a", False, [("a", "1")], [], 0),
])
def test_plan_sync(source, target, selects, deletes, copies, deleted, up_to_date):
    plan = plan_sync(source, target, selects, deletes)
    assert (plan.copies, plan.deletes, plan.up_to_date) == (copies, deleted, up_to_date)
