"""Adding registries (probed first), the primary from configuration, probes, the sync client."""
import dataclasses

import pytest
from sqlalchemy import select

from berth.clock import utcnow
from berth.errors import Conflict, InvalidInput
from berth.models import Event
from berth.models.registries import Registry
from berth.projects.registry_access import key_directory, signing_key
from berth.registry_auth import Grant, verify_token
from registry_sync import registries

UP = lambda url, verify, bundle: None  # noqa: E731


def down(url, verify, bundle):
    raise ConnectionError("connection refused")


def add(name="bj", url="http://bj:5000", **kwargs):
    return registries.add_registry(name, url, idc="bj", actor="admin",
                                   probe=kwargs.pop("probe", UP), **kwargs)


def test_a_mirror_is_saved_healthy_with_its_own_service(database):
    mirror = add(ca_bundle="PEM")
    database.flush()
    assert (mirror.role, mirror.service, mirror.healthy) == ("mirror", "berth-mirror-bj", True)
    assert database.scalar(select(Event.kind)) == "registry.add"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"name": "B J"}, "registry name must be"),
    ({"url": "ftp://bj"}, "must be http:// or https://"),
    ({"url": "http://bj:5000/v2"}, "must have no path"),
    ({"probe": down}, "the registry at http://bj:5000 did not answer: connection refused"),
])
def test_refused_input_saves_nothing(database, kwargs, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        add(**kwargs)
    assert database.scalars(select(Registry)).all() == []


def test_one_primary_and_unique_names_and_services(database, config):
    registries.ensure_primary(config)
    add()
    database.flush()
    with pytest.raises(Conflict, match="primary registry already"):
        add("other", role="primary")
    with pytest.raises(Conflict, match="already exists"):
        add()
    with pytest.raises(Conflict, match="used by another registry"):
        add("sh", service="berth-mirror-bj")


def test_ensure_primary_follows_the_configuration(database, config):
    first = registries.ensure_primary(config)
    database.flush()
    again = registries.ensure_primary(dataclasses.replace(config, registry_url="http://new:5000"))
    assert again is first and (again.name, again.url, again.service) == (
        "primary", "http://new:5000", config.registry_service)


def test_the_primary_is_not_removed_a_mirror_is(database, config):
    registries.ensure_primary(config)
    add()
    database.flush()
    with pytest.raises(Conflict):
        registries.remove_registry("primary", actor="admin")
    registries.remove_registry("bj", actor="admin")
    assert [r.name for r in registries.list_registries()] == ["primary"]


def test_probe_all_records_health(database, config):
    registries.ensure_primary(config)
    add()
    database.commit()
    counts = registries.probe_all(probe=lambda url, *_: down(url, *_) if "bj" in url else None)
    assert counts == {"up": 1, "down": 1}
    bj = database.scalar(select(Registry).where(Registry.name == "bj"))
    assert (bj.healthy, bj.last_error, bj.last_checked_at is not None) == (
        False, "connection refused", True)


def test_the_sync_client_signs_for_the_registry_as_itself(database, config):
    mirror = add(ca_bundle="-----BEGIN CERTIFICATE-----\n")
    client = registries.sync_client(mirror, config)
    token = client.token_source([Grant("repository", None, "shop/web", frozenset({"push"}))])
    claims = verify_token(token, signing_key(key_directory(config)), issuer=config.token_issuer,
                          audience="berth-mirror-bj", now=utcnow())
    assert claims["sub"] == registries.SYNC_SUBJECT
    assert claims["exp"] - claims["iat"] == registries.SYNC_TOKEN_LIFETIME_S
    assert client.http.verify.startswith(str(config.instance_dir))  # the CA bundle as a file
    mirror.tls_verify = False
    assert registries.sync_client(mirror, config).http.verify is False


def test_a_mirrors_registry_config_has_its_service_and_no_notifications(database, config):
    from berth.errors import NotFound
    from berth.projects.registry_config import mirror_config, registry_config

    add()
    database.flush()
    mirror = mirror_config(config, "http://berth:8000", "bj")
    primary = registry_config(config, "http://berth:8000")
    assert "notifications" not in mirror
    assert mirror["auth"]["token"] == {**primary["auth"]["token"], "service": "berth-mirror-bj"}
    with pytest.raises(NotFound, match="no mirror registry 'sh'"):
        mirror_config(config, "http://berth:8000", "sh")
