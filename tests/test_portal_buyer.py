"""The core enterprise's pages: the payables inbox (who holds each payable), confirming and
disputing one by one on the invoice's page and together from the inbox, through the same
services as the API: each answer queues its ledger write."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from babel.dates import format_skeleton
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import ChainTransaction, Invoice, InvoiceStatus, Organisation, Role
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
    assert "<dd>Goods defective: Cracked casings</dd>" in text(client.get(path))  # the reason in words


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


# ---------------------------------------------------------------- the maturity calendar


def due_on(supplier: Organisation, buyer: Organisation, day: date, **options: object) -> Invoice:
    """An invoice of `supplier` to `buyer` falling due on `day`."""
    invoice = factories.invoice(supplier, buyer, issue_date=min(day, date.today()), **options)
    invoice.due_date = day
    return invoice


def day_cell(page: str, day: date) -> str:
    """The calendar's cell of `day`."""
    return re.search(rf'<td class="[a-z-]+">\s*<time datetime="{day.isoformat()}">.*?</td>', page, re.S).group(0)


@pytest.fixture
def calendar_month(app: Flask) -> dict[str, object]:
    """February 2030 of a buyer: confirmed payables due on the 1st (one of them repaid in part,
    one in euros) and on the 28th, and, left out, payables due the day before and the day
    after the month, a registered one and another buyer's."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        first = due_on(supplier, buyer, date(2030, 2, 1), amount_minor=1_000_00, holder=financier)
        first.repaid_minor = 250_00
        second = due_on(supplier, buyer, date(2030, 2, 1), amount_minor=500_00)
        euros = due_on(supplier, buyer, date(2030, 2, 1), amount_minor=70_00, currency="EUR")
        last = due_on(supplier, buyer, date(2030, 2, 28), amount_minor=2_000_00)
        left_out = [due_on(supplier, buyer, date(2030, 1, 31)), due_on(supplier, buyer, date(2030, 3, 1)),
                    due_on(supplier, buyer, date(2030, 2, 10), status=InvoiceStatus.REGISTERED),
                    due_on(supplier, factories.organisation(Role.BUYER), date(2030, 2, 10))]
        db.session.commit()
        return {"buyer": user_with_password(buyer).email, "supplier": user_with_password(supplier).email,
                "first": first.invoice_number, "second": second.invoice_number, "euros": euros.invoice_number,
                "last": last.invoice_number, "left_out": [invoice.invoice_number for invoice in left_out]}


def test_the_calendar_lists_each_days_confirmed_payables_and_totals(client, calendar_month):
    portal_sign_in(client, calendar_month["buyer"])

    answer = client.get("/payables/calendar?month=2030-02")

    page = text(answer)
    assert answer.status_code == 200 and "<h1>Maturity calendar: February 2030</h1>" in page
    first_day = day_cell(page, date(2030, 2, 1))
    assert all(calendar_month[name] in first_day for name in ("first", "second", "euros"))
    assert "CN¥750.00" in first_day and "to Harbour Capital" in first_day
    assert "Day's total: CN¥1,250.00, €70.00" in first_day
    last_day = day_cell(page, date(2030, 2, 28))
    assert calendar_month["last"] in last_day and "Day's total: CN¥2,000.00" in last_day
    assert not any(number in page for number in calendar_month["left_out"])
    assert "<dt>Payables due</dt><dd>4</dd>" in page
    assert "<dt>Still to pay this month</dt>\n  <dd>CN¥3,250.00, €70.00</dd>" in page


def test_the_calendar_is_a_month_grid_of_weeks(client, calendar_month):
    portal_sign_in(client, calendar_month["buyer"])

    page = text(client.get("/payables/calendar?month=2030-02"))

    # Weeks from Monday in English: 1 February 2030 is a Friday, 28 February a Thursday.
    assert re.search(r"<caption>Confirmed payables falling due in February 2030", page)
    assert '<th scope="col"><span aria-hidden="true">Mon</span><span class="visually-hidden">Monday</span></th>' in page
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert body.count("<tr>") == 5 and body.count("<td") == 35
    assert body.count('<td class="outside-month">') == 4 + 3
    assert body.index('datetime="2030-02-01"') < body.index('datetime="2030-02-28"')
    assert '<td class="no-payables">' in body and body.count('<td class="has-payables">') == 2


def test_the_calendar_links_the_months_before_and_after(client, calendar_month):
    portal_sign_in(client, calendar_month["buyer"])

    page = text(client.get("/payables/calendar?month=2030-01"))

    assert 'href="/payables/calendar?month=2029-12" rel="prev"' in page
    assert 'href="/payables/calendar?month=2030-02" rel="next"' in page
    # 31 January is in January's calendar, 1 February is not.
    assert calendar_month["left_out"][0] in page and calendar_month["first"] not in page
    assert "January 2030" in page


def test_the_calendar_opens_on_the_current_month(client, calendar_month):
    portal_sign_in(client, calendar_month["buyer"])

    page = text(client.get("/payables/calendar"))

    today = datetime.now(UTC).date()
    assert f"Maturity calendar: {format_skeleton('yMMMM', today, locale='en')}" in page
    assert f'<time datetime="{today.isoformat()}">' in page
    assert "No confirmed payable falls due in this month." in page


@pytest.mark.parametrize("month", ["2030-13", "30-01", "2030-1", "1899-12", "next"])
def test_a_month_the_calendar_cannot_show_is_shown_on_its_field(client, calendar_month, month):
    portal_sign_in(client, calendar_month["buyer"])

    answer = client.get(f"/payables/calendar?month={month}")

    assert answer.status_code == 400
    assert 'id="month-errors"' in text(answer) and "Give a month from 1900-01 to 2999-12" in text(answer)


def test_the_calendar_is_the_buyers_and_in_its_navigation(client, calendar_month):
    portal_sign_in(client, calendar_month["supplier"])
    assert client.get("/payables/calendar").status_code == 404
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/invoices")})

    portal_sign_in(client, calendar_month["buyer"])

    assert re.search(r'<a href="/payables/calendar"\s+aria-current="page">Maturity calendar</a>',
                     text(client.get("/payables/calendar")))


def test_the_calendar_in_chinese(client, calendar_month):
    client.set_cookie("anchorline_language", "zh_Hans_CN")
    portal_sign_in(client, calendar_month["buyer"])

    page = text(client.get("/payables/calendar?month=2030-02"))

    assert "2030年2月" in page and "星期一" in page and "¥750.00" in page


def test_a_page_number_beyond_the_databases_integers_shows_the_first_page(app, client, parties):
    portal_sign_in(client, parties["buyer"])
    for path in ("/payables", "/payables/confirmed"):
        assert client.get(f"{path}?page=" + "9" * 30).status_code == 200
