"""The reconcile plan of one application: plain data in, actions and rows out. Each case is
a situation a round meets, including the bugs the old pass had (ports lost on adoption,
'no free port' overwritten, containers left created, crash loops restarted every second,
evictions when the control plane itself was sick)."""
from __future__ import annotations

import pytest

from scheduler.orchestration.capacity import Capacity
from scheduler.orchestration.fleet import eviction_pause
from scheduler.orchestration.plan import BACKOFF_RESET_S, backoff_s, plan_application, status_of
from scheduler.orchestration.state import (
    AppState, Boot, Discard, HostFacts, InstanceState, Launch, Round, SeenContainer, ServiceState,
)
from tests.unit.scheduler.builders import host as snapshot

NOW = 1_000_000.0
ME = "berth-1"


def facts(number: int, **fields) -> HostFacts:
    defaults = dict(id=number, name=f"h{number:02d}", address="127.0.0.1", alive=True,
                    port_range=(20000 + 100 * number, 20000 + 100 * number + 9))
    return HostFacts(**{**defaults, **fields})


HOSTS = {n: facts(n) for n in (1, 2, 3)}


def svc(name="api", **fields) -> ServiceState:
    return ServiceState(**{"name": name, "image": "reg/app:1", "replicas": 2, **fields})


def seen(slot, host=1, service="api", revision=1, status="running", health=None, port=None,
         app="shop", cid=None) -> SeenContainer:
    return SeenContainer(host, cid or f"c-{service}-{slot}-{revision}-{host}",
                         f"{app}_{service}_{revision}_{slot}", app, service, slot, revision,
                         status, health, port)


def row(slot, host=1, service="api", revision=1, state="running", **fields) -> InstanceState:
    return InstanceState(service, slot, revision, f"shop_{service}_{revision}_{slot}", host,
                         fields.pop("container_id", f"c-{service}-{slot}-{revision}-{host}"),
                         state=state, **fields)


def plan(services, containers=(), rows=(), hosts=HOSTS, now=NOW, deleting=False, used=None,
         paused=None):
    app = AppState(7, "shop", tuple(services), tuple(rows), deleting=deleting)
    round_ = Round(now, ME, hosts, dependency_timeout_s=300, evictions_paused=paused)
    capacity = Capacity([snapshot(n, alive=h.alive) for n, h in hosts.items()], hosts, used or {})
    return plan_application(app, list(containers), round_, capacity)


def kinds(result) -> list[tuple[str, str, int]]:
    return [(type(a).__name__, a.service, a.slot) for a in result.actions]


# -- converging slots ---------------------------------------------------------------------


@pytest.mark.parametrize(("containers", "rows", "expected"), [
    # nothing runs yet: one launch per slot
    ((), (), [("Launch", "api", 0), ("Launch", "api", 1)]),
    # all there and recorded: nothing to do
    ((seen(0), seen(1, host=2)), (row(0), row(1, host=2)), []),
    # one exited: removed first (it holds the name), then launched again
    ((seen(0), seen(1, status="exited")), (row(0), row(1)), [("Discard", "api", 1), ("Launch", "api", 1)]),
    # left created by a worker that died between create and start: started, not replaced
    ((seen(0), seen(1, status="created")), (row(0),), [("Boot", "api", 1)]),
    # a third slot after a scale-down to 2: removed
    ((seen(0), seen(1), seen(2)), (row(0), row(1), row(2)), [("Discard", "api", 2)]),
    # an old revision beside the new one's full set: removed
    ((seen(0, revision=2), seen(1, revision=2), seen(0, revision=1, host=2)), (),
     [("Discard", "api", 0)]),
])
def test_slots(containers, rows, expected):
    services = [svc(revision=2)] if any(c.revision == 2 for c in containers) else [svc()]
    assert kinds(plan(services, containers, rows)) == expected


def test_a_steady_application_plans_nothing_and_writes_nothing():
    result = plan([svc(status="healthy")], [seen(0), seen(1, host=2)], [row(0), row(1, host=2)])
    assert result.actions == [] and result.rows == () and result.converged
    assert result.services["api"].status == "healthy"


def test_launches_are_placed_and_specified_by_the_plan():
    [first, second] = plan([svc(wants_port=True, command=("httpd", "-p", "$PORT"))]).actions
    assert isinstance(first, Launch) and first.host_id != second.host_id  # spread
    port = first.row.host_port
    assert 20000 <= port and first.spec.command == ["httpd", "-p", str(port)]
    assert first.spec.name == "shop_api_1_0" and first.spec.network_mode == "host"
    assert first.spec.labels["io.berth.port"] == str(port)
    assert first.spec.labels["io.berth.installation"] == ME


def test_an_adopted_container_keeps_its_port_and_stays_in_discovery():
    result = plan([svc(replicas=1, wants_port=True)], [seen(0, port=20105, health="healthy")])
    [adopted] = result.rows
    assert adopted.host_port == 20105 and adopted.container_id == "c-api-0-1-1"
    assert result.services["api"].endpoints == ("127.0.0.1:20105",)
    assert result.events == (("instance.adopt", "adopted shop_api_1_0", "api"),)


def test_ports_in_use_are_never_handed_out_again():
    hosts = {1: facts(1, port_range=(20000, 20001))}
    result = plan([svc(replicas=2, wants_port=True)], [seen(0, port=20000)], [row(0, host_port=20000)],
                  hosts=hosts, used={1: {20000}})
    [launch] = result.actions
    assert launch.row.host_port == 20001


def test_no_free_port_is_said_and_stays_said():
    hosts = {1: facts(1, port_range=(20000, 20000))}
    result = plan([svc(replicas=2, wants_port=True)], [seen(0, port=20000)], hosts=hosts,
                  used={1: {20000}})
    assert result.actions == []
    assert result.services["api"].status == "unschedulable"
    assert result.services["api"].detail == "no free port in 20000-20000 on h01"
    assert not result.converged


def test_no_host_fits_is_explained():
    result = plan([svc(cpus=64)])
    assert result.services["api"].status == "unschedulable"
    assert "0 of 3 hosts fit" in result.services["api"].detail


# -- hosts down, draining, a sick control plane -------------------------------------------


def test_containers_on_a_down_host_are_replaced_elsewhere_and_their_rows_kept():
    hosts = {**HOSTS, 1: facts(1, alive=False)}
    result = plan([svc()], [seen(1, host=2)], [row(0, host=1), row(1, host=2)], hosts=hosts)
    [launch] = result.actions
    assert (launch.slot, launch.host_id != 1) == (0, True)
    assert [(r.slot, r.state) for r in result.rows] == [(0, "lost")]


def test_a_flapping_host_gets_at_most_half_a_service_replaced_per_round():
    hosts = {**HOSTS, 1: facts(1, alive=False)}
    rows = [row(slot, host=1) for slot in range(4)]
    result = plan([svc(replicas=4)], [], rows, hosts=hosts)
    assert [a.slot for a in result.actions] == [0, 1]


def test_a_draining_host_gets_new_capacity_before_the_old_goes():
    hosts = {**HOSTS, 1: facts(1, draining=True)}
    result = plan([svc(replicas=1)], [seen(0, host=1)], [row(0, host=1)], hosts=hosts)
    assert [[type(a).__name__ for a in wave] for wave in result.waves] == [["Launch"], ["Discard"]]


@pytest.mark.parametrize(("alive", "paused"), [
    ((True, True, True), False),
    ((False, True, True), False),  # one of three: the fleet, not Berth
    ((False, False, True), True),  # two of three (67%): suspect the control plane
    ((False, False, False), True),
])
def test_evictions_pause_when_most_hosts_look_down_at_once(alive, paused):
    hosts = [facts(n + 1, alive=a) for n, a in enumerate(alive)]
    assert (eviction_pause(hosts) is not None) is paused


def test_maintenance_hosts_are_not_counted_as_sick():
    hosts = [facts(1, alive=False, maintenance=True), facts(2, alive=False, maintenance=True),
             facts(3)]
    assert eviction_pause(hosts) is None


def test_a_paused_round_evicts_nothing_and_keeps_discovery():
    hosts = {n: facts(n, alive=False) for n in (1, 2, 3)}
    rows = [row(0, host=1, host_port=20100, health="healthy"),
            row(1, host=2, host_port=20200, health="healthy")]
    endpoints = ("127.0.0.1:20100", "127.0.0.1:20200")
    result = plan([svc(endpoints=endpoints, status="healthy")], [], rows, hosts=hosts,
                  paused=eviction_pause(hosts.values()))
    assert result.actions == [] and result.rows == ()
    assert result.services["api"].endpoints == endpoints
    assert result.services["api"].detail.startswith("not evicting: 3 of 3 hosts look down")


# -- crash loops --------------------------------------------------------------------------


def test_a_first_crash_is_restarted_at_once_and_starts_the_back_off():
    result = plan([svc(replicas=1)], [seen(0, status="exited")], [row(0)])
    discard, launch = result.actions
    assert isinstance(discard, Discard) and launch.row.restarts == 1
    assert launch.row.backoff_until == NOW + backoff_s(1)


def test_a_crash_loop_waits_out_its_back_off_and_says_so():
    rows = [row(0, restarts=3, backoff_until=NOW + 7)]
    result = plan([svc(replicas=1)], [seen(0, status="exited")], rows)
    assert result.actions == []
    assert result.services["api"].status == "failing"
    assert result.services["api"].detail == ("crash-looping: slot 0 is exited after 3 restart(s); "
                                             "next restart in 7 s")
    later = plan([svc(replicas=1)], [seen(0, status="exited")], rows, now=NOW + 8)
    assert later.actions[-1].row.restarts == 4 and later.actions[-1].row.backoff_until == NOW + 8 + 16


@pytest.mark.parametrize(("restarts", "delay"), [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (50, 300)])
def test_back_off_doubles_up_to_five_minutes(restarts, delay):
    assert backoff_s(restarts) == delay


def test_a_slot_that_stayed_up_forgets_its_crashes():
    rows = [row(0, restarts=4, backoff_until=NOW - BACKOFF_RESET_S)]
    [write] = plan([svc(replicas=1)], [seen(0)], rows).rows
    assert (write.restarts, write.backoff_until) == (0, None)


# -- dependencies, status, endpoints ------------------------------------------------------


def test_a_service_waits_for_its_dependency_to_be_healthy():
    services = [svc("db", replicas=1, healthcheck={"test": ["CMD", "true"]}),
                svc("api", depends_on=(("db", "healthy"),))]
    result = plan(services, [seen(0, service="db", health="starting")])
    assert kinds(result) == []
    assert result.services["api"].status == "waiting"
    assert result.services["api"].detail == "waiting for db (healthy)"
    assert result.services["api"].waiting_since == NOW


def test_a_dependency_wait_past_its_deadline_fails_the_service_and_its_dependents():
    services = [svc("db", replicas=1, cpus=64), svc("api", depends_on=(("db", "healthy"),),
                                                     waiting_since=NOW - 301),
                svc("web", depends_on=(("api", "started"),))]
    result = plan(services)
    assert result.failed == {"api": "gave up after 300 s waiting for db (healthy)",
                             "web": "cannot start: api failed"}


def test_endpoints_list_ready_containers_that_stay():
    containers = [seen(0, port=20100, health="healthy"), seen(1, port=20101, health="starting"),
                  seen(2, port=20102, health="healthy")]  # slot 2 is an extra: leaving
    result = plan([svc(wants_port=True)], containers)
    assert result.services["api"].endpoints == ("127.0.0.1:20100",)


@pytest.mark.parametrize(("slots", "expected"), [
    ([], "pending"),
    ([(0, 1, True, "starting")], "started"),
    ([(0, 1, True, None), (1, 1, True, "healthy")], "healthy"),
    ([(0, 1, True, None), (1, 2, True, None)], "started"),  # another revision does not count
    ([(0, 1, True, None), (5, 1, True, None)], "started"),  # nor does a slot beyond replicas
    ([(0, 1, False, None), (1, 1, True, None)], "started"),
])
def test_status_counts_ready_containers_of_the_current_revision(slots, expected):
    assert status_of(svc(), slots) == expected


# -- teardown -----------------------------------------------------------------------------


def test_teardown_removes_dependents_first_in_waves():
    services = [svc("db", replicas=1), svc("api", depends_on=(("db", "healthy"),))]
    containers = [seen(0, service="db"), seen(0, service="api"), seen(1, service="api", host=2)]
    result = plan(services, containers, deleting=True)
    assert [[a.service for a in wave] for wave in result.waves] == [["api", "api"], ["db"]]
    assert result.strict and result.delete_when_done


def test_a_down_host_holds_the_teardown_of_what_depends_on_it():
    hosts = {**HOSTS, 2: facts(2, alive=False)}
    services = [svc("db", replicas=1), svc("api", depends_on=(("db", "healthy"),))]
    rows = [row(0, service="api", host=2)]
    result = plan(services, [seen(0, service="db")], rows, hosts=hosts, deleting=True)
    assert result.waves == () and not result.delete_when_done
    assert result.services["api"].detail == "1 container(s) left on down host(s) h02"
    assert result.services["db"].detail == "waiting for api to stop"


def test_identity_is_by_labels_so_names_never_collide():
    """shop + api-x and shop-api + x: one name each, whatever the separators in them."""
    a = plan([svc("api-x", replicas=1)]).actions[0].spec.name
    other = AppState(8, "shop-api", (svc("x", replicas=1),))
    round_ = Round(NOW, ME, HOSTS)
    b = plan_application(other, [], round_, Capacity([snapshot(1)], HOSTS, {})).actions[0].spec.name
    assert (a, b) == ("shop_api-x_1_0", "shop-api_x_1_0")


def test_boot_and_discard_go_by_container_id():
    result = plan([svc(replicas=1)], [seen(0, status="created", cid="abc"), seen(1, cid="def")])
    boot, discard = result.actions
    assert isinstance(boot, Boot) and boot.container_id == "abc"
    assert isinstance(discard, Discard) and discard.container_id == "def"
