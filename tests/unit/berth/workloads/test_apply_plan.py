"""The apply plan, pure: per service, a scale, a release, nothing, or a 409 for what cannot
change in place."""
import pytest

from berth.errors import Conflict
from berth.workloads import apply
from berth.workloads.definitions import ServiceSpec

IMAGE = "127.0.0.1:5000/shop/web:1"


def spec(**fields):
    return apply.wanted(ServiceSpec(**{"name": "web", "image": IMAGE, **fields}))


@pytest.mark.parametrize("current, desired, replicas, changes", [
    (spec(), spec(), None, {}),
    (spec(replicas=1), spec(replicas=3), (1, 3), {}),
    (spec(), spec(image=IMAGE[:-1] + "2"), None, {"image": {"from": IMAGE, "to": IMAGE[:-1] + "2"}}),
    (spec(cpus=0.1, replicas=2), spec(cpus=0.5, replicas=1), (2, 1),
     {"cpus": {"from": 0.1, "to": 0.5}}),
    (spec(environment={"A": "1"}), spec(environment={"A": "2"}), None,
     {"environment": {"from": {"A": "1"}, "to": {"A": "2"}}}),
])
def test_what_changes(current, desired, replicas, changes):
    changed, unchanged, notes = apply.plan("shop", {"web": current}, {"web": desired})
    if not replicas and not changes:
        assert (changed, unchanged, notes) == ([], ["web"], [])
    else:
        [change] = changed
        assert (change.replicas, change.changes, unchanged) == (replicas, changes, [])


@pytest.mark.parametrize("current, desired, message", [
    ({"web": spec()}, {"web": spec(), "db": spec()}, "adds db"),
    ({"web": spec(), "db": spec()}, {"web": spec()}, "removes db"),
    ({"web": spec()}, {"web": spec(port=True)}, "port False -> True"),
    ({"web": spec()}, {"web": spec(constraints=["disk==ssd"])}, "constraints [] -> ['disk==ssd']"),
    ({"web": spec()}, {"web": spec(depends_on={"db": "healthy"})}, "depends_on"),
    ({"web": spec()}, {"web": spec(capabilities=["CHOWN"])}, "capabilities"),
])
def test_what_cannot_change_in_place(current, desired, message):
    with pytest.raises(Conflict, match="tear the application down") as refused:
        apply.plan("shop", current, desired)
    assert message in refused.value.message


def test_a_release_under_way_holds_other_changes_and_scales():
    with pytest.raises(Conflict, match="release 7 is under way"):
        apply.plan("shop", {"web": spec()}, {"web": spec(cpus=0.5)}, releasing={"web": 7})
    with pytest.raises(Conflict, match="scale it once the release is over"):
        apply.plan("shop", {"web": spec()}, {"web": spec(replicas=2)}, releasing={"web": 7})
    assert apply.plan("shop", {"web": spec()}, {"web": spec()}, releasing={"web": 7})[1] == ["web"]


def test_the_autoscaler_keeps_its_replicas_and_says_so():
    changed, unchanged, notes = apply.plan("shop", {"web": spec(replicas=4)},
                                           {"web": spec(replicas=2)}, autoscaled=frozenset({"web"}))
    assert (changed, unchanged) == ([], ["web"]) and "autoscaler owns them (4 now)" in notes[0]


def test_a_metrics_endpoint_changes_in_place_with_no_release():
    metrics = {"port": 0, "path": "/metrics", "histogram": "http_request_duration_seconds",
               "status_label": "code"}
    changed, unchanged, _ = apply.plan("shop", {"web": spec(port=True)},
                                       {"web": spec(port=True, metrics=metrics)})
    [change] = changed
    assert (change.changes, change.settings, unchanged) == (
        {}, {"metrics": {"from": None, "to": metrics}}, [])
    assert change.as_dict()["changes"] == {"metrics": {"from": None, "to": metrics}}
