"""The early payment API (backend/api/early_payment.py): the buyer's offer, revision and
withdrawal and the holder's acceptance answer 202 with the offer, its live quote and where to
poll it; refusals are problems. Each test builds its data in an application context, then calls
the API with a client outside it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import ChainTransaction, EarlyPaymentOffer, EarlyPaymentOfferStatus, Invoice, Role
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, problem_code


@dataclass(frozen=True)
class Payable:
    holder: Credentials  # a financier holding the receivable
    buyer: Credentials
    supplier: Credentials
    stranger: Credentials  # a buyer with nothing to do with the invoice
    invoice_id: int  # confirmed, CNY 10,000.00, due in 60 days


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def payable(app: Flask) -> Payable:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        buyer = factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER)
        invoice = factories.invoice(supplier, buyer, holder=financier)
        db.session.commit()
        return Payable(holder=api_support.issue_api_key(financier), buyer=api_support.issue_api_key(buyer),
                       supplier=api_support.issue_api_key(supplier),
                       stranger=api_support.issue_api_key(factories.organisation(Role.BUYER)),
                       invoice_id=invoice.id)


def url(payable: Payable, suffix: str = "") -> str:
    return f"/api/v1/invoices/{payable.invoice_id}/early-payment-offer{suffix}"


def open_offer(app: Flask, payable: Payable, **options: Any) -> None:
    with app.app_context():
        factories.early_payment_offer(db.session.get(Invoice, payable.invoice_id), **options)
        db.session.commit()


def queued(app: Flask) -> list[tuple[str, list[Any]]]:
    with app.app_context():
        return [(row.function, row.args) for row in db.session.scalars(select(ChainTransaction).order_by(
            ChainTransaction.id))]


def test_the_buyer_offers_and_the_offer_is_polled_with_its_quote(app: Flask, client: FlaskClient,
                                                                 payable: Payable) -> None:
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
    response = client.post(url(payable), json={"annual_rate": "12.5", "expiry": expiry.isoformat()},
                           headers=payable.buyer.headers)

    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == url(payable)
    assert {key: body[key] for key in ("invoice_id", "buyer_id", "status", "annual_rate_bps", "annual_rate_percent",
                                       "currency", "paid", "discount", "repayment_id")} == {
        "invoice_id": payable.invoice_id, "buyer_id": payable.buyer.organisation_id, "status": "pending",
        "annual_rate_bps": 1250, "annual_rate_percent": "12.50", "currency": "CNY", "paid": None, "discount": None,
        "repayment_id": None}
    assert datetime.fromisoformat(body["expiry"]) == expiry
    assert body["pending_actions"] == [{"function": "offerEarlyPayment", "status": "queued"}]
    quote = body["quote"]
    assert quote["outstanding"] == "10000.00" and quote["days_early"] in (59, 60)
    assert quote["paid_minor"] + quote["discount_minor"] == 1_000_000 and quote["discount_minor"] > 0
    assert queued(app)[0][0] == "offerEarlyPayment"

    polled = client.get(response.headers["Location"], headers=payable.holder.headers)
    assert polled.status_code == 200 and polled.json["id"] == body["id"]


@pytest.mark.parametrize(("terms", "field"), [
    ({"annual_rate": "12.345"}, "annual_rate"),
    ({"expiry": "2030-01-01T00:00:00"}, "expiry"),  # no time zone
    ({"expiry": "next week"}, "expiry"),
])
def test_bad_terms_are_422_by_field(client: FlaskClient, payable: Payable, terms: dict[str, str],
                                    field: str) -> None:
    body = {"annual_rate": "12", "expiry": (datetime.now(UTC) + timedelta(days=20)).isoformat(), **terms}
    response = client.post(url(payable), json=body, headers=payable.buyer.headers)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_only_the_buyer_offers_and_strangers_see_nothing(client: FlaskClient, payable: Payable) -> None:
    body = {"annual_rate": "12", "expiry": (datetime.now(UTC) + timedelta(days=20)).isoformat()}
    refused = client.post(url(payable), json=body, headers=payable.holder.headers)
    assert (refused.status_code, problem_code(refused)) == (403, "permission-denied")
    assert client.get(url(payable), headers=payable.buyer.headers).status_code == 404  # no offer yet
    hidden = client.post(url(payable), json=body, headers=payable.stranger.headers)
    assert (hidden.status_code, problem_code(hidden)) == (404, "not-found")


def test_the_holder_accepts_at_the_discount_quoted(app: Flask, client: FlaskClient, payable: Payable) -> None:
    open_offer(app, payable, annual_rate_bps=1200)
    quote = client.get(url(payable), headers=payable.holder.headers).json["quote"]

    too_little = client.post(url(payable, "/accept"), json={"discount_seen": "0.01"}, headers=payable.holder.headers)
    assert (too_little.status_code, problem_code(too_little)) == (409, "invalid-state")
    by_buyer = client.post(url(payable, "/accept"), json={"discount_seen": quote["discount"]},
                           headers=payable.buyer.headers)
    assert by_buyer.status_code == 403
    response = client.post(url(payable, "/accept"), json={"discount_seen": quote["discount"]},
                           headers=payable.holder.headers)

    assert response.status_code == 202, response.json
    assert response.json["pending_actions"] == [{"function": "acceptEarlyPayment", "status": "queued"}]
    assert response.json["repayment_id"] is not None
    [(function, args)] = queued(app)
    assert (function, args[1]) == ("acceptEarlyPayment", quote["discount_minor"])


def test_the_buyer_withdraws_its_open_offer(app: Flask, client: FlaskClient, payable: Payable) -> None:
    open_offer(app, payable)
    assert client.delete(url(payable), headers=payable.supplier.headers).status_code == 403

    response = client.delete(url(payable), headers=payable.buyer.headers)

    assert response.status_code == 202
    assert response.json["status"] == "open"
    assert response.json["pending_actions"] == [{"function": "withdrawEarlyPayment", "status": "queued"}]
    again = client.delete(url(payable), headers=payable.buyer.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")
    with app.app_context():
        assert db.session.scalars(select(EarlyPaymentOffer)).one().status == EarlyPaymentOfferStatus.OPEN
