"""The portal's defences: CSRF tokens on every form (and none asked of the JSON API), the
security headers of its pages, its cookies, and the front-end packages served by the app itself."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.models import Role
from backend.portal.security import CONTENT_SECURITY_POLICY
from tests import domain_factories as factories
from tests.api_support import PASSWORD, sign_in, user_with_password
from tests.portal_support import portal_sign_in, text


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def email(app: Flask) -> str:
    with app.app_context():
        return user_with_password(factories.organisation(Role.SUPPLIER)).email


@pytest.mark.parametrize("path", ["/sign-in", "/sign-out", "/language", "/account/password"])
def test_a_form_post_without_the_csrf_token_is_refused(app: Flask, client: FlaskClient, email: str,
                                                       path: str) -> None:
    portal_sign_in(client, email)

    answer = client.post(path, data={"email": email, "password": PASSWORD, "language": "zh_Hans_CN",
                                     "current_password": PASSWORD, "new_password": "x" * 20,
                                     "confirm_password": "x" * 20, "csrf_token": "forged"})

    assert answer.status_code == 400
    assert "The request could not be accepted" in text(answer)
    assert client.get("/dashboard/supplier").status_code == 200  # still signed in, nothing changed
    assert client.get_cookie("anchorline_language") is None


def test_htmx_requests_send_the_token_in_a_header(app: Flask, client: FlaskClient) -> None:
    page = text(client.get("/sign-in"))
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert f'hx-headers:inherited="{{&#34;X-CSRFToken&#34;: &#34;{token}&#34;}}"' in page

    answer = client.post("/language", data={"language": "zh_Hans_CN"}, headers={"X-CSRFToken": token})

    assert answer.status_code == 302


def test_a_csrf_token_of_another_session_is_refused(app: Flask, client: FlaskClient, email: str) -> None:
    other = app.test_client()
    portal_sign_in(other, email)
    stolen = other.get("/dashboard/supplier").get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1]

    answer = client.post("/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": stolen.split('"')[0]})

    assert answer.status_code == 400


def test_the_json_api_takes_no_csrf_token(client: FlaskClient, email: str) -> None:
    assert sign_in(client, email).status_code == 204
    assert client.get("/api/v1/session").status_code == 200


@pytest.mark.parametrize("path", ["/sign-in", "/dashboard/supplier", "/dashboard/nobody"])
def test_portal_pages_carry_the_security_headers(client: FlaskClient, email: str, path: str) -> None:
    portal_sign_in(client, email)

    answer = client.get(path)

    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert answer.headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_scripts_or_styles(client: FlaskClient, email: str) -> None:
    portal_sign_in(client, email)
    page = text(client.get("/dashboard/supplier"))

    assert "<script>" not in page and "<style" not in page and " style=" not in page
    assert page.count("<script defer src=") == 3


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient, email: str) -> None:
    cookie = portal_sign_in(client, email).headers["Set-Cookie"]

    assert cookie.startswith("anchorline_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("path", "marker"),
    [("/static/vendor/htmx.org/htmx.min.js", b"htmx"), ("/static/vendor/chart.js/chart.umd.min.js", b"Chart"),
     ("/static/portal/charts.js", b"new Chart"), ("/static/portal/portal.css", b":focus-visible")],
)
def test_front_end_assets_are_served_by_the_app(client: FlaskClient, path: str, marker: bytes) -> None:
    answer = client.get(path)

    assert answer.status_code == 200 and marker in answer.data
    answer.close()


@pytest.mark.parametrize("path", ["/static/vendor/left-pad/index.js", "/static/vendor/htmx.org/../package.json",
                                  "/static/vendor/chart.js/%2e%2e/package.json"])
def test_nothing_else_of_node_modules_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
