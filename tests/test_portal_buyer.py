"""The core enterprise's pages: the payables inbox (who holds each payable), confirming and
disputing one by one on the invoice's page and together from the inbox, through the same
services as the API: each answer queues its ledger write."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import ChainTransaction, Invoice, InvoiceStatus, Role
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def parties(app: Flask) -> dict[str, int | str]:
    """A supplier, a buyer signed in as nobody yet, a financier holding one payable, and three
    registered invoices awaiting the buyer's answer (and one already confirmed)."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        first = factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED, due_in_days=10)
        second = factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED, due_in_days=20,
                                   holder=financier, amount_minor=2_500_00)
        third = factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED, due_in_days=30)
        confirmed = factories.invoice(supplier, buyer, status=InvoiceStatus.CONFIRMED)
        return {"buyer": user_with_password(buyer).email, "supplier": user_with_password(supplier).email,
                "first": first.id, "second": second.id, "third": third.id, "confirmed": confirmed.id,
                "confirmed_number": confirmed.invoice_number, "second_number": second.invoice_number}


def writes(app: Flask) -> list[tuple[str, int | None]]:
    with app.app_context():
        return [(row.function, row.invoice_id) for row in db.session.scalars(
            db.select(ChainTransaction).order_by(ChainTransaction.id))]


def test_the_inbox_lists_the_payables_awaiting_an_answer_with_their_holders(client, parties):
    portal_sign_in(client, parties["buyer"])

    page = text(client.get("/payables"))

    assert page.count('name="invoices"') == 3
    assert parties["confirmed_number"] not in page
    assert "Harbour Capital" in page and "CN¥2,500.00" in page
    # Soonest due first.
    assert page.index(f'value="{parties["first"]}"') < page.index(f'value="{parties["third"]}"')


def test_the_inbox_and_the_answers_are_the_buyers_only(client, parties):
    portal_sign_in(client, parties["supplier"])

    assert client.get("/payables").status_code == 404
    token = csrf_token(client, f"/invoices/{parties['first']}")
    answer = client.post(f"/invoices/{parties['first']}/confirm", data={"csrf_token": token})
    assert answer.status_code == 403
    # The supplier sees its invoice, but not the buyer's answer forms.
    assert "Confirm: we will pay it at maturity" not in text(client.get(f"/invoices/{parties['first']}"))


def test_the_buyer_confirms_one_invoice_on_its_page(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['first']}"

    answer = post_form(client, f"{path}/confirm", path)

    assert answer.status_code == 302 and answer.location == path
    assert writes(app) == [("confirm", parties["first"])]
    page = text(client.get(path))
    assert "The confirmation is on its way to the ledger." in page
    # The timeline shows the queued write, not yet sent.
    assert "Confirmed by the buyer" in page and "Queued" in page and "not sent yet" in page


def test_the_buyer_disputes_one_invoice_with_a_reason(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['first']}"

    answer = post_form(client, f"{path}/dispute", path, reason="goods-defective", note="Cracked casings")

    assert answer.status_code == 302
    assert writes(app) == [("dispute", parties["first"])]
    with app.app_context():
        assert db.session.get(Invoice, parties["first"]).dispute_reason == "goods-defective: Cracked casings"


def test_a_dispute_without_a_known_reason_is_shown_on_the_form(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['first']}"

    answer = post_form(client, f"{path}/dispute", path, reason="too-expensive")

    assert answer.status_code == 400
    assert 'id="reason-errors"' in text(answer)
    assert writes(app) == []


def test_answering_an_invoice_twice_is_an_error_page_not_a_crash(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['confirmed']}"

    answer = post_form(client, f"{path}/confirm", "/payables")

    assert answer.status_code == 400
    assert "only a registered or disputed invoice can be confirmed" in text(answer)
    assert writes(app) == []


def test_the_buyer_confirms_several_invoices_at_once(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    token = csrf_token(client, "/payables")

    answer = client.post("/payables", data={"csrf_token": token, "invoices": [parties["first"], parties["third"]],
                                            "reason": "other", "confirm": "1"})

    assert answer.status_code == 302
    assert sorted(writes(app)) == sorted([("confirm", parties["first"]), ("confirm", parties["third"])])
    assert "Confirmations on their way to the ledger: 2." in text(client.get("/payables"))


def test_the_buyer_disputes_several_invoices_for_one_reason(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    token = csrf_token(client, "/payables")

    client.post("/payables", data={"csrf_token": token, "invoices": [parties["first"], parties["second"]],
                                   "reason": "not-ordered", "dispute": "1"})

    assert sorted(writes(app)) == sorted([("dispute", parties["first"]), ("dispute", parties["second"])])


def test_a_bulk_answer_needs_a_ticked_invoice(app, client, parties):
    portal_sign_in(client, parties["buyer"])

    answer = post_form(client, "/payables", "/payables", reason="other", confirm="1")

    assert answer.status_code == 400
    assert "Select at least one invoice." in text(answer)
    assert writes(app) == []


def test_an_answer_without_the_csrf_token_is_refused(app, client, parties):
    portal_sign_in(client, parties["buyer"])

    assert client.post(f"/invoices/{parties['first']}/confirm").status_code == 400
    assert client.post("/payables", data={"invoices": [parties["first"]], "reason": "other",
                                          "confirm": "1"}).status_code == 400
    assert writes(app) == []


def test_the_inbox_in_chinese(client, parties):
    client.set_cookie("anchorline_language", "zh_Hans_CN")
    portal_sign_in(client, parties["buyer"])

    page = text(client.get("/payables"))

    assert "应付账款收件箱" in page and "¥2,500.00" in page


def test_the_confirmed_payables_show_whom_the_buyer_pays(client, parties):
    portal_sign_in(client, parties["buyer"])

    page = text(client.get("/payables/confirmed"))

    assert parties["confirmed_number"] in page and f'value="{parties["first"]}"' not in page
    assert page.count('<tr><td><a href="/invoices/') == 1


def test_the_buyer_repays_in_part(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['confirmed']}"
    # The form offers the whole amount still owed.
    assert 'name="amount" required type="text" value="10000.00"' in text(client.get(path))

    answer = post_form(client, f"{path}/repay", path, amount="2500.50")

    assert answer.status_code == 302
    assert writes(app) == [("repay", parties["confirmed"])]
    with app.app_context():
        row = db.session.scalars(db.select(ChainTransaction)).one()
        assert row.args[1] == 2_500_50
    assert "The repayment is on its way to the ledger." in text(client.get(path))


def test_repaying_more_than_is_owed_is_shown_on_the_amount(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    path = f"/invoices/{parties['confirmed']}"

    answer = post_form(client, f"{path}/repay", path, amount="10000.01")

    assert answer.status_code == 400
    assert 'id="amount-errors"' in text(answer) and "more than the 10000.00 CNY still to pay" in text(answer)
    assert writes(app) == []


def test_only_the_buyer_repays(app, client, parties):
    portal_sign_in(client, parties["supplier"])
    path = f"/invoices/{parties['confirmed']}"
    assert 'name="amount"' not in text(client.get(path))

    answer = post_form(client, f"{path}/repay", path, amount="1.00")

    assert answer.status_code == 403
    assert writes(app) == []
