"""The financier's pages: the marketplace and its filters, a request's page with the offer and
the outright funding (after its confirmation), the financier's offers and their withdrawal, the
portfolio with its yields, the overdue list; and every organisation's API keys and webhook
endpoints, whose secrets are shown once. Through the same services as the API."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ApiKey,
    ChainTransaction,
    Delinquency,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Role,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import portal_sign_in, post_form, text
from tests.test_servicing_services import bought, days_from_today, repaid


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def market(app: Flask) -> dict[str, int | str]:
    """Two open requests of two suppliers to two buyers (one supplier with a repaid and an
    overdue invoice behind it), the financier's own offer on the second, and a buyer's user."""
    with app.app_context():
        keel, harbour = (factories.organisation(Role.BUYER, name="Keel Motors"),
                         factories.organisation(Role.BUYER, name="Harbour Foods"))
        sails = factories.organisation(Role.SUPPLIER, name="Sails Ltd")
        ropes = factories.organisation(Role.SUPPLIER, name="Ropes Ltd")
        financier = factories.organisation(Role.FINANCIER, name="Tide Capital")
        first = factories.invoice(sails, keel, amount_minor=1_000_000, due_in_days=60)
        second = factories.invoice(ropes, harbour, amount_minor=5_000_000, due_in_days=90)
        factories.invoice(sails, keel, status=InvoiceStatus.REPAID)
        factories.invoice(sails, keel, due_in_days=-10, issue_date=date.today() - timedelta(days=60)).delinquency = \
            Delinquency.OVERDUE
        first_request = factories.financing_request(first, asking_advance_minor=950_000)
        second_request = factories.financing_request(second, asking_advance_minor=4_800_000)
        own_offer = factories.offer(second_request, financier, advance_minor=4_850_000)
        db.session.commit()
        return {"financier": user_with_password(financier).email, "buyer": user_with_password(keel).email,
                "financier_id": financier.id, "keel": keel.id, "sails": sails.id,
                "first": first_request.id, "first_number": first.invoice_number,
                "second": second_request.id, "second_number": second.invoice_number, "own_offer": own_offer.id}


def outbox_functions(app: Flask) -> list[tuple[str, int | None]]:
    with app.app_context():
        return [(row.function, row.signer_id) for row in db.session.scalars(select(ChainTransaction)
                                                                          .order_by(ChainTransaction.id))]


# ---------------------------------------------------------------- the marketplace


def test_the_market_lists_open_requests_with_the_suppliers_history(client, market):
    portal_sign_in(client, market["financier"])

    page = text(client.get("/market"))

    assert market["first_number"] in page and market["second_number"] in page
    assert "Keel Motors" in page and "Sails Ltd" in page and "CN¥9,500.00" in page
    # Sails Ltd: three confirmed invoices (the repaid one too), one repaid, one overdue.
    assert "3 confirmed, 1 repaid, 1 overdue, 0 defaulted" in page
    assert f'href="/market/{market["first"]}"' in page


def test_the_market_filters_by_buyer_due_date_and_face_value(client, market):
    portal_sign_in(client, market["financier"])

    by_buyer = text(client.get(f"/market?buyer={market['keel']}"))
    by_due = text(client.get(f"/market?due_from={(date.today() + timedelta(days=70)).isoformat()}"))
    by_amount = text(client.get("/market?amount_min=20000&amount_max=60000.00"))

    assert market["first_number"] in by_buyer and market["second_number"] not in by_buyer
    assert market["second_number"] in by_due and market["first_number"] not in by_due
    assert market["second_number"] in by_amount and market["first_number"] not in by_amount


def test_a_bad_filter_is_shown_beside_its_field(client, market):
    portal_sign_in(client, market["financier"])

    response = client.get("/market?amount_min=12.345")

    assert response.status_code == 400
    assert 'id="amount_min-errors"' in text(response) and market["first_number"] not in text(response)


@pytest.mark.parametrize("path", ["/market", "/offers", "/portfolio", "/portfolio/overdue"])
def test_the_financiers_pages_are_not_found_for_other_roles(client, market, path):
    portal_sign_in(client, market["buyer"])

    assert client.get(path).status_code == 404


def test_the_navigation_links_the_financiers_pages(client, market):
    portal_sign_in(client, market["financier"])

    page = text(client.get("/market"))

    for path in ("/market", "/offers", "/portfolio", "/portfolio/overdue", "/account/api-keys", "/account/webhooks"):
        assert f'href="{path}"' in page


# ---------------------------------------------------------------- offers and funding


def test_an_offer_made_on_the_page_is_queued_for_the_ledger(app, client, market):
    portal_sign_in(client, market["financier"])
    path = f"/market/{market['first']}"
    expiry = (date.today() + timedelta(days=5)).isoformat()

    response = post_form(client, f"{path}/offer", path, advance="9600.00", expiry=expiry)

    assert response.status_code == 302 and response.location == path
    with app.app_context():
        offer = db.session.scalars(select(Offer).where(Offer.financing_request_id == market["first"])).one()
        assert (offer.financier_id, offer.advance_minor, offer.status) == (market["financier_id"], 960_000,
                                                                          OfferStatus.PENDING)
        assert offer.expiry.date().isoformat() == expiry
    assert outbox_functions(app) == [("makeOffer", market["financier_id"])]
    assert "Your offer is on its way to the ledger." in text(client.get(path))


def test_an_offer_below_the_asking_advance_is_refused_beside_its_field(app, client, market):
    portal_sign_in(client, market["financier"])
    path = f"/market/{market['first']}"

    response = post_form(client, f"{path}/offer", path, advance="9000.00",
                         expiry=(date.today() + timedelta(days=5)).isoformat())

    assert response.status_code == 400
    assert 'id="advance-errors"' in text(response) and "below the asking advance" in text(response)
    assert outbox_functions(app) == []


def test_funding_at_the_asking_terms_is_confirmed_then_queued(app, client, market):
    portal_sign_in(client, market["financier"])
    path = f"/market/{market['first']}/fund"

    confirmation = text(client.get(path))

    assert "CN¥9,500.00" in confirmation and "CN¥10,000.00" in confirmation and "CN¥500.00" in confirmation
    assert outbox_functions(app) == []  # nothing before the confirmation
    response = post_form(client, path, path)
    assert response.status_code == 302
    assert outbox_functions(app) == [("fundRequest", market["financier_id"])]
    request_page = text(client.get(response.location))
    assert "it closes the request once the ledger has it" in request_page
    assert f'href="{path}"' not in request_page and 'action="/market/' not in request_page  # no more forms


def test_the_own_offer_shows_on_the_request_page_and_is_withdrawn(app, client, market):
    with app.app_context():
        db.session.get(Offer, market["own_offer"]).status = OfferStatus.OPEN
        db.session.commit()
    portal_sign_in(client, market["financier"])

    assert "CN¥48,500.00" in text(client.get(f"/market/{market['second']}"))
    offers = text(client.get("/offers"))
    assert market["second_number"] in offers and f'action="/offers/{market["own_offer"]}/withdraw"' in offers

    response = post_form(client, f"/offers/{market['own_offer']}/withdraw", "/offers")

    assert response.status_code == 302
    assert outbox_functions(app) == [("withdrawOffer", market["financier_id"])]
    assert "Withdrawal on its way" in text(client.get("/offers"))


def test_a_stranger_cannot_withdraw_the_offer(app, client, market):
    with app.app_context():
        db.session.get(Offer, market["own_offer"]).status = OfferStatus.OPEN
        stranger = user_with_password(factories.organisation(Role.FINANCIER)).email
    portal_sign_in(client, stranger)

    assert post_form(client, f"/offers/{market['own_offer']}/withdraw", "/offers").status_code == 404
    assert outbox_functions(app) == []


# ---------------------------------------------------------------- portfolio and overdue


def test_the_portfolio_shows_holdings_totals_and_yields(app, client, market):
    with app.app_context():
        financier = db.session.get(Organisation, market["financier_id"])
        supplier, buyer = db.session.get(Organisation, market["sails"]), db.session.get(Organisation, market["keel"])
        # 300.00 on 9,700.00 over 90 days: 12.54 % expected.
        held = factories.invoice(supplier, buyer, holder=financier, due_in_days=30)
        bought(held, financier, paid_minor=970_000, on=days_from_today(-60))
        # 100.00 on 4,900.00 repaid in full after 30 days: 24.83 % realised.
        done = factories.invoice(supplier, buyer, holder=financier, amount_minor=500_000, due_in_days=-5,
                                 issue_date=days_from_today(-90))
        bought(done, financier, paid_minor=490_000, on=days_from_today(-40))
        repaid(done, 500_000, on=days_from_today(-10), block=130)
        transferred = factories.invoice(supplier, buyer, holder=financier, due_in_days=45)
        db.session.commit()
        numbers = held.invoice_number, done.invoice_number, transferred.invoice_number
    portal_sign_in(client, market["financier"])

    page = text(client.get("/portfolio"))

    assert all(number in page for number in numbers)
    assert "12.54 %" in page and "24.83 %" in page and "CN¥9,700.00" in page
    assert "Not bought on the marketplace" in page
    assert "CN¥25,000.00" in page  # the face value of the three, in the totals
    repaid_only = text(client.get("/portfolio?status=repaid"))
    assert numbers[1] in repaid_only and numbers[0] not in repaid_only


def test_the_overdue_list_shows_days_late_and_the_ledgers_mark(app, client, market):
    with app.app_context():
        financier = db.session.get(Organisation, market["financier_id"])
        supplier, buyer = db.session.get(Organisation, market["sails"]), db.session.get(Organisation, market["keel"])
        late = factories.invoice(supplier, buyer, holder=financier, due_in_days=-12, amount_minor=300_000,
                                 issue_date=days_from_today(-60))
        late.delinquency = Delinquency.OVERDUE
        current = factories.invoice(supplier, buyer, holder=financier, due_in_days=12)
        db.session.commit()
        late_number, current_number = late.invoice_number, current.invoice_number
    portal_sign_in(client, market["financier"])

    page = text(client.get("/portfolio/overdue"))

    assert late_number in page and current_number not in page
    assert re.search(r'<td class="number">12</td>\s*<td class="number">CN¥3,000.00</td>\s*<td>Marked overdue</td>',
                     page)


# ---------------------------------------------------------------- API keys


def test_an_api_key_is_shown_once_and_stops_working_once_revoked(app, client, market):
    portal_sign_in(client, market["buyer"])  # every role manages its keys

    answer = text(post_form(client, "/account/api-keys", "/account/api-keys", name="ERP", scopes="read"))

    token = re.search(r"<code>(al_[a-z2-7]{8}_[A-Za-z0-9_-]{43})</code>", answer).group(1)
    assert client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = text(client.get("/account/api-keys"))
    assert "ERP" in listing and token not in listing
    with app.app_context():
        key_id = db.session.scalars(select(ApiKey.id)).one()

    assert post_form(client, f"/account/api-keys/{key_id}/revoke", "/account/api-keys").status_code == 302
    assert client.get("/api/v1/api-keys", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "Revoked on" in text(client.get("/account/api-keys"))


def test_an_api_key_without_a_name_or_scope_is_refused_beside_its_fields(app, client, market):
    portal_sign_in(client, market["financier"])

    response = post_form(client, "/account/api-keys", "/account/api-keys", name=" ")

    assert response.status_code == 400
    assert 'id="name-errors"' in text(response) and 'id="scopes-errors"' in text(response)
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).all() == []


# ---------------------------------------------------------------- webhooks


def test_a_webhook_endpoint_is_created_rotated_and_deleted(app, client, market):
    portal_sign_in(client, market["financier"])

    created = text(post_form(client, "/account/webhooks", "/account/webhooks", url="https://hooks.example.com/al",
                             event_types=["financing.funded", "invoice.repaid"]))

    with app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        endpoint_id, secret = endpoint.id, endpoint.secret
        assert endpoint.event_types == ["financing.funded", "invoice.repaid"]
    assert f"<code>{secret}</code>" in created
    path = f"/account/webhooks/{endpoint_id}"
    assert secret not in text(client.get(path)) and secret not in text(client.get("/account/webhooks"))

    rotated = text(post_form(client, f"{path}/rotate-secret", path))
    with app.app_context():
        new_secret = db.session.get(WebhookEndpoint, endpoint_id).secret
    assert new_secret != secret and f"<code>{new_secret}</code>" in rotated

    assert post_form(client, path, path, url="https://hooks.example.com/al", event_types="invoice.repaid"
                     ).status_code == 302  # "active" unticked: deactivated
    with app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).active is False

    assert post_form(client, f"{path}/delete", path).status_code == 302
    with app.app_context():
        assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_a_bad_webhook_url_is_refused_beside_its_field(app, client, market):
    portal_sign_in(client, market["financier"])

    response = post_form(client, "/account/webhooks", "/account/webhooks", url="http://hooks.example.com/al",
                         event_types="invoice.repaid")

    assert response.status_code == 400
    assert 'id="url-errors"' in text(response) and "must be an https URL" in text(response)


def test_a_dead_delivery_is_sent_again(app, client, market):
    with app.app_context():
        financier = db.session.get(Organisation, market["financier_id"])
        endpoint = WebhookEndpoint(organisation=financier, url="https://hooks.example.com/al",
                                   event_types=["invoice.repaid"], secret="00" * 32, active=True)
        delivery = WebhookDelivery(endpoint=endpoint, event_id="6f1c1a52-0000-4000-8000-000000000001",
                                   event_type="invoice.repaid", payload={}, occurred_at=datetime.now(UTC),
                                   status=WebhookDeliveryStatus.DEAD, attempts=8, last_status_code=500)
        db.session.add_all([endpoint, delivery])
        db.session.commit()
        endpoint_id, delivery_id = endpoint.id, delivery.id
    portal_sign_in(client, market["financier"])
    path = f"/account/webhooks/{endpoint_id}"
    assert "Failed: every attempt" in text(client.get(path))

    response = post_form(client, f"{path}/deliveries/{delivery_id}/redeliver", path)

    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(WebhookDelivery, delivery_id).status == WebhookDeliveryStatus.PENDING


def test_webhooks_are_not_for_suppliers(app, client, market):
    with app.app_context():
        supplier_user = user_with_password(db.session.get(Organisation, market["sails"])).email
    portal_sign_in(client, supplier_user)

    assert 'href="/account/webhooks"' not in text(client.get("/account/api-keys"))
    assert client.get("/account/webhooks").status_code == 403
