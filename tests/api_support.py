"""Support for the API's tests: a test-only area of the API (the probe, which exercises
authentication, problems, idempotency, pagination and 202 answers without any real area's rules),
credentials a test client can use, and reading its problem answers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from flask import Flask, abort
from flask.testing import FlaskClient
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from backend.api import register_area
from backend.api.auth import SECURITY, current_actor
from backend.api.pagination import CursorArgs, paginate, page_schema
from backend.api.responses import accepted
from backend.extensions import db
from backend.models import ApiKey, AuditLog, Organisation, Role, User
from backend.security.api_keys import Scope, generate_api_key, hash_secret
from backend.security.passwords import hash_password, make_password_hasher
from backend.services import audit, errors
from backend.services.actors import Actor
from backend.services.transaction import atomic
from tests import domain_factories as factories

NOTE_ACTION = "probe.note"
PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters for users made by tests (verifying the default's costs 0.1 s).
CHEAP_HASHER: PasswordHasher = make_password_hasher(time_cost=1, memory_cost=64)
# The service errors the probe raises on request, by code.
SERVICE_ERRORS: dict[str, type[errors.ServiceError]] = {
    kind.code: kind
    for kind in (
        errors.NotFound,
        errors.PermissionDenied,
        errors.OrganisationInactive,
        errors.InvalidInput,
        errors.InvalidState,
        errors.Duplicate,
        errors.AuthenticationFailed,
    )
}

blp = Blueprint("probe", __name__, url_prefix="/api/v1/probe", description="Test-only: the API infrastructure at work.")


class NoteSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=100))


class NoteAcceptedSchema(Schema):
    id = fields.Integer(required=True)
    note = fields.String(required=True)


class AmountSchema(Schema):
    value = fields.String(required=True, validate=validate.Regexp(r"^[0-9]+(\.[0-9]+)?$", error="Not a decimal."))
    currency = fields.String(required=True, validate=validate.Length(equal=3))


class LineSchema(Schema):
    description = fields.String(required=True)


class OrderSchema(Schema):
    amount = fields.Nested(AmountSchema, required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)


class OrganisationItemSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


@atomic
def write_note(actor: Actor, note: str) -> AuditLog:
    """A stand-in for a service's write: one audit entry per call."""
    entry = audit.record(actor, NOTE_ACTION, "probe", 0, after={"note": note})
    db.session.flush()
    return entry


@blp.route("/notes", methods=["POST"])
@blp.arguments(NoteSchema)
@blp.response(202, NoteAcceptedSchema)
@blp.doc(security=SECURITY)
def create_note(body: dict[str, str]) -> Any:
    entry = write_note(current_actor(), body["note"])
    return accepted({"id": entry.id, "note": body["note"]}, f"/api/v1/probe/notes/{entry.id}")


@blp.route("/crash", methods=["POST"])
@blp.arguments(NoteSchema)
@blp.response(202, NoteAcceptedSchema)
@blp.doc(security=SECURITY)
def crash(body: dict[str, str]) -> Any:
    current_actor()
    raise RuntimeError(f"secret internals: {body['note']}")


@blp.route("/orders", methods=["POST"])
@blp.arguments(OrderSchema)
@blp.response(200, OrderSchema)
@blp.doc(security=SECURITY)
def echo_order(order: dict[str, Any]) -> dict[str, Any]:
    current_actor()
    return order


@blp.route("/failures/service/<string:code>", methods=["GET"])
@blp.response(204)
@blp.doc(security=SECURITY)
def fail_with_service_error(code: str) -> None:
    current_actor()
    kind = SERVICE_ERRORS.get(code)
    if kind is None:
        raise errors.NotFound(f"no service error {code!r}")
    raise kind(f"probe {code}", errors={"field": ["what is wrong with it"]} if kind is errors.InvalidInput else None)


@blp.route("/failures/http/<int:status>", methods=["GET"])
@blp.response(204)
@blp.doc(security=SECURITY)
def fail_with_http_error(status: int) -> None:
    current_actor()
    abort(status if 400 <= status <= 599 else 404)


@blp.route("/organisations", methods=["GET"])
@blp.arguments(CursorArgs, location="query")
@blp.response(200, page_schema(OrganisationItemSchema))
@blp.doc(security=SECURITY)
def list_organisations_by_name(args: dict[str, Any]) -> Any:
    current_actor()
    return paginate(select(Organisation), args, sort=(Organisation.name,))


@blp.route("/organisations/by-date", methods=["GET"])
@blp.arguments(CursorArgs, location="query")
@blp.response(200, page_schema(OrganisationItemSchema))
@blp.doc(security=SECURITY)
def list_organisations_by_date(args: dict[str, Any]) -> Any:
    current_actor()
    return paginate(select(Organisation), args, sort=(Organisation.created_at,))


def with_probe(app: Flask) -> Flask:
    """`app` with the probe's routes (before its first request, as Flask requires)."""
    register_area(blp)
    return app


# ---------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    organisation_id: int
    token: str
    key_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def principal(self) -> str:
        return f"apikey:{self.key_id}"


def issue_api_key(
    org: Organisation | None = None, *, scopes: tuple[str, ...] = (Scope.READ, Scope.WRITE), **fields_: Any
) -> Credentials:
    """An API key of `org` (a new financier by default), committed, and the token to send."""
    org = org or factories.organisation(Role.FINANCIER)
    issued = generate_api_key()
    key = ApiKey(organisation=org, name="test key", prefix=issued.prefix, secret_hash=hash_secret(issued.token),
                 scopes=list(scopes), **fields_)
    db.session.add(key)
    db.session.commit()
    return Credentials(org.id, issued.token, key.id)


def caller(
    app: Flask,
    roles: Role,
    *,
    scopes: tuple[str, ...] = (Scope.READ, Scope.WRITE),
    issued_by_user: bool = False,
    **state: Any,
) -> Credentials:
    """An API key of a new organisation with `roles` (and `state` for the organisation factory),
    made in an application context of its own for a test client outside one. With
    `issued_by_user` a user of the organisation issued it (minting and burning need one)."""
    with app.app_context():
        org = factories.organisation(roles, **state)
        issuer = {"created_by": factories.user(org)} if issued_by_user else {}
        return issue_api_key(org, scopes=scopes, **issuer)


def user_with_password(org: Organisation | None = None, *, email: str | None = None) -> User:
    """A user (of a new supplier by default) whose password is PASSWORD, committed."""
    person = factories.user(org or factories.organisation(Role.SUPPLIER), email=email)
    person.password_hash = hash_password(PASSWORD, hasher=CHEAP_HASHER)
    db.session.commit()
    return person


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"email": email, "password": password})


def problem_code(response: Any) -> str:
    """The code a problem answer's type ends with, once the answer is a problem document."""
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    return response.json["type"].rsplit("/", 1)[1]


def note_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == NOTE_ACTION))
