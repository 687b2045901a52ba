"""Where a host pulls from: its IDC's healthy mirror holding the digest, then others, then
the primary (pure), and the snapshot read for it."""
import pytest

from berth.models import Project
from berth.models.registries import MirrorTag, Registry
from berth.projects import catalogue
from registry_sync.nearest import (
    Mirror, PullTable, Source, pull_sources, read_pull_table, split_reference)

PRIMARY = Source("primary", "reg:5000")
HELD = frozenset({("shop/web", "v1", "sha256:new")})
STALE = frozenset({("shop/web", "v1", "sha256:old")})
DIGESTS = {("shop/web", "v1"): "sha256:new"}


def names(sources):
    return [s.name for s in sources]


@pytest.mark.parametrize("host_idc, mirrors, expected", [
    ("a", [Mirror("ma", "ma:5000", "a", True, HELD), Mirror("mb", "mb:5000", "b", True, HELD)],
     ["ma", "mb", "primary"]),
    ("b", [Mirror("ma", "ma:5000", "a", True, HELD), Mirror("mb", "mb:5000", "b", True, HELD)],
     ["mb", "ma", "primary"]),
    # Down in its own IDC: the next IDC's mirror, then the primary.
    ("b", [Mirror("ma", "ma:5000", "a", True, HELD), Mirror("mb", "mb:5000", "b", False, HELD)],
     ["ma", "primary"]),
    # A mirror holding an older digest of the tag would start the old image: skipped.
    ("a", [Mirror("ma", "ma:5000", "a", True, STALE)], ["primary"]),
    ("a", [Mirror("ma", "ma:5000", "a", True, frozenset())], ["primary"]),
    # A host with no IDC takes any holder, by name.
    (None, [Mirror("mz", "mz:5000", "z", True, HELD), Mirror("ma", "ma:5000", "a", True, HELD)],
     ["ma", "mz", "primary"]),
    ("a", [], ["primary"]),
])
def test_sources_in_order(host_idc, mirrors, expected):
    table = PullTable(tuple(mirrors), DIGESTS)
    sources = pull_sources(host_idc, "shop/web:v1", table, PRIMARY)
    assert names(sources) == expected
    assert sources[-1] is PRIMARY


def test_an_unknown_tag_or_a_digest_reference_comes_from_the_primary():
    table = PullTable((Mirror("ma", "ma:5000", "a", True, HELD),), DIGESTS)
    assert names(pull_sources("a", "shop/web:v2", table, PRIMARY)) == ["primary"]
    assert names(pull_sources("a", "shop/web@sha256:new", table, PRIMARY)) == ["primary"]


@pytest.mark.parametrize("path, expected", [
    ("shop/web:v1", ("shop/web", "v1", None)),
    ("shop/web", ("shop/web", "latest", None)),
    ("shop/web@sha256:ab", ("shop/web", None, "sha256:ab")),
])
def test_split_reference(path, expected):
    assert split_reference(path) == expected


def test_the_snapshot_reads_only_the_images_wanted(database):
    a = Registry(name="ma", url="http://127.0.0.1:6001", role="mirror", idc="a", service="s-a",
                 healthy=True)
    b = Registry(name="mb", url="http://127.0.0.1:6002", role="mirror", idc="b", service="s-b",
                 healthy=False)
    database.add_all([a, b, Project(name="shop", public=False)])
    database.flush()
    catalogue.record_push("shop/web", "v1", "sha256:new", size=None, actor="dev", addr=None)
    catalogue.record_push("shop/api", "v1", "sha256:api", size=None, actor="dev", addr=None)
    database.add_all([
        MirrorTag(registry_id=a.id, repository="shop/web", tag="v1", digest="sha256:new"),
        MirrorTag(registry_id=a.id, repository="shop/api", tag="v1", digest="sha256:api"),
        MirrorTag(registry_id=b.id, repository="shop/web", tag="v1", digest="sha256:old"),
    ])
    database.flush()
    table = read_pull_table({"shop/web:v1"})
    assert table.digests == {("shop/web", "v1"): "sha256:new"}
    assert sorted(table.mirrors, key=lambda m: m.name) == [
        Mirror("ma", "127.0.0.1:6001", "a", True, frozenset({("shop/web", "v1", "sha256:new")})),
        Mirror("mb", "127.0.0.1:6002", "b", False, frozenset({("shop/web", "v1", "sha256:old")})),
    ]
    assert read_pull_table(set()) == PullTable()
