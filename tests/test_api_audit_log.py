"""Reading the audit log (backend/services/audit_reads.py, backend/api/audit_log.py)."""
from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from backend.extensions import db
from backend.models import Role
from backend.services import audit
from backend.services.audit_reads import audit_entries
from backend.services.errors import InvalidInput
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def entries(app: Flask) -> dict[str, Any]:
    """Three entries an hour apart: two by a supplier about invoice 1, one by the platform."""
    with app.app_context():
        supplier = factories.actor(factories.organisation(Role.SUPPLIER))
        for hour, (actor, action, subject_id) in enumerate([
            (supplier, "invoice.register", 1), (supplier, "invoice.cancel", 1), (None, "invoice.confirm", 2),
        ]):
            entry = audit.record(actor, action, "invoice", subject_id, after={"n": hour})
            entry.occurred_at = START + timedelta(hours=hour)
        db.session.commit()
        return {"supplier_id": supplier.organisation.id}


# A read-only API key of a new organisation.
caller = functools.partial(api_support.caller, scopes=("read",))


def actions(client, credentials: Credentials, query: str = "") -> list[str]:
    response = client.get(f"/api/v1/audit-log{query}", headers=credentials.headers)
    assert response.status_code == 200, response.json
    return [item["action"] for item in response.json["items"]]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OPERATOR])
def test_the_auditor_and_the_operator_read_every_entry_oldest_first(app, client, entries, role):
    reader = caller(app, role)

    response = client.get("/api/v1/audit-log", headers=reader.headers)

    first = response.json["items"][0]
    assert {key: first[key] for key in ("action", "subject_type", "subject_id", "actor_organisation_id", "after")} == {
        "action": "invoice.register", "subject_type": "invoice", "subject_id": "1",
        "actor_organisation_id": entries["supplier_id"], "after": {"n": 0}}
    assert actions(client, reader) == ["invoice.register", "invoice.cancel", "invoice.confirm"]


def test_filters_combine(app, client, entries):
    auditor = caller(app, Role.AUDITOR)
    since = quote((START + timedelta(minutes=30)).isoformat())
    until = quote((START + timedelta(hours=2)).isoformat())

    assert actions(client, auditor, "?action=invoice.confirm") == ["invoice.confirm"]
    assert actions(client, auditor, "?subject_type=invoice&subject_id=1") == ["invoice.register", "invoice.cancel"]
    assert actions(client, auditor, f"?actor_organisation_id={entries['supplier_id']}") == [
        "invoice.register", "invoice.cancel"]
    assert actions(client, auditor, f"?since={since}") == ["invoice.cancel", "invoice.confirm"]
    assert actions(client, auditor, f"?since={since}&until={until}") == ["invoice.cancel"]
    page = client.get("/api/v1/audit-log?limit=2", headers=auditor.headers).json
    rest = client.get(f"/api/v1/audit-log?limit=2&cursor={page['next_cursor']}", headers=auditor.headers).json
    assert [item["action"] for item in rest["items"]] == ["invoice.confirm"]


@pytest.mark.parametrize("query", [
    "?since=2025-03-01T12:00:00",  # no time zone
    "?since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z",
    "?actor_organisation_id=x",
])
def test_bad_filters_are_422(app, client, entries, query):
    response = client.get(f"/api/v1/audit-log{query}", headers=caller(app, Role.AUDITOR).headers)
    assert response.status_code == 422


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.BUYER, Role.FINANCIER])
def test_participants_may_not_read_the_audit_log(app, client, entries, role):
    response = client.get("/api/v1/audit-log", headers=caller(app, role).headers)
    assert response.status_code == 403


def test_a_time_without_a_zone_is_refused_by_the_service(db_session):
    auditor = factories.actor(factories.organisation(Role.AUDITOR))
    with pytest.raises(InvalidInput) as refused:
        audit_entries(auditor, until=datetime(2025, 1, 1))
    assert list(refused.value.errors) == ["until"]
    assert db_session.scalars(audit_entries(auditor)).all() == []
