"""The risk-profile API (backend/api/risk.py): the profile with its listed contributions, the
side as a required query argument, and who may read whose profile."""
from __future__ import annotations

from flask import Flask

from backend.extensions import db
from backend.models import InvoiceStatus, Organisation, Role
from backend.services import risk
from tests import domain_factories as factories
from tests.api_support import caller, issue_api_key, problem_code


def supplier_with_history(app: Flask) -> int:
    """A supplier with two confirmed invoices to one buyer and one disputed."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        for amount in (1_000_00, 3_000_00):
            factories.invoice(supplier, buyer, amount_minor=amount)
        factories.invoice(supplier, buyer, status=InvoiceStatus.DISPUTED)
        db.session.commit()
        return supplier.id


def test_a_financier_reads_a_suppliers_profile_with_its_contributions(app: Flask) -> None:
    supplier_id = supplier_with_history(app)
    financier = caller(app, Role.FINANCIER)

    answer = app.test_client().get(f"/api/v1/organisations/{supplier_id}/risk-profile?side=supplier",
                                   headers=financier.headers)

    assert answer.status_code == 200, answer.json
    profile = answer.json
    assert (profile["side"], profile["receivables"], profile["volume"], profile["volume_minor"]) == \
        ("supplier", 2, "4000.00", 4_000_00)
    assert (profile["answered"], profile["disputed"], profile["concentration"]) == (3, 1, 1.0)
    assert profile["on_time_rate"] is None  # nothing has matured
    assert [part["factor"] for part in profile["contributions"]] == list(risk.SCORE_RULES)
    assert profile["score"] == round(sum(part["points"] for part in profile["contributions"]))


def test_the_side_is_required_and_checked(app: Flask) -> None:
    supplier_id = supplier_with_history(app)
    financier = caller(app, Role.FINANCIER)
    client = app.test_client()

    for query in ("", "?side=lender"):
        answer = client.get(f"/api/v1/organisations/{supplier_id}/risk-profile{query}", headers=financier.headers)
        assert answer.status_code == 422
        assert problem_code(answer) == "invalid-input"


def test_a_participant_reads_only_its_own_profile(app: Flask) -> None:
    supplier_id = supplier_with_history(app)
    with app.app_context():
        own = issue_api_key(db.session.get(Organisation, supplier_id))
    stranger = caller(app, Role.SUPPLIER)
    client = app.test_client()

    assert client.get(f"/api/v1/organisations/{supplier_id}/risk-profile?side=supplier",
                      headers=own.headers).status_code == 200
    refused = client.get(f"/api/v1/organisations/{supplier_id}/risk-profile?side=supplier", headers=stranger.headers)
    assert refused.status_code == 404
    assert client.get(f"/api/v1/organisations/{supplier_id}/risk-profile?side=supplier").status_code == 401
