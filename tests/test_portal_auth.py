"""The portal's sessions: signing in and out through the forms, the login limits, changing
one's password, and the operator's password resets."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditLog, InvoiceStatus, KycStatus, Role, User
from backend.security.passwords import verify_password
from tests import domain_factories as factories
from tests.api_support import PASSWORD, user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text

NEW_PASSWORD = "a much longer passphrase 2026"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _user(app: Flask, roles: Role = Role.SUPPLIER, **state) -> tuple[int, str]:
    with app.app_context():
        person = user_with_password(factories.organisation(roles, **state))
        return person.id, person.email


def test_the_sign_in_form_has_labelled_fields(client: FlaskClient) -> None:
    page = text(client.get("/sign-in"))

    assert '<label for="email">E-mail address</label>' in page
    assert '<label for="password">Password</label>' in page
    assert 'href="#main"' in page and '<main id="main"' in page


def test_pages_need_a_signed_in_user(client: FlaskClient) -> None:
    answer = client.get("/dashboard/supplier")

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/sign-in?next=")


def test_signing_in_opens_the_dashboard_of_the_organisations_role(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        buyer = factories.organisation(Role.BUYER)
        factories.invoice(supplier, buyer, status=InvoiceStatus.CONFIRMED, amount_minor=123_456_75)
        email = user_with_password(supplier).email

    signed_in = portal_sign_in(client, email)
    home = client.get(signed_in.headers["Location"])
    dashboard = client.get(home.headers["Location"])

    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    assert home.headers["Location"] == "/dashboard/supplier"
    page = text(dashboard)
    assert dashboard.status_code == 200
    assert "Confirmed" in page and "CN¥123,456.75" in page
    with app.app_context():
        assert db.session.scalar(select(User.last_login_at).where(User.email == email)) is not None


def test_a_dashboard_of_a_role_the_organisation_lacks_is_not_found(app: Flask, client: FlaskClient) -> None:
    portal_sign_in(client, _user(app, Role.SUPPLIER)[1])

    assert client.get("/dashboard/financier").status_code == 404
    assert client.get("/dashboard/nobody").status_code == 404


def test_signing_in_returns_to_the_page_asked_for_but_never_to_another_site(app: Flask, client: FlaskClient) -> None:
    _, email = _user(app)

    assert portal_sign_in(client, email, next="/account/password").headers["Location"] == "/account/password"
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/account/password")})
    assert portal_sign_in(client, email, next="//evil.example/").headers["Location"] == "/"


def test_a_wrong_password_is_refused_and_signs_nobody_in(app: Flask, client: FlaskClient) -> None:
    _, email = _user(app)

    answer = portal_sign_in(client, email, "not the password")

    assert answer.status_code == 401
    assert "Wrong e-mail address or password." in text(answer)
    assert client.get("/").status_code == 302


def test_a_user_of_a_suspended_organisation_is_told_why_and_signed_out(app: Flask, client: FlaskClient) -> None:
    _, pending_email = _user(app, kyc=KycStatus.PENDING)
    refused = portal_sign_in(client, pending_email)
    assert refused.status_code == 403
    assert "cannot use Anchorline at present" in text(refused)

    user_id, email = _user(app)
    portal_sign_in(client, email)
    assert client.get("/dashboard/supplier").status_code == 200
    with app.app_context():
        db.session.get(User, user_id).organisation.suspended = True
        db.session.commit()

    assert client.get("/dashboard/supplier").status_code == 302


def test_sign_in_attempts_are_limited_per_login_name(app: Flask, client: FlaskClient) -> None:
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    _, email = _user(app)
    portal_sign_in(client, email, "wrong once")
    portal_sign_in(client, email, "wrong twice")

    throttled = portal_sign_in(client, email)

    assert throttled.status_code == 429
    assert "Too many attempts" in text(throttled)
    assert int(throttled.headers["Retry-After"]) > 0
    assert throttled.headers["X-Frame-Options"] == "DENY"


def test_signing_out_ends_the_session(app: Flask, client: FlaskClient) -> None:
    portal_sign_in(client, _user(app)[1])

    answer = post_form(client, "/sign-out", "/dashboard/supplier")

    assert answer.status_code == 302 and answer.headers["Location"] == "/sign-in"
    assert client.get("/dashboard/supplier").status_code == 302
    assert client.get("/sign-out").status_code == 405


def test_a_user_changes_their_password(app: Flask, client: FlaskClient) -> None:
    user_id, email = _user(app)
    portal_sign_in(client, email)

    answer = post_form(client, "/account/password", "/account/password", current_password=PASSWORD,
                       new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)

    assert answer.status_code == 302
    with app.app_context():
        assert verify_password(db.session.get(User, user_id).password_hash, NEW_PASSWORD)
        entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.change_password")).one()
        assert entry.subject_id == str(user_id) and entry.actor_user_id == user_id
    post_form(client, "/sign-out", "/account/password")
    assert portal_sign_in(client, email).status_code == 401
    assert portal_sign_in(client, email, NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        pytest.param("not the password", NEW_PASSWORD, NEW_PASSWORD, "this is not your current password",
                     id="wrong current password"),
        pytest.param(PASSWORD, "short", "short", "at least 12 characters", id="too short"),
        pytest.param(PASSWORD, PASSWORD, PASSWORD, "other than the current one", id="unchanged"),
        pytest.param(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "The two new passwords differ.", id="mistyped"),
    ],
)
def test_a_password_change_is_refused_with_the_reason_on_its_field(
    app: Flask, client: FlaskClient, current: str, new: str, confirm: str, message: str
) -> None:
    user_id, email = _user(app)
    portal_sign_in(client, email)

    answer = post_form(client, "/account/password", "/account/password", current_password=current,
                       new_password=new, confirm_password=confirm)

    assert answer.status_code == 400
    assert message in text(answer) and 'aria-invalid="true"' in text(answer)
    with app.app_context():
        assert verify_password(db.session.get(User, user_id).password_hash, PASSWORD)


def test_the_operator_resets_a_users_password_and_sees_it_once(app: Flask, client: FlaskClient) -> None:
    user_id, email = _user(app, Role.FINANCIER)
    _, operator_email = _user(app, Role.OPERATOR, onboarded=False)
    portal_sign_in(client, operator_email)
    assert email in text(client.get("/operator/users"))

    answer = post_form(client, f"/operator/users/{user_id}/password", "/operator/users")

    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    temporary = answer.get_data(as_text=True).split("<code>")[1].split("</code>")[0]
    with app.app_context():
        assert verify_password(db.session.get(User, user_id).password_hash, temporary)
        entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.reset_password")).one()
        assert entry.subject_id == str(user_id) and temporary not in str(entry.after)
    other = app.test_client()
    assert portal_sign_in(other, email, PASSWORD).status_code == 401
    assert portal_sign_in(other, email, temporary).status_code == 302


def test_only_the_operator_resets_passwords(app: Flask, client: FlaskClient) -> None:
    victim_id, _ = _user(app)
    portal_sign_in(client, _user(app, Role.FINANCIER)[1])

    assert client.get("/operator/users").status_code == 403
    answer = post_form(client, f"/operator/users/{victim_id}/password", "/dashboard/financier")

    assert answer.status_code == 403
    with app.app_context():
        assert verify_password(db.session.get(User, victim_id).password_hash, PASSWORD)
