"""The exposure-limits API (backend/api/exposure.py): set, list with what is at stake, change,
remove; bad input as problems; for financiers only."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from backend.extensions import db
from backend.models import Organisation, Role
from tests import domain_factories as factories
from tests.api_support import Credentials, caller, issue_api_key, problem_code


@pytest.fixture
def market(app: Flask) -> dict[str, Any]:
    """A financier holding 1,200.00 of a buyer's receivables."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER)
        factories.invoice(supplier, buyer, amount_minor=1_200_00, holder=financier)
        db.session.commit()
        return {"buyer": buyer.id, "supplier": supplier.id, "financier": issue_api_key(financier)}


def test_a_financier_sets_lists_changes_and_removes_a_limit(app: Flask, market: dict[str, Any]) -> None:
    client, headers = app.test_client(), market["financier"].headers
    path = f"/api/v1/exposure-limits/buyer/{market['buyer']}"

    created = client.put(path, json={"limit": "5000.00", "currency": "CNY"}, headers=headers)
    assert created.status_code == 200, created.json
    assert (created.json["limit"], created.json["at_stake"], created.json["headroom_minor"]) == \
        ("5000.00", "1200.00", 3_800_00)

    assert client.put(path, json={"limit": "1000", "currency": "CNY"}, headers=headers).json["headroom_minor"] \
        == -200_00
    [listed] = client.get("/api/v1/exposure-limits", headers=headers).json
    assert (listed["counterparty_id"], listed["side"], listed["limit_minor"]) == (market["buyer"], "buyer", 1_000_00)

    assert client.delete(path, headers=headers).status_code == 204
    assert client.get("/api/v1/exposure-limits", headers=headers).json == []
    assert problem_code(client.delete(path, headers=headers)) == "not-found"


def test_a_bad_limit_is_a_problem_naming_its_field(app: Flask, market: dict[str, Any]) -> None:
    client, headers = app.test_client(), market["financier"].headers
    answer = client.put(f"/api/v1/exposure-limits/supplier/{market['supplier']}",
                        json={"limit": "0", "currency": "CNY"}, headers=headers)
    assert answer.status_code == 422
    assert "limit" in answer.json["errors"]
    assert client.put("/api/v1/exposure-limits/lender/1", json={"limit": "1", "currency": "CNY"},
                      headers=headers).status_code == 404


def test_limits_are_for_financiers_only(app: Flask, market: dict[str, Any]) -> None:
    supplier: Credentials = caller(app, Role.SUPPLIER)
    client = app.test_client()
    answer = client.put(f"/api/v1/exposure-limits/buyer/{market['buyer']}",
                        json={"limit": "1", "currency": "CNY"}, headers=supplier.headers)
    assert (answer.status_code, problem_code(answer)) == (403, "permission-denied")
    assert client.get("/api/v1/exposure-limits", headers=supplier.headers).status_code == 403


def test_an_offer_above_the_limit_is_a_409_naming_the_limit(app: Flask, market: dict[str, Any]) -> None:
    client, headers = app.test_client(), market["financier"].headers
    with app.app_context():
        supplier, buyer = db.session.get(Organisation, market["supplier"]), db.session.get(Organisation, market["buyer"])
        request_id = factories.financing_request(factories.invoice(supplier, buyer, amount_minor=1_000_00),
                                                 asking_advance_minor=900_00).id
        db.session.commit()
    client.put(f"/api/v1/exposure-limits/buyer/{market['buyer']}", json={"limit": "2000", "currency": "CNY"},
               headers=headers)

    answer = client.post(f"/api/v1/financing-requests/{request_id}/offers",
                         json={"advance": "950.00", "currency": "CNY",
                               "expiry": (datetime.now(UTC) + timedelta(days=10)).isoformat()},
                         headers={**headers, "Idempotency-Key": "offer-1"})

    assert (answer.status_code, problem_code(answer)) == (409, "exposure-limit-exceeded")
    assert "above the limit of 2000.00 CNY (1200.00 CNY already)" in answer.json["detail"]
