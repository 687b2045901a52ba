"""Which tags a policy selects (a table of cases), and what policy input is refused."""
from types import SimpleNamespace

import pytest

from berth.errors import InvalidInput
from berth.models.registries import Registry
from registry_sync import policies


def policy(projects="*", repositories="*", tags="*", tags_regex=False):
    return SimpleNamespace(projects=projects, repositories=repositories, tags=tags,
                           tags_regex=tags_regex)


@pytest.mark.parametrize("rule, repository, tag, selected", [
    (policy(), "shop/web", "1", True),
    (policy(projects="shop"), "shop/web", "1", True),
    (policy(projects="shop"), "pub/web", "1", False),
    (policy(repositories="web"), "shop/web", "1", True),
    (policy(repositories="web"), "shop/api/web", "1", False),  # without the project: api/web
    (policy(repositories="api/*"), "shop/api/web", "1", True),
    (policy(repositories="shop/*"), "shop/web", "1", False),  # the project is not in it
    (policy(tags="v*"), "shop/web", "v1.2", True),
    (policy(tags="v*"), "shop/web", "latest", False),
    (policy(tags=r"v\d+\.\d+", tags_regex=True), "shop/web", "v1.2", True),
    (policy(tags=r"v\d+", tags_regex=True), "shop/web", "v1.2", False),  # whole tag only
    (policy(tags="latest|stable", tags_regex=True), "shop/web", "stable", True),
    (policy(projects="Shop"), "shop/web", "1", False),  # case matters
])
def test_selects(rule, repository, tag, selected):
    assert policies.selects(rule, repository, tag) is selected


@pytest.fixture
def mirror(database):
    database.add(Registry(name="bj", url="http://bj:5000", role="mirror", service="s-bj"))
    database.add(Registry(name="primary", url="http://p:5000", role="primary", service="p"))
    database.flush()


@pytest.mark.parametrize("raw, fragment", [
    ({"name": "x", "mirrors": ["bj"]}, "policy name must be 2 to 64"),
    ({"name": "to-bj", "mirrors": []}, "at least one mirror"),
    ({"name": "to-bj"}, "at least one mirror"),
    ({"name": "to-bj", "mirrors": ["bj", "sh"]}, "no such mirror: sh"),
    ({"name": "to-bj", "mirrors": ["primary"]}, "no such mirror: primary"),
    ({"name": "to-bj", "mirrors": ["bj"], "tags": "v(", "tags_regex": True},
     "tags is not a valid regular expression: missing ), unterminated subpattern"),
    ({"name": "to-bj", "mirrors": ["bj"], "tags": ""}, "tags must be a pattern"),
    ({"name": "to-bj", "mirrors": ["bj"], "schedule_s": 5}, "schedule_s must be null or at least"),
])
def test_validate_refuses_with_a_clear_message(mirror, raw, fragment):
    with pytest.raises(InvalidInput, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        policies.validate(raw)


def test_create_update_delete(mirror, database):
    created = policies.create_policy({"name": "to-bj", "mirrors": ["bj"], "tags": "v*"},
                                     actor="admin")
    assert [m.name for m in created.mirrors] == ["bj"]
    database.flush()
    assert (created.projects, created.tags_regex) == ("*", False)
    # switching to a regex checks the stored pattern: "v*" is a valid regex too
    updated = policies.update_policy("to-bj", {"tags_regex": True}, actor="admin")
    assert (updated.tags, updated.tags_regex) == ("v*", True)
    with pytest.raises(InvalidInput, match="regular expression"):
        policies.update_policy("to-bj", {"tags": "*"}, actor="admin")
    policies.delete_policy("to-bj", actor="admin")
    assert policies.list_policies() == []


def test_matching_tags_reads_the_catalogue(mirror, database):
    from berth.projects import catalogue
    from berth.models import Project

    database.add(Project(name="shop", public=False))
    database.flush()
    catalogue.record_push("shop/web", "v1", "sha256:a", size=None, actor="dev", addr=None)
    catalogue.record_push("shop/web", "latest", "sha256:a", size=None, actor="dev", addr=None)
    created = policies.create_policy({"name": "to-bj", "mirrors": ["bj"], "tags": "v*"},
                                     actor="admin")
    database.flush()
    assert policies.matching_tags(created) == [("shop/web", "v1", "sha256:a")]

