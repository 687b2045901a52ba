"""Security headers on every answer, and the session cookie's flags."""
import dataclasses
import re

import pytest

from berth import db
from berth.workloads import definitions
from tests.support import REPOSITORY, csrf_token_of, login

TEMPLATES = REPOSITORY / "web" / "templates"


def csp_of(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


def assert_security_headers(response):
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    csp = csp_of(response)
    assert csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


def test_html_pages_carry_the_headers(client, admin):
    login(client, "admin", "admin-password")
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert_security_headers(response)
    assert_security_headers(client.get("/login"))


def test_the_api_and_errors_carry_the_headers(client, admin):
    assert_security_headers(client.get("/api/v1/me", headers=admin))
    assert_security_headers(client.get("/api/v1/me"))  # 401
    assert_security_headers(client.get("/no/such/page"))


def test_static_assets_carry_the_headers(client):
    assert_security_headers(client.get("/static/berth.js"))


def test_the_pages_fit_the_policy():
    """No inline script, handler or style: the CSP without 'unsafe-inline' would block it."""
    for template in TEMPLATES.rglob("*.html"):
        html = re.sub(r"{#.*?#}", "", template.read_text(), flags=re.S)  # Jinja comments
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), template
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", html), template
        # every external asset is this site's own
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), template


def test_session_cookie_is_httponly_and_samesite_lax(client, admin):
    login(client, "admin", "admin-password")
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    assert not cookie.secure  # plain HTTP on loopback, and not configured


def set_cookie_header(client, **request):
    token = csrf_token_of(client.get("/login", **request).text)
    response = client.post("/login", data={"csrf_token": token, "username": "admin",
                                           "password": "admin-password"}, **request)
    assert response.status_code == 302
    return response.headers["Set-Cookie"]


def test_cookie_is_secure_over_https(client, admin):
    # Over HTTPS Flask-WTF also wants a same-origin Referer (which Referrer-Policy keeps).
    cookie = set_cookie_header(client, base_url="https://localhost",
                               headers={"Referer": "https://localhost/login"})
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.fixture
def behind_a_tls_proxy(config):
    return dataclasses.replace(config, secure_cookies=True)


def test_cookie_is_secure_when_configured(behind_a_tls_proxy, admin):
    from web import create_app

    client = create_app(behind_a_tls_proxy).test_client()
    assert "Secure" in set_cookie_header(client)


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    assert client.get("/login", base_url="https://localhost").headers[
        "Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_headers_are_trusted_only_when_configured(config, admin):
    from web import create_app

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    direct = create_app(config).test_client()
    assert "Strict-Transport-Security" not in direct.get("/login", headers=forwarded).headers
    proxied = create_app(dataclasses.replace(config, proxy_hops=1)).test_client()
    assert "Strict-Transport-Security" in proxied.get("/login", headers=forwarded).headers


def test_service_page_says_a_service_with_a_port_is_host_networked(app, client, admin):
    with app.app_context(), db.unit_of_work():
        definitions.create_application({"name": "site", "services": [
            {"name": "web", "image": "127.0.0.1:5000/library/busybox:1", "port": True},
            {"name": "batch", "image": "127.0.0.1:5000/library/busybox:1"}]}, actor="admin")
    login(client, "admin", "admin-password")
    page = client.get("/services/site/web")
    assert page.status_code == 200
    assert 'id="host-network"' in page.text and "host network" in page.text
    assert "loopback" in page.text
    assert 'id="host-network"' not in client.get("/services/site/batch").text
