"""Container hardening: a service may add back only allowlisted capabilities, and every
container spec carries them with its pids limit and read-only choice."""
import pytest

from berth.errors import InvalidInput
from berth.workloads.definitions import parse_service
from scheduler.orchestration.capacity import container_spec
from scheduler.orchestration.state import ServiceState

IMAGE = "127.0.0.1:5000/library/busybox:1"


@pytest.mark.parametrize("changes, fragment", [
    ({"capabilities": ["SYS_ADMIN"]}, "capabilities SYS_ADMIN are not allowed"),
    ({"capabilities": "NET_RAW"}, "capabilities must be a list"),
    ({"pids_limit": 0}, "pids_limit must be"),
    ({"pids_limit": True}, "pids_limit must be"),
    ({"read_only": "yes"}, "read_only must be"),
])
def test_bad_hardening_fields_name_the_field(changes, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        parse_service({"name": "web", "image": IMAGE, **changes})


def test_defaults_and_allowlisted_capabilities():
    spec = parse_service({"name": "web", "image": IMAGE, "capabilities": ["cap_net_bind_service"]})
    assert (spec.pids_limit, spec.read_only) == (512, False)


def test_container_spec_carries_the_hardening():
    service = ServiceState(name="web", image=IMAGE, capabilities=("NET_BIND_SERVICE",),
                           pids_limit=64, read_only=True)
    spec = container_spec("inst", "shop", service, 0, None)
    assert (spec.cap_add, spec.pids_limit, spec.read_only) == (("NET_BIND_SERVICE",), 64, True)
