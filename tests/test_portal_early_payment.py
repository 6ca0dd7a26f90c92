"""Early payment on the invoice's page: the buyer offers, revises and withdraws an offer to pay
its confirmed payable early; the holder sees what it would be paid now instead of at maturity
and accepts, through the same services as the API: each step queues its ledger write."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import ChainTransaction, EarlyPaymentOffer, EarlyPaymentOfferStatus, Invoice, InvoiceStatus, Role
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import portal_sign_in, post_form, text


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def parties(app: Flask) -> dict[str, int | str]:
    """A buyer's confirmed payable of CN¥10,000.00 due in 60 days, held by a financier, and a
    registered one the buyer has not answered yet."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        confirmed = factories.invoice(supplier, buyer, holder=financier)
        registered = factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED)
        return {"buyer": user_with_password(buyer).email, "holder": user_with_password(financier).email,
                "supplier": user_with_password(supplier).email, "confirmed": confirmed.id,
                "registered": registered.id}


def writes(app: Flask) -> list[tuple[str, list]]:
    with app.app_context():
        return [(row.function, row.args) for row in db.session.scalars(
            db.select(ChainTransaction).order_by(ChainTransaction.id))]


def open_offer(app: Flask, invoice_id: int, **options) -> None:
    with app.app_context():
        factories.early_payment_offer(db.session.get(Invoice, invoice_id), **options)
        db.session.commit()


def expiry_day(days: int = 20) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_the_buyer_offers_to_pay_early(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['confirmed']}"
    assert "Offer to pay early" in text(client.get(path))

    answer = post_form(client, f"{path}/early-payment", path, annual_rate="12.5", expiry=expiry_day())

    assert answer.status_code == 302
    [(function, args)] = writes(app)
    assert (function, args[1]) == ("offerEarlyPayment", 1250)
    page = text(client.get(path))
    assert "The early payment offer is on its way to the ledger." in page
    assert "12.50% a year" in page and "Awaiting the ledger" in page
    assert "Revise the offer" not in page  # not while its write is on its way


def test_bad_terms_are_shown_beside_their_fields(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['confirmed']}"

    answer = post_form(client, f"{path}/early-payment", path, annual_rate="12.345", expiry=expiry_day(90))

    assert answer.status_code == 400
    page = text(answer)
    assert "at most two decimals" in page and "no later than the due date" in page
    assert 'id="annual_rate-errors"' in page and 'id="expiry-errors"' in page
    assert writes(app) == []


def test_the_holder_sees_the_quote_and_accepts(app, client, parties):
    open_offer(app, parties["confirmed"], annual_rate_bps=1200)
    portal_sign_in(client, parties["holder"])
    path = f"/invoices/{parties['confirmed']}"

    page = text(client.get(path))

    assert "instead of CN¥10,000.00 at maturity" in page and "12.00% a year" in page
    assert "Accept: be paid" in page
    answer = post_form(client, f"{path}/early-payment/accept", path,
                       discount_seen=page.split('id="early-payment-discount_seen" name="discount_seen" '
                                                'type="hidden" value="')[1].split('"')[0])
    assert answer.status_code == 302
    [(function, args)] = writes(app)
    assert function == "acceptEarlyPayment" and args[1] > 0
    page = text(client.get(path))
    assert "The acceptance of the early payment is on its way to the ledger." in page
    assert "Paid early (offer accepted)" in page and "Accept: be paid" not in page


def test_a_changed_offer_is_not_accepted_unseen(app, client, parties):
    open_offer(app, parties["confirmed"], annual_rate_bps=1200)
    portal_sign_in(client, parties["holder"])
    path = f"/invoices/{parties['confirmed']}"

    answer = post_form(client, f"{path}/early-payment/accept", path, discount_seen="0.01")

    assert answer.status_code == 400
    assert "offer changed" in text(answer)
    assert writes(app) == []


def test_the_buyer_withdraws_and_others_cannot(app, client, parties):
    open_offer(app, parties["confirmed"])
    path = f"/invoices/{parties['confirmed']}"
    portal_sign_in(client, parties["holder"])
    assert "Withdraw the offer" not in text(client.get(path))
    assert post_form(client, f"{path}/early-payment/withdraw", path).status_code == 403

    client = app.test_client()
    portal_sign_in(client, parties["buyer"])
    answer = post_form(client, f"{path}/early-payment/withdraw", path)

    assert answer.status_code == 302
    assert [function for function, _args in writes(app)] == ["withdrawEarlyPayment"]
    assert client.post(f"{path}/early-payment/withdraw", data={}).status_code == 400  # no CSRF token


def test_no_section_where_there_is_nothing_to_do(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    assert "Early payment" not in text(client.get(f"/invoices/{parties['registered']}"))
    client = app.test_client()
    portal_sign_in(client, parties["supplier"])
    assert "Early payment" not in text(client.get(f"/invoices/{parties['confirmed']}"))


def test_a_settled_offer_shows_what_was_paid(app, client, parties):
    open_offer(app, parties["confirmed"], status=EarlyPaymentOfferStatus.ACCEPTED)
    with app.app_context():
        invoice = db.session.get(Invoice, parties["confirmed"])
        invoice.status, invoice.repaid_minor = InvoiceStatus.REPAID, invoice.amount_minor
        settled = db.session.scalars(db.select(EarlyPaymentOffer)).one()
        settled.paid_minor, settled.discount_minor = 980_300, 19_700
        db.session.commit()
    portal_sign_in(client, parties["buyer"])

    page = text(client.get(f"/invoices/{parties['confirmed']}"))

    assert "Accepted: paid early" in page and "CN¥9,803.00" in page and "CN¥197.00" in page
    assert "Offer to pay early" not in page
