"""Tokens for a mirror's service: pull only, whoever asks; the audience is the service asked for."""
import pytest

from berth import db
from berth.clock import utcnow
from berth.models.registries import Registry
from berth.projects.registry_access import key_directory, signing_key
from berth.registry_auth import verify_token
from tests.support import basic_auth

MIRROR_SERVICE = "berth-mirror-bj"


@pytest.fixture
def shop(app, client, admin):
    client.post("/api/v1/users", json={"username": "dev", "password": "dev-password"},
                headers=admin)
    client.post("/api/v1/projects", json={"name": "shop"}, headers=admin)
    client.post("/api/v1/projects/shop/members", json={"username": "dev", "role": "developer"},
                headers=admin)
    with app.app_context(), db.unit_of_work():
        db.session.add(Registry(name="bj", url="http://mirror:5000", role="mirror",
                                service=MIRROR_SERVICE))
    return client


def token(client, service, scope, who="dev"):
    return client.get(f"/service/token?service={service}&scope={scope}",
                      headers=basic_auth(who, f"{who}-password"))


def claims(app, response, audience):
    config = app.config["BERTH"]
    return verify_token(response.json["token"], signing_key(key_directory(config)),
                        issuer=config.token_issuer, audience=audience, now=utcnow())


@pytest.mark.parametrize("who, scope, granted", [
    ("dev", "repository:shop/app:pull,push,delete", ["pull"]),
    ("dev", "repository:shop/app:push", []),
    ("admin", "repository:shop/app:*", ["pull"]),
    ("admin", "registry:catalog:*", []),
])
def test_a_mirror_service_grants_pull_only(app, shop, who, scope, granted):
    response = token(shop, MIRROR_SERVICE, scope, who)
    assert response.status_code == 200, response.json
    assert [a["actions"] for a in claims(app, response, MIRROR_SERVICE)["access"]] == [granted]


def test_the_primary_service_still_grants_push(app, shop):
    service = app.config["BERTH"].registry_service
    response = token(shop, service, "repository:shop/app:pull,push")
    assert claims(app, response, service)["access"][0]["actions"] == ["pull", "push"]


def test_a_token_is_for_the_service_asked_for_only(app, shop):
    response = token(shop, MIRROR_SERVICE, "repository:shop/app:pull")
    with pytest.raises(Exception):
        claims(app, response, app.config["BERTH"].registry_service)


def test_an_unknown_service_is_400(shop):
    response = token(shop, "berth-mirror-nowhere", "repository:shop/app:pull")
    assert response.status_code == 400
    assert "unknown service 'berth-mirror-nowhere'" in response.json["error"]
