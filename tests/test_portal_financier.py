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

from backend.app import create_app
from backend.extensions import db
from backend.models import (
    ApiKey,
    ChainTransaction,
    Delinquency,
    ExposureLimit,
    FinancingRequest,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Role,
    Side,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from backend.portal.financier_risk import FACTOR_LABELS, FLAG_KIND_LABELS, SCORE_RULE_TEXTS, flag_description
from backend.services import exposure, risk
from backend.services.fraud import Flag, FlagKind
from backend.services.risk import RiskProfile
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text
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
                "financier_id": financier.id, "keel": keel.id, "harbour": harbour.id, "sails": sails.id,
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


@pytest.mark.parametrize("path", ["/market", "/offers", "/portfolio", "/portfolio/overdue", "/account/exposure-limits"])
def test_the_financiers_pages_are_not_found_for_other_roles(client, market, path):
    portal_sign_in(client, market["buyer"])

    assert client.get(path).status_code == 404


def test_the_navigation_links_the_financiers_pages(client, market):
    portal_sign_in(client, market["financier"])

    page = text(client.get("/market"))

    for path in ("/market", "/offers", "/portfolio", "/portfolio/overdue", "/account/exposure-limits",
                 "/account/api-keys", "/account/webhooks"):
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


# ---------------------------------------------------------------- risk beside what may be funded


def profile_of(app: Flask, organisation_id: int, side: Side) -> RiskProfile:
    with app.app_context():
        return risk.risk_profile(factories.actor(factories.organisation(Role.FINANCIER)), organisation_id, side)


def set_limit(app: Flask, market: dict[str, int | str], counterparty_id: int, side: Side, limit: str) -> None:
    with app.app_context():
        financier = db.session.get(Organisation, market["financier_id"])
        exposure.set_exposure_limit(factories.actor(financier), counterparty_id, side, limit=limit, currency="CNY")


def test_the_market_shows_both_scores_from_one_profile_call_per_side(app, client, market, monkeypatch):
    calls = []
    profiles = risk.risk_profiles

    def counted(actor, organisation_ids, side):
        calls.append((side, set(organisation_ids)))
        return profiles(actor, organisation_ids, side)

    monkeypatch.setattr(risk, "risk_profiles", counted)
    with app.app_context():  # Keel disputed another supplier's invoice: it scores apart from Sails
        factories.invoice(factories.organisation(Role.SUPPLIER), db.session.get(Organisation, market["keel"]),
                          status=InvoiceStatus.DISPUTED)
        db.session.commit()
    supplier_score = profile_of(app, market["sails"], Side.SUPPLIER).score
    buyer_score = profile_of(app, market["keel"], Side.BUYER).score
    calls.clear()
    portal_sign_in(client, market["financier"])

    page = text(client.get("/market"))

    assert sorted(side for side, _ in calls) == [Side.BUYER, Side.SUPPLIER]
    assert all(len(ids) == 2 for _, ids in calls)  # both rows' organisations in one call
    row = re.search(rf'{market["first_number"]}</a></td>.*?</tr>', page, re.S).group(0)
    assert re.search(rf'<td class="number">{supplier_score}</td>\s*<td class="number">{buyer_score}</td>\s*<td>–</td>',
                     row)
    assert supplier_score != buyer_score


def test_a_receivable_with_fraud_flags_is_marked_and_its_flags_explained(app, client, market):
    with app.app_context():
        first = db.session.get(FinancingRequest, market["first"]).invoice
        twin = factories.invoice(first.supplier, db.session.get(Organisation, market["keel"]))
        factories.with_document(first, "ab" * 32)
        factories.with_document(twin, "ab" * 32)
        db.session.commit()
        twin_id = twin.id
    portal_sign_in(client, market["financier"])

    listing = text(client.get("/market"))
    request_page = text(client.get(f"/market/{market['first']}"))

    flagged_row = re.search(rf'{market["first_number"]}</a></td>.*?</tr>', listing, re.S).group(0)
    clean_row = re.search(rf'{market["second_number"]}</a></td>.*?</tr>', listing, re.S).group(0)
    assert "Flagged" in flagged_row and "Flagged" not in clean_row
    assert "Document anchored twice" in request_page
    assert f"The same document (SHA-256 {'ab' * 32}) is anchored under 2 invoices." in request_page
    assert f"/invoices/{twin_id}" not in request_page  # the other party's invoice is not named
    assert "No fraud signals on this receivable." in text(client.get(f"/market/{market['second']}"))


def test_the_request_page_explains_both_scores_factor_by_factor(app, client, market):
    supplier = profile_of(app, market["sails"], Side.SUPPLIER)
    portal_sign_in(client, market["financier"])

    page = text(client.get(f"/market/{market['first']}"))

    assert f"The supplier Sails Ltd, as a supplier: score {supplier.score} out of 100" in page
    assert "The buyer Keel Motors, as a buyer: score" in page
    # Sails: one matured receivable (10 days late, none on time), all of it owed by Keel.
    assert re.search(r"<th scope=\"row\">Repaid on time</th><td>0.0%</td><td class=\"number\">−25.0</td>"
                     r"<td>\(on-time rate − 0.5\) × 50; 0 before any receivable matured</td>", page)
    assert re.search(r"<th scope=\"row\">Days late</th><td>10 days on average</td><td class=\"number\">−5.0</td>",
                     page)
    assert re.search(r"<th scope=\"row\">Concentration on one counterparty</th><td>100.0%</td>"
                     r"<td class=\"number\">−10.0</td>", page)
    assert "Keel Motors, 100.0% of the face value" in page
    assert "+10 × min(days on Anchorline, 365) ÷ 365" in page


def test_the_request_page_shows_the_exposure_against_the_limits(app, client, market):
    set_limit(app, market, market["keel"], Side.BUYER, "15000")
    portal_sign_in(client, market["financier"])

    page = text(client.get(f"/market/{market['first']}"))

    assert re.search(r"Buyer: Keel Motors</th>\s*<td class=\"number\">CN¥15,000.00</td>\s*"
                     r"<td class=\"number\">CN¥0.00</td>\s*<td class=\"number\">CN¥15,000.00</td>\s*"
                     r"<td class=\"number\">CN¥10,000.00 \(within the limit\)</td>", page)
    assert "You have no exposure limit on this receivable" in text(client.get(f"/market/{market['second']}"))


def test_an_offer_above_a_limit_is_refused_on_the_page(app, client, market):
    set_limit(app, market, market["sails"], Side.SUPPLIER, "9999.99")
    portal_sign_in(client, market["financier"])
    path = f"/market/{market['first']}"

    response = post_form(client, f"{path}/offer", path, advance="9600.00",
                         expiry=(date.today() + timedelta(days=5)).isoformat())

    assert response.status_code == 400
    assert "this would take you above your exposure limit" in text(response)
    assert ("10000.00 CNY would be at stake with the supplier Sails Ltd, above the limit of 9999.99 CNY"
            in text(response))
    assert 'value="9600.00"' in text(response)  # the form keeps what was typed
    assert outbox_functions(app) == []


def test_a_funding_above_a_limit_is_refused_on_the_confirmation(app, client, market):
    set_limit(app, market, market["keel"], Side.BUYER, "5000")
    portal_sign_in(client, market["financier"])
    path = f"/market/{market['first']}/fund"
    assert "(above the limit)" in text(client.get(path))

    response = post_form(client, path, path)

    assert response.status_code == 400
    assert "above the limit of 5000.00 CNY" in text(response)
    assert outbox_functions(app) == []


# ---------------------------------------------------------------- exposure limits


def test_limits_are_set_changed_listed_and_removed(app, client, market):
    set_limit(app, market, market["harbour"], Side.BUYER, "40000")  # the own offer: 50,000.00 at stake
    portal_sign_in(client, market["financier"])
    path = "/account/exposure-limits"
    assert "over by CN¥10,000.00" in text(client.get(path))  # a limit lowered below what is at stake

    set_response = client.post(path, data={"buyer-csrf_token": csrf_token(client, path), "side": "buyer",
                                           "buyer-counterparty_id": market["keel"], "buyer-limit": "20000"})
    changed = client.post(path, data={"buyer-csrf_token": csrf_token(client, path), "side": "buyer",
                                      "buyer-counterparty_id": market["keel"], "buyer-limit": "12000.50"})

    assert set_response.status_code == 302 and changed.status_code == 302
    with app.app_context():
        assert [(row.counterparty_id, row.side, row.limit_minor) for row in db.session.scalars(
            select(ExposureLimit).where(ExposureLimit.counterparty_id == market["keel"]))] \
            == [(market["keel"], Side.BUYER, 1_200_050)]
    page = text(client.get(path))
    assert "Your limit on Keel Motors is saved." in page
    assert re.search(r"<td>Keel Motors</td>\s*<td class=\"number\">CN¥12,000.50</td>\s*"
                     r"<td class=\"number\">CN¥0.00</td>\s*<td class=\"number\">CN¥12,000.50</td>", page)

    removed = post_form(client, f"{path}/buyer/{market['keel']}/remove", path)

    assert removed.status_code == 302
    assert "Keel Motors" not in text(client.get(path)).split("<section")[0]
    assert post_form(client, f"{path}/buyer/{market['keel']}/remove", path).status_code == 404


def test_a_bad_limit_is_refused_beside_its_field(app, client, market):
    portal_sign_in(client, market["financier"])
    path = "/account/exposure-limits"
    page = text(client.get(path))
    supplier_select = re.search(r'<select[^>]*id="supplier-counterparty_id".*?</select>', page, re.S).group(0)
    assert "Sails Ltd" in supplier_select and "Keel Motors" not in supplier_select  # the suppliers only
    token = csrf_token(client, path)
    bad_forms = [
        ("buyer", {"counterparty_id": ""}, "counterparty_id"),
        ("buyer", {"counterparty_id": "999999"}, "counterparty_id"),
        ("supplier", {}, "counterparty_id"),  # Keel is no supplier
        ("buyer", {"limit": "-5"}, "limit"),
        ("buyer", {"limit": "12.345"}, "limit"),
    ]

    for side, form, field_name in bad_forms:
        sent = {"counterparty_id": market["keel"], "limit": "100", **form}
        response = client.post(path, data={f"{side}-csrf_token": token, "side": side,
                                           **{f"{side}-{name}": value for name, value in sent.items()}})
        assert response.status_code == 400 and f'id="{side}-{field_name}-errors"' in text(response), form

    assert client.post(path, data={"csrf_token": token, "side": "lender"}).status_code == 400
    with app.app_context():
        assert db.session.scalars(select(ExposureLimit)).all() == []


def test_a_page_number_beyond_the_databases_integers_is_the_first_page(client, market):
    portal_sign_in(client, market["financier"])

    for path in ("/market", "/offers", "/portfolio", "/portfolio/overdue"):
        assert client.get(f"{path}?page={2**63}").status_code == 200, path


@pytest.fixture
def english_app(instance_dir) -> Flask:
    """An application for wording alone: no database is read."""
    return create_app({"DATABASE_URL": "sqlite://", "TESTING": True})


def test_every_score_rule_and_flag_kind_is_put_into_words(english_app):
    assert SCORE_RULE_TEXTS.keys() == FACTOR_LABELS.keys() == risk.SCORE_RULES.keys()
    evidence = {
        FlagKind.DUPLICATE_DOCUMENT: {"document_sha256": "ab" * 32, "invoices": 2},
        FlagKind.AMOUNT_OUTLIER: {"amount_minor": 5_000_000, "median_minor": 2_500.5, "earlier_invoices": 6,
                                  "currency": "CNY"},
        FlagKind.COUNT_SPIKE: {"date": "2026-11-02", "invoices": 25, "daily_average": 0.5},
        FlagKind.CIRCULAR_FLOW: {"days_apart": 3},
        FlagKind.SPLIT_RETURNED_TO_ORIGIN: {"tx_hash": "0x" + "12" * 32, "block_number": 7},
        FlagKind.FAST_CONFIRMATION: {"seconds": 4.2},
    }
    with english_app.test_request_context():
        described = {kind: flag_description(Flag(kind, (), (), "", found)) for kind, found in evidence.items()}
    assert set(described) == set(FlagKind) == set(FLAG_KIND_LABELS)
    assert described[FlagKind.AMOUNT_OUTLIER] == ("CN¥50,000.00 is 1,999.6 times the median, CN¥25.00, of the "
                                                  "supplier's 6 earlier invoices.")
    assert described[FlagKind.COUNT_SPIKE] == ("The supplier registered 25 invoices on Nov 2, 2026, against 0.5 a "
                                               "day over the 90 days before.")
