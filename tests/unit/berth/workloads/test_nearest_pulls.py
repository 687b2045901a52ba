"""The deployer pulls from the host's nearest mirror that holds the image, records where the
image came from, and falls back to the next source when a mirror fails."""
import pytest
from sqlalchemy import select

from berth import db
from berth.models import ContainerInstance, Host, Project
from berth.models.registries import MirrorTag, Registry
from berth.projects import catalogue
from tests.unit.berth.workloads.fake_fleet import IMAGE, deploy

ONE = {"name": "one", "services": [{"name": "web", "image": IMAGE, "replicas": 2}]}
MIRROR_A, MIRROR_B = "127.0.0.1:6001", "127.0.0.1:6002"


@pytest.fixture
def mirrored(database, fleet):
    """h1 in IDC a, h2 in IDC b; each IDC's mirror holds the image's current digest."""
    engines, connect = fleet
    for name, idc in (("h1", "a"), ("h2", "b")):
        database.scalar(select(Host).where(Host.name == name)).idc = idc
    if database.scalar(select(Project).where(Project.name == "library")) is None:
        database.add(Project(name="library", public=True))
    a = Registry(name="mirror-a", url=f"http://{MIRROR_A}", role="mirror", idc="a",
                 service="s-a", healthy=True)
    b = Registry(name="mirror-b", url=f"http://{MIRROR_B}", role="mirror", idc="b",
                 service="s-b", healthy=True)
    database.add_all([a, b])
    database.flush()
    catalogue.record_push("library/busybox", "1", "sha256:one", size=None, actor="dev", addr=None)
    database.add_all([MirrorTag(registry_id=r.id, repository="library/busybox", tag="1",
                                digest="sha256:one") for r in (a, b)])
    db.session.commit()
    by_host = dict(zip(("h1", "h2"), engines.values()))
    return by_host, connect


def pulled_from(database) -> dict[str, str | None]:
    rows = database.execute(select(Host.name, ContainerInstance.pulled_from)
                            .join(Host, Host.id == ContainerInstance.host_id)).all()
    return dict(rows)


def test_each_host_pulls_from_its_own_idc_mirror(database, config, mirrored):
    engines, connect = mirrored
    deploy(ONE, config, connect)
    assert pulled_from(database) == {"h1": "mirror-a", "h2": "mirror-b"}
    assert f"{MIRROR_A}/library/busybox:1" in engines["h1"].pulls
    assert f"{MIRROR_B}/library/busybox:1" in engines["h2"].pulls
    assert IMAGE not in engines["h1"].pulls  # the mirror's copy is tagged with the primary's name


def test_a_failing_mirror_gives_way_to_the_next_idc_then_the_primary(database, config, mirrored):
    engines, connect = mirrored
    engines["h2"].unreachable_registries = {MIRROR_B}
    engines["h1"].unreachable_registries = {MIRROR_A, MIRROR_B}
    deploy(ONE, config, connect)
    assert pulled_from(database) == {"h1": "primary", "h2": "mirror-a"}


def test_a_mirror_behind_the_primary_is_not_used(database, config, mirrored):
    engines, connect = mirrored
    catalogue.record_push("library/busybox", "1", "sha256:two", size=None, actor="dev", addr=None)
    db.session.commit()
    deploy(ONE, config, connect)
    assert pulled_from(database) == {"h1": "primary", "h2": "primary"}
