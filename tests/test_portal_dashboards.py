"""Each role's dashboard: the figures it opens with, drawn from the services under the same
visibility rules as the API, and the navigation of an organisation's roles."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.models import InvoiceStatus, KycStatus, Role
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import portal_sign_in, text


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _rows(page: str) -> list[list[str]]:
    """The table rows of a page, each as its cells' texts."""
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]


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

    assert _rows(page)[1:] == [["Confirmed", "2", "CN¥350.50"], ["Disputed", "1", "€7.00"]]
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
