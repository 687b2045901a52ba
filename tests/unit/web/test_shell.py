"""The web shell: login with CSRF, API auth and errors, health, metrics, OpenAPI."""
import re

from tests.support import basic_auth


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_pages_need_login(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_without_csrf_token_is_refused(client, admin):
    response = client.post("/login", data={"username": "admin", "password": "admin-password"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_admin_logs_in_and_out(client, admin):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "admin", "password": "admin-password",
                                           "csrf_token": token})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and "Overview" in page.text and "admin" in page.text
    logout_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/logout", data={"csrf_token": logout_token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, admin):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "admin", "password": "nope-nope",
                                           "csrf_token": token})
    assert response.status_code == 401 and "Wrong username or password" in response.text


def test_login_redirect_stays_on_site(client, admin):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login?next=//evil.example/x", data={
        "username": "admin", "password": "admin-password", "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_api_wants_credentials_with_a_json_error(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("basic")
    assert set(response.json) == {"error", "detail"}


def test_api_basic_auth_with_password_and_token(client, admin):
    assert client.get("/api/v1/me", headers=admin).json["username"] == "admin"
    token = client.post("/api/v1/tokens", json={"name": "ci"}, headers=admin).json["token"]
    assert client.get("/api/v1/me", headers=basic_auth("admin", token)).status_code == 200
    assert client.get("/api/v1/me", headers=basic_auth("someone", token)).status_code == 401
    assert client.get("/api/v1/me", headers=basic_auth("admin", "wrong")).status_code == 401


def test_api_bad_input_is_a_400_naming_the_fields(client, admin):
    response = client.post("/api/v1/users", json={"usernam": "x"}, headers=admin)
    assert response.status_code == 400
    assert "username" in response.json["detail"]["json"] and "usernam" in response.json["error"]


def test_api_non_admin_gets_403(client, admin):
    client.post("/api/v1/users", json={"username": "alice", "password": "alice-password"},
                headers=admin)
    response = client.post("/api/v1/users", json={"username": "bob", "password": "bob-password"},
                           headers=basic_auth("alice", "alice-password"))
    assert response.status_code == 403 and "administrators" in response.json["error"]


def test_cookie_authenticated_api_changes_need_the_csrf_header(client, admin):
    token = csrf_from(client.get("/login").text)
    client.post("/login", data={"username": "admin", "password": "admin-password",
                                "csrf_token": token})
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 400
    response = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok", "database": "ok"}


def test_metrics_count_requests_per_endpoint(client):
    client.get("/healthz")
    client.get("/healthz")
    text = client.get("/metrics").text
    assert re.search(r'berth_http_requests_total\{endpoint="/healthz",method="GET",status="200"\} [2-9]', text)
    assert 'berth_http_request_duration_seconds_bucket{endpoint="/healthz",le="0.001",method="GET"}' in text


def test_openapi_document_lists_the_api(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/me", "/api/v1/users", "/api/v1/tokens"} <= set(spec["paths"])
    assert "basic" in spec["components"]["securitySchemes"]


def test_vendored_assets_are_served_locally(client):
    page = client.get("/login").text
    assert "cdn" not in page.lower() and "https://" not in page
    assert client.get("/static/vendor/bootstrap-5.3.9.min.css").status_code == 200
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200
