"""The financing API (backend/api/financing.py): requests, offers, acceptance and outright
funding answer 202 with the object and where to poll it; the financier's market and the lists
of offers page through what the caller may see. Each test builds its data in an application
context, then calls the API with a client outside it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    Delinquency,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    OfferStatus,
    Organisation,
    Repayment,
    Role,
)
from backend.security.api_keys import Scope
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, problem_code


@dataclass(frozen=True)
class Market:
    seller: Credentials  # the supplier holding the invoice
    buyer: Credentials
    financier: Credentials
    rival: Credentials  # a second financier
    stranger: Credentials  # a supplier with nothing to do with the invoice
    invoice_id: int  # confirmed, CNY 10,000.00, due in 60 days


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def market(app: Flask) -> Market:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER, name="Shenzhen Parts")
        buyer = factories.organisation(Role.BUYER, name="Core Motors")
        invoice = factories.invoice(supplier, buyer)
        db.session.commit()
        return Market(
            seller=api_support.issue_api_key(supplier),
            buyer=api_support.issue_api_key(buyer),
            financier=api_support.issue_api_key(factories.organisation(Role.FINANCIER)),
            rival=api_support.issue_api_key(factories.organisation(Role.FINANCIER)),
            stranger=api_support.issue_api_key(factories.organisation(Role.SUPPLIER)),
            invoice_id=invoice.id,
        )


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def open_request(app: Flask, invoice_id: int, **options: Any) -> int:
    with app.app_context():
        request = factories.financing_request(db.session.get(Invoice, invoice_id), **options)
        db.session.commit()
        return request.id


def open_offer(app: Flask, request_id: int, financier: Credentials, **options: Any) -> int:
    with app.app_context():
        offer = factories.offer(db.session.get(FinancingRequest, request_id),
                                db.session.get(Organisation, financier.organisation_id), **options)
        db.session.commit()
        return offer.id


def queued(app: Flask) -> list[tuple[str, list[Any]]]:
    with app.app_context():
        return [(row.function, row.args) for row in db.session.scalars(select(ChainTransaction).order_by(
            ChainTransaction.id))]


def request_terms(**changes: Any) -> dict[str, Any]:
    return {"asking_advance": "9000.00", "currency": "CNY", "deadline": in_days(30).isoformat(), "recourse": False,
            **changes}


def offer_terms(**changes: Any) -> dict[str, Any]:
    return {"advance": "9500.00", "currency": "CNY", "expiry": in_days(20).isoformat(), **changes}


# ---------------------------------------------------------------- requests


def test_a_holder_asks_for_financing_and_polls_the_request(app: Flask, client: FlaskClient, market: Market) -> None:
    deadline = in_days(30)
    response = client.post(f"/api/v1/invoices/{market.invoice_id}/financing-requests",
                           json=request_terms(deadline=deadline.isoformat(), recourse=True),
                           headers=market.seller.headers)

    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/v1/financing-requests/{body['id']}"
    assert {key: body[key] for key in ("invoice_id", "seller_id", "status", "round", "currency", "asking_advance",
                                       "asking_advance_minor", "recourse")} == {
        "invoice_id": market.invoice_id, "seller_id": market.seller.organisation_id, "status": "pending",
        "round": None, "currency": "CNY", "asking_advance": "9000.00", "asking_advance_minor": 900_000,
        "recourse": True,
    }
    assert datetime.fromisoformat(body["deadline"]) == deadline
    assert body["pending_actions"] == [{"function": "requestFinancing", "status": "queued"}]
    polled = client.get(response.headers["Location"], headers=market.seller.headers)
    assert polled.status_code == 200 and polled.json == body
    assert queued(app)[0][0] == "requestFinancing"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"asking_advance": "9000.001"}, "asking_advance"),
        ({"asking_advance": "20000"}, "asking_advance"),
        ({"deadline": (datetime.now() + timedelta(days=30)).isoformat()}, "deadline"),  # no time zone
        ({"deadline": in_days(-1).isoformat()}, "deadline"),
        ({"deadline": "next week"}, "deadline"),
        ({"currency": "EUR"}, "currency"),
        ({"recourse": "perhaps"}, "recourse"),
    ],
)
def test_bad_request_terms_are_422_by_field(app: Flask, client: FlaskClient, market: Market,
                                            changes: dict[str, Any], field: str) -> None:
    response = client.post(f"/api/v1/invoices/{market.invoice_id}/financing-requests",
                           json=request_terms(**changes), headers=market.seller.headers)
    assert response.status_code == 422 and problem_code(response) == "invalid-input"
    assert field in response.json["errors"]
    assert queued(app) == []


def test_missing_request_terms_are_422(client: FlaskClient, market: Market) -> None:
    response = client.post(f"/api/v1/invoices/{market.invoice_id}/financing-requests", json={},
                           headers=market.seller.headers)
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"asking_advance", "currency", "deadline", "recourse"}


def test_who_may_ask_for_financing(app: Flask, client: FlaskClient, market: Market) -> None:
    url = f"/api/v1/invoices/{market.invoice_id}/financing-requests"
    assert client.post(url, json=request_terms()).status_code == 401
    buyer = client.post(url, json=request_terms(), headers=market.buyer.headers)
    assert (buyer.status_code, problem_code(buyer)) == (403, "permission-denied")
    stranger = client.post(url, json=request_terms(), headers=market.stranger.headers)
    assert (stranger.status_code, problem_code(stranger)) == (404, "not-found")
    with app.app_context():
        read_only = api_support.issue_api_key(db.session.get(Organisation, market.seller.organisation_id),
                                              scopes=(Scope.READ,))
    assert client.post(url, json=request_terms(), headers=read_only.headers).status_code == 403
    assert client.post("/api/v1/invoices/99999/financing-requests", json=request_terms(),
                       headers=market.seller.headers).status_code == 404
    assert queued(app) == []


def test_one_request_at_a_time_and_only_on_confirmed_receivables(app: Flask, client: FlaskClient,
                                                                 market: Market) -> None:
    url = f"/api/v1/invoices/{market.invoice_id}/financing-requests"
    assert client.post(url, json=request_terms(), headers=market.seller.headers).status_code == 202
    again = client.post(url, json=request_terms(), headers=market.seller.headers)
    assert (again.status_code, problem_code(again)) == (409, "invalid-state")

    with app.app_context():
        supplier = db.session.get(Organisation, market.seller.organisation_id)
        registered = factories.invoice(supplier, db.session.get(Organisation, market.buyer.organisation_id),
                                       status=InvoiceStatus.REGISTERED)
        db.session.commit()
        registered_id = registered.id
    unconfirmed = client.post(f"/api/v1/invoices/{registered_id}/financing-requests", json=request_terms(),
                              headers=market.seller.headers)
    assert (unconfirmed.status_code, problem_code(unconfirmed)) == (409, "invalid-state")


def test_the_seller_cancels_its_open_request(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id)
    url = f"/api/v1/financing-requests/{request_id}/cancel"
    response = client.post(url, headers=market.seller.headers)
    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/financing-requests/{request_id}"
    assert (response.json["status"], response.json["pending_actions"]) == (
        "open", [{"function": "cancelRequest", "status": "queued"}])

    again = client.post(url, headers=market.seller.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")
    assert client.post(url, headers=market.financier.headers).status_code == 403
    assert client.post(url, headers=market.stranger.headers).status_code == 404
    assert [function for function, _ in queued(app)] == ["cancelRequest"]


def test_a_pending_request_cannot_be_cancelled_yet(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id, status=FinancingRequestStatus.PENDING)
    response = client.post(f"/api/v1/financing-requests/{request_id}/cancel", headers=market.seller.headers)
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")


def test_a_request_is_seen_by_its_seller_and_by_financiers_while_open(app: Flask, client: FlaskClient,
                                                                      market: Market) -> None:
    request_id = open_request(app, market.invoice_id, status=FinancingRequestStatus.PENDING)
    url = f"/api/v1/financing-requests/{request_id}"
    assert client.get(url, headers=market.seller.headers).status_code == 200
    assert client.get(url, headers=market.financier.headers).status_code == 404  # not on the market yet
    with app.app_context():
        db.session.get(FinancingRequest, request_id).status = FinancingRequestStatus.OPEN
        db.session.commit()
    assert client.get(url, headers=market.financier.headers).status_code == 200
    assert client.get(url, headers=market.stranger.headers).status_code == 404


# ---------------------------------------------------------------- offers


def test_a_financier_offers_then_revises(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id)
    url = f"/api/v1/financing-requests/{request_id}/offers"
    made = client.post(url, json=offer_terms(), headers=market.financier.headers)
    assert made.status_code == 202, made.json
    offer_id = made.json["id"]
    assert made.headers["Location"] == f"/api/v1/offers/{offer_id}"
    assert {key: made.json[key] for key in ("financing_request_id", "financier_id", "status", "advance",
                                            "advance_minor", "currency", "pending_actions")} == {
        "financing_request_id": request_id, "financier_id": market.financier.organisation_id, "status": "pending",
        "advance": "9500.00", "advance_minor": 950_000, "currency": "CNY",
        "pending_actions": [{"function": "makeOffer", "status": "queued"}],
    }

    revised = client.post(url, json=offer_terms(advance="9600"), headers=market.financier.headers)
    assert (revised.status_code, revised.json["id"], revised.json["advance"]) == (202, offer_id, "9600.00")
    assert len(revised.json["pending_actions"]) == 2
    assert client.get(f"/api/v1/offers/{offer_id}", headers=market.financier.headers).json == revised.json


def test_offers_refused(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id)
    url = f"/api/v1/financing-requests/{request_id}/offers"
    below = client.post(url, json=offer_terms(advance="8999.99"), headers=market.financier.headers)
    assert (below.status_code, list(below.json["errors"])) == (422, ["advance"])
    late = client.post(url, json=offer_terms(expiry=in_days(31).isoformat()), headers=market.financier.headers)
    assert (late.status_code, list(late.json["errors"])) == (422, ["expiry"])
    assert client.post(url, json=offer_terms(), headers=market.buyer.headers).status_code == 403
    assert client.post(url, json=offer_terms(), headers=market.stranger.headers).status_code == 404

    pending_id = open_request(app, open_invoice(app, market), status=FinancingRequestStatus.PENDING)
    assert client.post(f"/api/v1/financing-requests/{pending_id}/offers", json=offer_terms(),
                       headers=market.financier.headers).status_code == 404

    client.post(f"/api/v1/financing-requests/{request_id}/cancel", headers=market.seller.headers)
    closing = client.post(url, json=offer_terms(), headers=market.financier.headers)
    assert (closing.status_code, problem_code(closing)) == (409, "invalid-state")
    assert [function for function, _ in queued(app)] == ["cancelRequest"]


def open_invoice(app: Flask, market: Market, **options: Any) -> int:
    """Another confirmed invoice of the market's supplier to its buyer."""
    with app.app_context():
        invoice = factories.invoice(db.session.get(Organisation, market.seller.organisation_id),
                                    db.session.get(Organisation, market.buyer.organisation_id), **options)
        db.session.commit()
        return invoice.id


def test_the_financier_withdraws_its_offer(app: Flask, client: FlaskClient, market: Market) -> None:
    offer_id = open_offer(app, open_request(app, market.invoice_id), market.financier)
    url = f"/api/v1/offers/{offer_id}/withdraw"
    assert client.post(url, headers=market.rival.headers).status_code == 404
    assert client.post(url, headers=market.seller.headers).status_code == 403
    response = client.post(url, headers=market.financier.headers)
    assert response.status_code == 202 and response.headers["Location"] == f"/api/v1/offers/{offer_id}"
    assert response.json["pending_actions"] == [{"function": "withdrawOffer", "status": "queued"}]
    again = client.post(url, headers=market.financier.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")


def test_a_pending_offer_cannot_be_withdrawn_yet(app: Flask, client: FlaskClient, market: Market) -> None:
    offer_id = open_offer(app, open_request(app, market.invoice_id), market.financier, status=OfferStatus.PENDING)
    response = client.post(f"/api/v1/offers/{offer_id}/withdraw", headers=market.financier.headers)
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")


def test_the_seller_accepts_the_offer_it_saw(app: Flask, client: FlaskClient, market: Market) -> None:
    offer_id = open_offer(app, open_request(app, market.invoice_id), market.financier, advance_minor=950_000)
    url = f"/api/v1/offers/{offer_id}/accept"
    changed = client.post(url, json={"advance": "9400.00", "currency": "CNY"}, headers=market.seller.headers)
    assert (changed.status_code, problem_code(changed)) == (409, "invalid-state")
    assert "offer changed" in changed.json["detail"]
    assert client.post(url, json={"currency": "CNY"}, headers=market.seller.headers).status_code == 422
    assert client.post(url, json={"advance": "9500", "currency": "CNY"},
                       headers=market.financier.headers).status_code == 403
    assert client.post(url, json={"advance": "9500", "currency": "CNY"},
                       headers=market.rival.headers).status_code == 404

    response = client.post(url, json={"advance": "9500.00", "currency": "CNY"}, headers=market.seller.headers)
    assert response.status_code == 202 and response.headers["Location"] == f"/api/v1/offers/{offer_id}"
    assert response.json["pending_actions"] == [{"function": "acceptOffer", "status": "queued"}]
    with app.app_context():
        address = db.session.get(Organisation, market.financier.organisation_id).chain_address
        receivable = db.session.get(Invoice, market.invoice_id).receivable_id
    assert queued(app) == [("acceptOffer", [receivable, address, 950_000])]
    again = client.post(url, json={"advance": "9500.00", "currency": "CNY"}, headers=market.seller.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")


def test_an_expired_offer_cannot_be_accepted(app: Flask, client: FlaskClient, market: Market) -> None:
    offer_id = open_offer(app, open_request(app, market.invoice_id), market.financier, expiry_in_days=-1)
    response = client.post(f"/api/v1/offers/{offer_id}/accept", json={"advance": "9500", "currency": "CNY"},
                           headers=market.seller.headers)
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")


def test_a_financier_funds_a_request_outright(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id)
    url = f"/api/v1/financing-requests/{request_id}/fund"
    assert client.post(url, headers=market.seller.headers).status_code == 403
    assert client.post(url, headers=market.stranger.headers).status_code == 404
    response = client.post(url, headers=market.financier.headers)
    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/financing-requests/{request_id}"
    assert response.json["pending_actions"] == [{"function": "fundRequest", "status": "queued"}]
    again = client.post(url, headers=market.financier.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")
    rival = client.post(url, headers=market.rival.headers)
    assert (rival.status_code, problem_code(rival)) == (409, "invalid-state")


def test_a_request_past_its_deadline_cannot_be_funded(app: Flask, client: FlaskClient, market: Market) -> None:
    request_id = open_request(app, market.invoice_id, deadline_in_days=-1)
    response = client.post(f"/api/v1/financing-requests/{request_id}/fund", headers=market.financier.headers)
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")


# ---------------------------------------------------------------- lists


def test_offers_are_listed_for_their_financier_and_the_seller(app: Flask, client: FlaskClient,
                                                              market: Market) -> None:
    request_id = open_request(app, market.invoice_id)
    mine = open_offer(app, request_id, market.financier)
    theirs = open_offer(app, request_id, market.rival, status=OfferStatus.PENDING)

    def listed(caller: Credentials, query: str = "") -> list[int]:
        response = client.get(f"/api/v1/offers{query}", headers=caller.headers)
        assert response.status_code == 200, response.json
        return [offer["id"] for offer in response.json["items"]]

    assert listed(market.financier) == [mine]
    assert listed(market.seller) == [mine, theirs]
    assert listed(market.seller, "?status=pending") == [theirs]
    assert listed(market.seller, f"?financing_request_id={request_id + 1}") == []
    assert listed(market.buyer) == []
    first = client.get("/api/v1/offers?limit=1", headers=market.seller.headers).json
    assert [offer["id"] for offer in first["items"]] == [mine] and first["next_cursor"]
    second = client.get(f"/api/v1/offers?limit=1&cursor={first['next_cursor']}", headers=market.seller.headers).json
    assert ([offer["id"] for offer in second["items"]], second["next_cursor"]) == ([theirs], None)
    assert client.get("/api/v1/offers?status=sold", headers=market.seller.headers).status_code == 422
    assert client.get(f"/api/v1/offers/{theirs}", headers=market.financier.headers).status_code == 404


def test_the_market_lists_receivables_open_for_financing(app: Flask, client: FlaskClient, market: Market) -> None:
    soon = open_request(app, market.invoice_id, deadline_in_days=10, asking_advance_minor=800_000, recourse=True)
    later_invoice = open_invoice(app, market, due_in_days=90, amount_minor=5_000_000)
    later = open_request(app, later_invoice, deadline_in_days=20)
    with app.app_context():
        repaid = factories.invoice(db.session.get(Organisation, market.seller.organisation_id),
                                   db.session.get(Organisation, market.buyer.organisation_id),
                                   status=InvoiceStatus.REPAID)
        repaid.delinquency = Delinquency.OVERDUE  # paid late
        db.session.commit()

    response = client.get("/api/v1/financeable", headers=market.financier.headers)
    assert response.status_code == 200, response.json
    assert [entry["financing_request_id"] for entry in response.json["items"]] == [soon, later]
    entry = response.json["items"][0]
    assert entry == {
        "financing_request_id": soon,
        "invoice_id": market.invoice_id,
        "receivable_id": entry["receivable_id"],
        "buyer": {"id": market.buyer.organisation_id, "name": "Core Motors"},
        "supplier": {"id": market.seller.organisation_id, "name": "Shenzhen Parts"},
        "currency": "CNY",
        "amount": "10000.00",
        "amount_minor": 1_000_000,
        "outstanding": "10000.00",
        "outstanding_minor": 1_000_000,
        "due_date": (date.today() + timedelta(days=60)).isoformat(),
        "tenor_days": 60,
        "asking_advance": "8000.00",
        "asking_advance_minor": 800_000,
        "deadline": entry["deadline"],
        "recourse": True,
        "supplier_history": {"confirmed": 3, "repaid": 1, "overdue": 0, "defaulted": 0, "volume": "70000.00",
                             "volume_minor": 7_000_000},
        "supplier_risk": entry["supplier_risk"],
        "buyer_risk": entry["buyer_risk"],
    }
    # Both parties' risk profiles, as GET /organisations/{id}/risk-profile gives them.
    for side, party in (("supplier", market.seller), ("buyer", market.buyer)):
        assert entry[f"{side}_risk"] == client.get(f"/api/v1/organisations/{party.organisation_id}/risk-profile"
                                                   f"?side={side}", headers=market.financier.headers).json
    assert (entry["supplier_risk"]["receivables"], entry["supplier_risk"]["side"]) == (3, "supplier")

    def listed(query: str) -> list[int]:
        found = client.get(f"/api/v1/financeable?{query}", headers=market.financier.headers)
        assert found.status_code == 200, found.json
        return [item["financing_request_id"] for item in found.json["items"]]

    assert listed(f"due_from={(date.today() + timedelta(days=61)).isoformat()}") == [later]
    assert listed(f"due_to={(date.today() + timedelta(days=60)).isoformat()}") == [soon]
    assert listed("amount_min=20000") == [later]
    assert listed("amount_max=10000.00") == [soon]
    assert listed(f"buyer_id={market.buyer.organisation_id}&supplier_id={market.seller.organisation_id}") == [
        soon, later]
    assert listed(f"supplier_id={market.stranger.organisation_id}") == []
    first = client.get("/api/v1/financeable?limit=1", headers=market.financier.headers).json
    second = client.get(f"/api/v1/financeable?limit=1&cursor={first['next_cursor']}",
                        headers=market.financier.headers).json
    assert [item["financing_request_id"] for item in first["items"] + second["items"]] == [soon, later]
    assert second["next_cursor"] is None

    bad = client.get("/api/v1/financeable?amount_min=1.001", headers=market.financier.headers)
    assert (bad.status_code, list(bad.json["errors"])) == (422, ["amount_min"])
    assert client.get("/api/v1/financeable?due_from=soon", headers=market.financier.headers).status_code == 422
    assert client.get("/api/v1/financeable", headers=market.seller.headers).status_code == 403


# ---------------------------------------------------------------- the document


# Every route of backend/api/financing.py and backend/api/repayments.py.
FINANCING_ROUTES = (r"^/api/v1/(financing-requests|offers|financeable|repayments|portfolio"
                    r"|invoices/\{invoice_id\}/(financing-requests|repayments|overdue|default))")


@pytest.mark.parametrize("role", ["financier", "seller", "buyer"])
def test_the_financing_and_servicing_routes_answer_as_documented(app: Flask, market: Market, role: str) -> None:
    """Whatever is asked, valid or not, of a market with a request, an offer and a repayment in it,
    the answer (202, 200 or a problem) is what the OpenAPI document says it would be."""
    app.config.update(API_RATE_LIMIT="100000 per minute")
    request_id = open_request(app, market.invoice_id)
    open_offer(app, request_id, market.financier)
    with app.app_context():
        db.session.add(Repayment(invoice_id=market.invoice_id, payer_id=market.buyer.organisation_id,
                                 amount_minor=100))
        db.session.commit()
    credentials: Credentials = getattr(market, role)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(path_regex=FINANCING_ROUTES)

    @given(case=schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    def conforms(case: schemathesis.Case) -> None:
        # A value can fit the document and still be refused: an offer below the asking advance.
        case.call_and_validate(headers=credentials.headers, excluded_checks=[positive_data_acceptance])

    conforms()
