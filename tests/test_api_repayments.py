"""The servicing API (backend/api/repayments.py): the buyer's repayments, the holder's overdue
and default marks, the list of repayments and the financier's portfolio. Each test builds its
data in an application context, then calls the API with a client outside it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import ChainTransaction, Delinquency, Invoice, InvoiceStatus, Organisation, Repayment, Role
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, problem_code
from tests.test_servicing_services import bought, days_from_today, repaid


@dataclass(frozen=True)
class Book:
    seller: Credentials  # the supplier, which sold the receivable
    buyer: Credentials
    holder: Credentials  # the financier holding it
    other_buyer: Credentials
    invoice_id: int  # confirmed, CNY 10,000.00, 40 days past due: overdue and defaultable


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def book(app: Flask) -> Book:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        buyer = factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER)
        invoice = factories.invoice(supplier, buyer, holder=financier, due_in_days=-40,
                                    issue_date=date.today() - timedelta(days=100))
        db.session.commit()
        return Book(api_support.issue_api_key(supplier), api_support.issue_api_key(buyer),
                    api_support.issue_api_key(financier),
                    api_support.issue_api_key(factories.organisation(Role.BUYER)), invoice.id)


def change_invoice(app: Flask, invoice_id: int, **columns: Any) -> None:
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        for column, value in columns.items():
            setattr(invoice, column, value)
        db.session.commit()


def held_invoice(app: Flask, book: Book, **options: Any) -> int:
    """Another receivable of the book's supplier and buyer that the financier holds."""
    with app.app_context():
        invoice = factories.invoice(db.session.get(Organisation, book.seller.organisation_id),
                                    db.session.get(Organisation, book.buyer.organisation_id),
                                    holder=db.session.get(Organisation, book.holder.organisation_id), **options)
        db.session.commit()
        return invoice.id


def row_counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count(Repayment.id))),
                db.session.scalar(select(func.count(ChainTransaction.id))))


# ---------------------------------------------------------------- repayments


def test_the_buyer_repays_and_polls_the_repayment(app: Flask, client: FlaskClient, book: Book) -> None:
    response = client.post(f"/api/v1/invoices/{book.invoice_id}/repayments",
                           json={"amount": "2500.50", "currency": "CNY"}, headers=book.buyer.headers)
    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/v1/repayments/{body['id']}"
    assert {key: body[key] for key in ("invoice_id", "payer_id", "status", "currency", "amount", "amount_minor",
                                       "recorded_at")} == {
        "invoice_id": book.invoice_id, "payer_id": book.buyer.organisation_id, "status": "pending",
        "currency": "CNY", "amount": "2500.50", "amount_minor": 250_050, "recorded_at": None,
    }
    polled = client.get(response.headers["Location"], headers=book.holder.headers)
    assert polled.status_code == 200 and polled.json == body
    assert client.get(response.headers["Location"], headers=book.other_buyer.headers).status_code == 404
    assert row_counts(app) == (1, 1)


def test_a_retried_repayment_is_made_once(app: Flask, client: FlaskClient, book: Book) -> None:
    headers = {**book.buyer.headers, "Idempotency-Key": "pay-inv-1"}
    url = f"/api/v1/invoices/{book.invoice_id}/repayments"
    first = client.post(url, json={"amount": "100", "currency": "CNY"}, headers=headers)
    retry = client.post(url, json={"amount": "100", "currency": "CNY"}, headers=headers)
    assert (first.status_code, retry.status_code, retry.json) == (202, 202, first.json)
    assert row_counts(app) == (1, 1)


@pytest.mark.parametrize(
    ("payment", "field"),
    [
        ({"amount": "0", "currency": "CNY"}, "amount"),
        ({"amount": "10000.01", "currency": "CNY"}, "amount"),
        ({"amount": "1.001", "currency": "CNY"}, "amount"),
        ({"amount": "100", "currency": "USD"}, "currency"),
        ({"amount": "100"}, "currency"),
        ({"currency": "CNY"}, "amount"),
    ],
)
def test_bad_repayments_are_422_by_field(app: Flask, client: FlaskClient, book: Book, payment: dict[str, Any],
                                         field: str) -> None:
    response = client.post(f"/api/v1/invoices/{book.invoice_id}/repayments", json=payment,
                           headers=book.buyer.headers)
    assert (response.status_code, problem_code(response)) == (422, "invalid-input")
    assert field in response.json["errors"]
    assert row_counts(app) == (0, 0)


def test_who_may_repay_what(app: Flask, client: FlaskClient, book: Book) -> None:
    url = f"/api/v1/invoices/{book.invoice_id}/repayments"
    payment = {"amount": "100", "currency": "CNY"}
    assert client.post(url, json=payment, headers=book.holder.headers).status_code == 403
    assert client.post(url, json=payment, headers=book.other_buyer.headers).status_code == 404
    change_invoice(app, book.invoice_id, status=InvoiceStatus.REPAID)
    repaid = client.post(url, json=payment, headers=book.buyer.headers)
    assert (repaid.status_code, problem_code(repaid)) == (409, "invalid-state")
    assert row_counts(app) == (0, 0)


def test_repayments_are_listed_for_those_who_see_the_invoice(app: Flask, client: FlaskClient, book: Book) -> None:
    url = f"/api/v1/invoices/{book.invoice_id}/repayments"
    first = client.post(url, json={"amount": "100", "currency": "CNY"}, headers=book.buyer.headers).json["id"]
    second = client.post(url, json={"amount": "200", "currency": "CNY"}, headers=book.buyer.headers).json["id"]

    def listed(caller: Credentials, query: str = "") -> list[int]:
        response = client.get(f"/api/v1/repayments{query}", headers=caller.headers)
        assert response.status_code == 200, response.json
        return [repayment["id"] for repayment in response.json["items"]]

    assert listed(book.buyer) == listed(book.holder) == listed(book.seller) == [first, second]
    assert listed(book.other_buyer) == []
    assert listed(book.buyer, f"?invoice_id={book.invoice_id}&status=pending") == [first, second]
    assert listed(book.buyer, "?status=recorded") == []
    page = client.get("/api/v1/repayments?limit=1", headers=book.buyer.headers).json
    assert [item["id"] for item in page["items"]] == [first] and page["next_cursor"]
    assert client.get("/api/v1/repayments?status=lost", headers=book.buyer.headers).status_code == 422


# ---------------------------------------------------------------- overdue and default


def test_the_holder_marks_the_receivable_overdue_then_defaulted(app: Flask, client: FlaskClient, book: Book) -> None:
    overdue = client.post(f"/api/v1/invoices/{book.invoice_id}/overdue", headers=book.holder.headers)
    assert overdue.status_code == 202, overdue.json
    assert overdue.headers["Location"] == f"/api/v1/invoices/{book.invoice_id}"
    assert overdue.json == {"invoice_id": book.invoice_id, "status": "confirmed", "delinquency": "none",
                            "pending_actions": [{"function": "markOverdue", "status": "queued"}]}
    again = client.post(f"/api/v1/invoices/{book.invoice_id}/overdue", headers=book.holder.headers)
    assert (again.status_code, problem_code(again)) == (409, "duplicate")
    not_yet_overdue = client.post(f"/api/v1/invoices/{book.invoice_id}/default", headers=book.holder.headers)
    assert (not_yet_overdue.status_code, problem_code(not_yet_overdue)) == (409, "invalid-state")

    change_invoice(app, book.invoice_id, delinquency=Delinquency.OVERDUE)  # the indexer read ReceivableOverdue
    defaulted = client.post(f"/api/v1/invoices/{book.invoice_id}/default", headers=book.holder.headers)
    assert defaulted.status_code == 202
    assert defaulted.json["delinquency"] == "overdue"
    assert defaulted.json["pending_actions"][-1] == {"function": "markDefaulted", "status": "queued"}


@pytest.mark.parametrize("mark", ["overdue", "default"])
def test_who_may_mark_a_receivable(client: FlaskClient, book: Book, mark: str) -> None:
    url = f"/api/v1/invoices/{book.invoice_id}/{mark}"
    assert client.post(url, headers=book.seller.headers).status_code == 403  # sold it: no longer the holder
    assert client.post(url, headers=book.buyer.headers).status_code == 403
    assert client.post(url, headers=book.other_buyer.headers).status_code == 404
    assert client.post(url).status_code == 401


def test_a_receivable_within_its_grace_period_is_not_overdue(app: Flask, client: FlaskClient, book: Book) -> None:
    change_invoice(app, book.invoice_id, due_date=date.today() - timedelta(days=2))
    response = client.post(f"/api/v1/invoices/{book.invoice_id}/overdue", headers=book.holder.headers)
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")
    assert row_counts(app) == (0, 0)


# ---------------------------------------------------------------- portfolio


def test_the_portfolio_pages_through_holdings_with_totals(app: Flask, client: FlaskClient, book: Book) -> None:
    change_invoice(app, book.invoice_id, delinquency=Delinquency.OVERDUE, repaid_minor=100_000)
    later = held_invoice(app, book, due_in_days=30, amount_minor=500_000)
    euro = held_invoice(app, book, due_in_days=45, currency="EUR", amount_minor=70_000)

    response = client.get("/api/v1/portfolio?limit=2", headers=book.holder.headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert [item["invoice_id"] for item in body["items"]] == [book.invoice_id, later]  # the soonest due first
    assert {key: body["items"][0][key] for key in ("status", "delinquency", "currency", "amount", "amount_minor",
                                                   "outstanding", "outstanding_minor")} == {
        "status": "confirmed", "delinquency": "overdue", "currency": "CNY", "amount": "10000.00",
        "amount_minor": 1_000_000, "outstanding": "9000.00", "outstanding_minor": 900_000,
    }
    assert body["totals"] == [  # over every holding, not only this page
        {"currency": "CNY", "receivables": 2, "amount": "15000.00", "amount_minor": 1_500_000,
         "outstanding": "14000.00", "outstanding_minor": 1_400_000, "overdue": "9000.00", "overdue_minor": 900_000,
         "defaulted": "0.00", "defaulted_minor": 0, "expected_yield_percent": None, "realised_yield_percent": None},
        {"currency": "EUR", "receivables": 1, "amount": "700.00", "amount_minor": 70_000, "outstanding": "700.00",
         "outstanding_minor": 70_000, "overdue": "0.00", "overdue_minor": 0, "defaulted": "0.00",
         "defaulted_minor": 0, "expected_yield_percent": None, "realised_yield_percent": None},
    ]
    assert body["items"][0]["yields"] is None  # it came to the financier without a purchase on the market
    rest = client.get(f"/api/v1/portfolio?limit=2&cursor={body['next_cursor']}", headers=book.holder.headers).json
    assert ([item["invoice_id"] for item in rest["items"]], rest["next_cursor"]) == ([euro], None)

    overdue_only = client.get("/api/v1/portfolio?delinquency=overdue", headers=book.holder.headers).json
    assert [item["invoice_id"] for item in overdue_only["items"]] == [book.invoice_id]
    assert [total["receivables"] for total in overdue_only["totals"]] == [1]
    pending = client.get("/api/v1/portfolio?status=pending", headers=book.holder.headers)
    assert (pending.status_code, list(pending.json["errors"])) == (422, ["status"])
    assert client.get("/api/v1/portfolio", headers=book.seller.headers).status_code == 403


def test_the_portfolio_carries_the_yields_of_what_the_financier_bought(app: Flask, client: FlaskClient,
                                                                      book: Book) -> None:
    with app.app_context():
        financier = db.session.get(Organisation, book.holder.organisation_id)
        invoice = db.session.get(Invoice, book.invoice_id)  # 10,000.00, due 40 days ago
        # Bought for 9,700.00 100 days ago; repaid in full 20 days ago: 300.00 over 80 days.
        bought(invoice, financier, paid_minor=970_000, on=days_from_today(-100))
        repaid(invoice, 1_000_000, on=days_from_today(-20), block=150)
        db.session.commit()

    body = client.get("/api/v1/portfolio", headers=book.holder.headers).json

    assert body["items"][0]["yields"] == {
        "paid": "9700.00", "paid_minor": 970_000, "funded_on": days_from_today(-100).isoformat(),
        "received": "10000.00", "received_minor": 1_000_000,
        # 300 / 9,700 × 365 / 60 × 100 = 18.8144…; 300 / 9,700 × 365 / 80 × 100 = 14.1108…
        "expected_yield_percent": "18.81", "repaid_on": days_from_today(-20).isoformat(),
        "realised_yield_percent": "14.11",
    }
    assert (body["totals"][0]["expected_yield_percent"], body["totals"][0]["realised_yield_percent"]) == (
        None, "14.11")  # nothing still owed


def test_the_overdue_list_holds_what_is_unpaid_after_its_due_date(app: Flask, client: FlaskClient,
                                                                   book: Book) -> None:
    change_invoice(app, book.invoice_id, delinquency=Delinquency.DEFAULTED)
    late = held_invoice(app, book, due_in_days=-3, issue_date=days_from_today(-30))
    held_invoice(app, book, due_in_days=3)

    response = client.get("/api/v1/portfolio/overdue", headers=book.holder.headers)

    assert response.status_code == 200, response.json
    assert [(item["invoice_id"], item["days_late"], item["delinquency"]) for item in response.json["items"]] == [
        (book.invoice_id, 40, "defaulted"), (late, 3, "none")]
    assert client.get("/api/v1/portfolio/overdue", headers=book.buyer.headers).status_code == 403
