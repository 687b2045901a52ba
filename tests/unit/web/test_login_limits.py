"""Failed logins are limited per username and per client address, on the login form, on
API HTTP Basic auth and on the registry token endpoint; successful ones never are."""
import dataclasses

import pytest

from berth import accounts, audit, db
from berth.config import Config
from tests.support import basic_auth, csrf_token_of

PER_USER, PER_ADDRESS = 3, 5
TOKEN = "/service/token?service=berth-registry"


@pytest.fixture
def config(config):
    return dataclasses.replace(config, login_failures_per_user=f"{PER_USER} per 5 minutes",
                               login_failures_per_address=f"{PER_ADDRESS} per 5 minutes")


@pytest.fixture
def users(app):
    with app.app_context(), db.unit_of_work():
        for name in ("viewer", "other", "ci"):
            accounts.create_user(name, f"{name}-password")


def form_login(client, username, password, address="127.0.0.1"):
    token = csrf_token_of(client.get("/login").text)
    return client.post("/login", data={"csrf_token": token, "username": username,
                                       "password": password},
                       environ_base={"REMOTE_ADDR": address})


def api_me(client, username, password, address="127.0.0.1"):
    return client.get("/api/v1/me", headers=basic_auth(username, password),
                      environ_base={"REMOTE_ADDR": address})


def registry_token(client, username, password, address="127.0.0.1"):
    return client.get(TOKEN, headers=basic_auth(username, password),
                      environ_base={"REMOTE_ADDR": address})


def failed_login_events(app):
    with app.app_context():
        return audit.query(kind="user.login_failed")


def assert_locked(response):
    assert response.status_code == 429, response.text
    assert 0 < int(response.headers["Retry-After"]) <= 300


@pytest.mark.parametrize("attempt, via", [
    (form_login, "login form"),
    (api_me, "HTTP Basic"),
    (registry_token, "registry token endpoint"),
])
def test_failures_lock_the_username_even_for_the_right_password(app, client, users, attempt,
                                                                via):
    for _ in range(PER_USER):
        assert attempt(client, "viewer", "wrong-password").status_code == 401
    assert_locked(attempt(client, "viewer", "viewer-password"))
    # Each failure is recorded although its request was rolled back; never the password.
    events = failed_login_events(app)
    assert [(e.subject, e.source_addr, e.data["via"]) for e in events] == (
        [("viewer", "127.0.0.1", via)] * PER_USER)
    assert not any("password" in f"{e.message} {e.data}" for e in events)
    # Refused attempts are not checked, so not counted or recorded again.
    assert_locked(attempt(client, "viewer", "wrong-password"))
    assert len(failed_login_events(app)) == PER_USER


def test_api_and_registry_answer_429_as_json(client, users):
    for _ in range(PER_USER):
        api_me(client, "viewer", "wrong-password")
    for response in (api_me(client, "viewer", "viewer-password"),
                     registry_token(client, "viewer", "viewer-password")):
        assert_locked(response)
        assert "too many failed logins for this username" in response.json["error"]
        assert response.json["detail"]["retry_after_s"] == int(response.headers["Retry-After"])


def test_login_page_says_when_to_try_again(client, users):
    for _ in range(PER_USER):
        form_login(client, "viewer", "wrong-password")
    response = form_login(client, "viewer", "viewer-password")
    assert_locked(response)
    assert "Too many failed logins for this username" in response.text
    assert "Log in to Berth" in response.text  # the form is still there, for later


def test_failures_count_across_form_basic_and_registry(client, users):
    assert form_login(client, "viewer", "wrong-password").status_code == 401
    assert api_me(client, "viewer", "wrong-password").status_code == 401
    assert registry_token(client, "viewer", "wrong-password").status_code == 401
    assert_locked(form_login(client, "viewer", "viewer-password"))


def test_a_locked_username_does_not_lock_others(client, users):
    for _ in range(PER_USER):
        api_me(client, "viewer", "wrong-password")
    assert api_me(client, "other", "other-password").status_code == 200
    assert registry_token(client, "other", "other-password").status_code == 200


def test_the_username_limit_holds_across_addresses(client, users):
    for n in range(PER_USER):
        api_me(client, "viewer", "wrong-password", address=f"127.0.0.{n + 10}")
    assert_locked(api_me(client, "viewer", "viewer-password", address="127.0.0.99"))


def test_address_limit_across_different_usernames(app, client, users):
    names = ["nobody-1", "nobody-2", "viewer", "other", "nobody-3"]
    for name in names[:PER_ADDRESS]:
        assert registry_token(client, name, "wrong-password").status_code == 401
    locked = api_me(client, "ci", "ci-password")  # a right password, from that address
    assert_locked(locked)
    assert "your address" in locked.json["error"]
    assert api_me(client, "ci", "ci-password", address="127.0.0.2").status_code == 200
    assert {e.subject for e in failed_login_events(app)} == set(names)


def test_a_valid_client_is_never_throttled(client, users):
    with client.application.app_context(), db.unit_of_work():
        _record, api_token = accounts.create_api_token(accounts.find_user("ci"), "deploys")
    for _ in range(10 * PER_ADDRESS):
        assert api_me(client, "ci", "ci-password").status_code == 200
        assert api_me(client, "ci", api_token).status_code == 200
        assert registry_token(client, "ci", "ci-password").status_code == 200


def test_anonymous_registry_tokens_are_not_limited(client, users):
    for name in ("nobody-1", "nobody-2", "nobody-3", "nobody-4", "nobody-5"):
        registry_token(client, name, "wrong-password")
    assert client.get(TOKEN).status_code == 200


def test_limits_come_from_the_environment(tmp_path):
    config = Config.from_env({"BERTH_INSTANCE": str(tmp_path),
                              "BERTH_LOGIN_FAILURES_PER_USER": "5 per hour",
                              "BERTH_LOGIN_FAILURES_PER_ADDRESS": "50 per hour"})
    assert (config.login_failures_per_user, config.login_failures_per_address) == (
        "5 per hour", "50 per hour")
    defaults = Config.from_env({"BERTH_INSTANCE": str(tmp_path)})
    assert (defaults.login_failures_per_user, defaults.login_failures_per_address) == (
        "10 per 5 minutes", "30 per 5 minutes")


def test_a_malformed_limit_names_its_setting(config):
    from web import create_app

    with pytest.raises(ValueError, match="BERTH_LOGIN_FAILURES_PER_USER"):
        create_app(dataclasses.replace(config, login_failures_per_user="ten a minute"))


@pytest.mark.parametrize("broker, storage", [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("rediss://cache.internal:6380/1", "rediss://cache.internal:6380/1"),
    ("sqla+sqlite:///instance/broker.sqlite", "memory://"),
    ("amqp://guest@127.0.0.1//", "memory://"),
])
def test_counts_are_shared_through_redis_when_the_broker_is_redis(config, broker, storage):
    assert dataclasses.replace(config, broker_url=broker).rate_limit_storage_uri == storage
