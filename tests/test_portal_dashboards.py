"""Each role's dashboard: the figures it opens with, drawn from the services under the same
visibility rules as the API, and the navigation of an organisation's roles."""
from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date, format_skeleton
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ContractName,
    IndexerCursor,
    Invoice,
    InvoiceStatus,
    KycStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
    TokenBalance,
)
from backend.services import overview
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import portal_sign_in, text


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _rows(page: str) -> list[list[str]]:
    """The table rows of a page, each as its cells' texts."""
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]


def _table(page: str, caption: str) -> str:
    """The table of a page whose caption starts with `caption`."""
    return re.search(rf"<caption>{re.escape(caption)}.*?</table>", page, re.S).group(0)


def test_a_supplier_sees_its_own_invoices_only(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        factories.invoice(supplier, buyer, status=InvoiceStatus.CONFIRMED, amount_minor=100_00)
        factories.invoice(supplier, buyer, status=InvoiceStatus.CONFIRMED, amount_minor=250_50)
        factories.invoice(supplier, buyer, status=InvoiceStatus.DISPUTED, amount_minor=7_00, currency="EUR")
        factories.invoice(factories.organisation(Role.SUPPLIER), buyer, amount_minor=999_99)
        email = user_with_password(supplier).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/supplier"))

    assert _rows(_table(page, "Invoices you issued"))[1:] == [["Confirmed", "2", "CN¥350.50"],
                                                              ["Disputed", "1", "€7.00"]]
    # The chart shows the same figures, in the same order.
    assert 'data-chart-values="[2, 1]"' in page


def test_a_buyer_sees_its_payables(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        buyer = factories.organisation(Role.BUYER)
        factories.invoice(factories.organisation(Role.SUPPLIER), buyer, status=InvoiceStatus.REGISTERED,
                          amount_minor=5_000_00)
        email = user_with_password(buyer).email
    portal_sign_in(client, email)

    assert ["Registered", "1", "CN¥5,000.00"] in _rows(text(client.get("/dashboard/buyer")))


def test_a_financier_sees_the_open_requests_and_what_it_holds(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        financier = factories.organisation(Role.FINANCIER)
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        factories.financing_request(factories.invoice(supplier, buyer))
        factories.financing_request(factories.invoice(supplier, buyer))
        factories.invoice(supplier, buyer, holder=financier, amount_minor=42_00)
        email = user_with_password(financier).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/financier"))

    assert "<strong>2</strong> financing requests open to your offers" in page
    assert ["Confirmed", "1", "CN¥42.00"] in _rows(page)


def test_the_operator_sees_the_organisations_by_kyc_status(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        operator = factories.organisation(Role.OPERATOR, onboarded=False)
        factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING, onboarded=False)
        factories.organisation(Role.BUYER, suspended=True)
        email = user_with_password(operator).email
    portal_sign_in(client, email)

    rows = _rows(text(client.get("/dashboard/operator")))

    assert ["Approved", "2", "1"] in rows and ["Awaiting review", "1", "0"] in rows


def test_the_auditor_sees_every_invoice(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        auditor = factories.organisation(Role.AUDITOR, onboarded=False)
        for _ in range(3):
            factories.invoice(factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER),
                              status=InvoiceStatus.REPAID, amount_minor=1_00)
        email = user_with_password(auditor).email
    portal_sign_in(client, email)

    assert ["Repaid", "3", "CN¥3.00"] in _rows(text(client.get("/dashboard/auditor")))


def test_an_organisation_with_several_roles_has_a_dashboard_for_each(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        email = user_with_password(factories.organisation(Role.SUPPLIER | Role.BUYER)).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/buyer"))

    assert '<a href="/dashboard/supplier"' in page
    assert re.search(r'<a href="/dashboard/buyer"\s+aria-current="page">', page)
    assert "No invoices yet." in page
    assert '<a href="/operator/users">' not in page


# ---------------------------------------------------------------- the supplier's cash and maturities


_tx_numbers = itertools.count(1)


def _settled(invoice: Invoice, seller: Organisation, on: date) -> None:
    """The FinancingSettled event of `seller` selling `invoice`, as the indexer stored it on `on`."""
    db.session.add(ChainEvent(
        chain_id=31337, tx_hash="0x%064x" % next(_tx_numbers), log_index=0, block_number=1,
        block_hash="0x" + "01" * 32, contract=ContractName.FINANCING, event="FinancingSettled",
        args={"id": str(int(invoice.receivable_id, 16)), "seller": seller.chain_address,
              "financier": factories.new_address(), "round": 1, "advance": 1, "viaOffer": True},
        applied_at=datetime.combine(on, time(9, 30), UTC)))


def _repaid(invoice: Invoice, *recorded_on: date) -> None:
    """The buyer's repayments of `invoice`, recorded on the ledger on those days; the last repays it in full."""
    for day in recorded_on:
        db.session.add(Repayment(invoice=invoice, payer=invoice.buyer,
                                 amount_minor=invoice.amount_minor // len(recorded_on), status=RepaymentStatus.RECORDED,
                                 recorded_at=datetime.combine(day, time(15), UTC)))
    invoice.status = InvoiceStatus.REPAID


def _month(day: date) -> str:
    return format_skeleton("yMMM", day, locale="en")


def test_the_supplier_sees_its_days_from_invoice_to_cash(app: Flask, client: FlaskClient) -> None:
    today = datetime.now(UTC).date()
    this_month, last_month = today.replace(day=1), overview.shift_month(today, -1)
    window_start = overview.shift_month(today, 1 - overview.DAYS_TO_CASH_MONTHS)
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        financier, own_supplier = factories.organisation(Role.FINANCIER), factories.organisation(Role.SUPPLIER)

        def issued(days_before: date, days: int, **options: object) -> Invoice:
            return factories.invoice(supplier, buyer, issue_date=days_before - timedelta(days=days), **options)

        # This month: sold 30 and 45 days after issue; on average 37.5 days.
        _settled(issued(today, 30), supplier, today)
        _settled(issued(today, 45), supplier, today)
        # Last month: repaid in full on the 5th (a part came on the 2nd), 24 days after issue; and
        # sold on the 1st, 6 days after issue, bought back and repaid this month: paid once, when
        # sold. On average 15.0 days.
        fifth = last_month + timedelta(days=4)
        _repaid(issued(fifth, 24), last_month + timedelta(days=1), fifth)
        bought_back = issued(last_month, 6)
        _settled(bought_back, supplier, last_month)
        _repaid(bought_back, today)
        # The first month of the window: sold 12 days after issue, on its first day; the day
        # before it, another one, too long ago.
        _settled(issued(window_start, 12), supplier, window_start)
        _settled(issued(window_start, 40), supplier, window_start - timedelta(days=1))
        # Nothing it was paid: repaid to the financier it transferred the receivable to, sold by
        # its own supplier after a split, or another supplier's.
        _repaid(issued(today, 3, holder=financier), today)
        _settled(issued(today, 8, holder=own_supplier), own_supplier, today)
        _settled(factories.invoice(own_supplier, buyer, issue_date=today - timedelta(days=2)), own_supplier, today)
        email = user_with_password(supplier).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/supplier"))

    assert _rows(_table(page, "Average days from invoice to cash"))[1:] == [
        [_month(window_start), "1", "12.0"], [_month(last_month), "2", "15.0"], [_month(this_month), "2", "37.5"]]
    assert 'data-chart-type="line"' in page and 'data-chart-values="[12.0, 15.0, 37.5]"' in page
    assert f'data-chart-labels="[&#34;{_month(window_start)}&#34;, ' in page


def test_the_days_to_cash_count_whole_days_from_the_issue_date(app: Flask) -> None:
    today = datetime.now(UTC).date()
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        sold = factories.invoice(supplier, buyer, issue_date=today - timedelta(days=1))
        _settled(sold, supplier, today)
        same_day = factories.invoice(supplier, buyer, issue_date=today)
        _repaid(same_day, today)

        receipts = overview.cash_receipts(factories.actor(supplier), since=today)

        assert [(receipt.invoice, receipt.financed, receipt.paid_on, receipt.days) for receipt in receipts] == [
            (sold, True, today, 1), (same_day, False, today, 0)]
        assert overview.days_to_cash(factories.actor(supplier)) == [
            overview.DaysToCash(today.replace(day=1), 2, Decimal("0.5"))]


def test_a_supplier_without_payments_is_told_so(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        email = user_with_password(factories.organisation(Role.SUPPLIER)).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/supplier"))

    assert "No receivable of yours has been financed or repaid in that time." in page
    assert "<strong>CN¥0.00</strong>" in page
    assert "No confirmed receivable of yours falls due from today on." in page


def test_the_supplier_sees_its_settlement_token_balance(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        db.session.add_all([
            IndexerCursor(chain_id=31337, contract=ContractName.SETTLEMENT_TOKEN, block_number=9,
                          block_hash="0x" + "09" * 32),
            TokenBalance(chain_id=31337, address=supplier.chain_address, balance_minor=1_234_567_89),
            TokenBalance(chain_id=31337, address=factories.organisation(Role.SUPPLIER).chain_address,
                         balance_minor=5_00),
        ])
        email = user_with_password(supplier).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/supplier"))

    assert "<strong>CN¥1,234,567.89</strong> in your account on the ledger" in page
    assert "CN¥5.00" not in page


def test_the_supplier_sees_its_next_maturities(app: Flask, client: FlaskClient) -> None:
    today = datetime.now(UTC).date()
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER, name="Keel Motors")
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        part_repaid = factories.invoice(supplier, buyer, due_in_days=3, amount_minor=100_00, holder=financier)
        part_repaid.repaid_minor = 40_00
        later = [factories.invoice(supplier, buyer, due_in_days=days) for days in (10, 20, 21, 22, 23)]
        factories.invoice(supplier, buyer, due_in_days=1, status=InvoiceStatus.REGISTERED)
        factories.invoice(supplier, buyer, due_in_days=-1, issue_date=today - timedelta(days=30))
        factories.invoice(factories.organisation(Role.SUPPLIER), buyer, due_in_days=2)
        numbers = [part_repaid.invoice_number] + [invoice.invoice_number for invoice in later]
        email = user_with_password(supplier).email
    portal_sign_in(client, email)

    rows = _rows(_table(text(client.get("/dashboard/supplier")), "Your confirmed receivables falling due next"))[1:]

    assert [re.sub(r"<[^>]+>", "", row[0]) for row in rows] == numbers[:5]
    assert rows[0][1:] == ["Keel Motors", "CN¥60.00", format_date(today + timedelta(days=3), "medium", locale="en"),
                           "Harbour Capital"]


def test_the_buyer_sees_its_next_maturities_and_whom_it_pays(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        buyer = factories.organisation(Role.BUYER)
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        due = factories.invoice(factories.organisation(Role.SUPPLIER, name="Tide Works"), buyer, due_in_days=5,
                                holder=financier, amount_minor=2_500_00)
        number = due.invoice_number
        email = user_with_password(buyer).email
    portal_sign_in(client, email)

    page = text(client.get("/dashboard/buyer"))

    (row,) = _rows(_table(page, "Your confirmed payables falling due next"))[1:]
    assert number in row[0] and row[1:3] == ["Tide Works", "CN¥2,500.00"] and row[4] == "Harbour Capital"
    assert 'href="/payables/calendar"' in page
