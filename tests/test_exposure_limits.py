"""Exposure limits (backend/services/exposure.py): what a financier has at stake with a buyer or
a supplier, setting and removing its limits, and the check that refuses an offer or a funding
that would go above one."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.extensions import db
from backend.models import ExposureLimit, InvoiceStatus, OfferStatus, Organisation, Role, Side
from backend.services import exposure, financing
from backend.services.errors import Duplicate, InvalidInput, NotFound, PermissionDenied
from backend.services.exposure import ExposureLimitExceeded
from tests import domain_factories as factories
from tests.domain_factories import assert_refused, last_audit_entry


@pytest.fixture
def book(db_session: Any) -> dict[str, Any]:
    """A financier holding one of buyer B's receivables (1,000.00, 250.00 of it repaid) and
    offering for another of B's (2,000.00), both from supplier S; besides, things that put
    nothing at stake: a repaid holding, a withdrawn offer, a holding in another currency and
    another financier's offer."""
    supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
    financier, rival = factories.organisation(Role.FINANCIER), factories.organisation(Role.FINANCIER)
    held = factories.invoice(supplier, buyer, amount_minor=1_000_00, holder=financier)
    held.repaid_minor = 250_00
    offered = factories.invoice(supplier, buyer, amount_minor=2_000_00)
    factories.offer(factories.financing_request(offered, asking_advance_minor=1_800_00), financier,
                    advance_minor=1_900_00, status=OfferStatus.OPEN)
    factories.invoice(supplier, buyer, amount_minor=5_000_00, holder=financier, status=InvoiceStatus.REPAID)
    withdrawn = factories.invoice(supplier, buyer, amount_minor=7_000_00)
    factories.offer(factories.financing_request(withdrawn, asking_advance_minor=6_000_00), financier,
                    advance_minor=6_500_00, status=OfferStatus.WITHDRAWN)
    factories.invoice(supplier, buyer, amount_minor=9_000_00, holder=financier, currency="EUR")
    factories.offer(factories.financing_request(factories.invoice(supplier, buyer, amount_minor=4_000_00),
                                                asking_advance_minor=3_000_00), rival, advance_minor=3_500_00)
    actor = factories.actor(financier)
    db.session.commit()  # a refused service call rolls back to here
    return {"supplier": supplier, "buyer": buyer, "financier": financier, "offered": offered,
            "actor": actor}


def test_what_is_at_stake_counts_unpaid_holdings_and_committed_offers(book: dict[str, Any]) -> None:
    financier = book["financier"].id
    assert exposure.at_stake_minor(financier, book["buyer"].id, Side.BUYER) == 750_00 + 2_000_00
    assert exposure.at_stake_minor(financier, book["supplier"].id, Side.SUPPLIER) == 750_00 + 2_000_00
    assert exposure.at_stake_minor(financier, book["supplier"].id, Side.BUYER) == 0


def test_a_limit_is_set_changed_listed_and_removed(book: dict[str, Any]) -> None:
    actor = book["actor"]
    limit = exposure.set_exposure_limit(actor, book["buyer"].id, Side.BUYER, limit="5000.00", currency="CNY")
    assert (limit.limit_minor, last_audit_entry().after) == \
        (5_000_00, {"counterparty_id": book["buyer"].id, "side": "buyer", "limit_minor": 5_000_00})

    changed = exposure.set_exposure_limit(actor, book["buyer"].id, Side.BUYER, limit="3000", currency="CNY")
    assert changed.id == limit.id and changed.limit_minor == 3_000_00
    assert last_audit_entry().before["limit_minor"] == 5_000_00

    [listed] = exposure.exposures(actor)
    assert (listed.limit.id, listed.at_stake_minor, listed.headroom_minor) == (limit.id, 2_750_00, 250_00)

    exposure.remove_exposure_limit(actor, book["buyer"].id, Side.BUYER)
    assert exposure.exposures(actor) == []
    assert last_audit_entry().after is None


@pytest.mark.parametrize(("limit", "currency", "field"), [
    ("-5", "CNY", "limit"), ("12.345", "CNY", "limit"), ("ten", "CNY", "limit"), ("100", "EUR", "currency"),
])
def test_a_bad_limit_is_refused_by_field(book: dict[str, Any], limit: str, currency: str, field: str) -> None:
    refusal = assert_refused(InvalidInput, exposure.set_exposure_limit, book["actor"], book["buyer"].id,
                             Side.BUYER, limit=limit, currency=currency)
    assert field in refusal.value.errors


def test_limits_are_on_other_known_organisations_and_for_financiers_only(book: dict[str, Any]) -> None:
    actor = book["actor"]
    refusal = assert_refused(InvalidInput, exposure.set_exposure_limit, actor, book["financier"].id, Side.BUYER,
                             limit="1", currency="CNY")
    assert "counterparty_id" in refusal.value.errors
    assert_refused(NotFound, exposure.set_exposure_limit, actor, 999_999, Side.BUYER, limit="1", currency="CNY")
    supplier = factories.actor(book["supplier"])
    db.session.commit()
    assert_refused(PermissionDenied, exposure.set_exposure_limit, supplier, book["buyer"].id, Side.BUYER,
                   limit="1", currency="CNY")
    assert_refused(PermissionDenied, exposure.exposures, supplier)


def test_a_limit_set_by_another_request_at_the_same_moment_is_refused_not_failed(
        book: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    exposure.set_exposure_limit(book["actor"], book["buyer"].id, Side.BUYER, limit="5000", currency="CNY")
    # The other request inserted its limit after this one looked for an existing one.
    monkeypatch.setattr(exposure, "_own_limit", lambda actor, counterparty_id, side: None)
    assert_refused(Duplicate, exposure.set_exposure_limit, book["actor"], book["buyer"].id, Side.BUYER,
                   limit="6000", currency="CNY")


def test_a_financier_cannot_remove_anothers_limit(book: dict[str, Any]) -> None:
    limit = exposure.set_exposure_limit(book["actor"], book["buyer"].id, Side.BUYER, limit="1", currency="CNY")
    other = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    assert_refused(NotFound, exposure.remove_exposure_limit, other, book["buyer"].id, Side.BUYER)
    assert db.session.get(ExposureLimit, limit.id) is not None


def new_receivable(book: dict[str, Any], amount_minor: int, *, supplier: Organisation | None = None) -> Any:
    return factories.invoice(supplier or book["supplier"], book["buyer"], amount_minor=amount_minor)


def test_a_receivable_within_the_limits_passes_up_to_the_limit_exactly(book: dict[str, Any]) -> None:
    exposure.set_exposure_limit(book["actor"], book["buyer"].id, Side.BUYER, limit="3750.00", currency="CNY")
    exposure.require_within_limits(book["financier"], new_receivable(book, 1_000_00))  # 2,750 + 1,000 = 3,750


def test_a_receivable_above_a_buyer_limit_is_refused_with_the_figures(book: dict[str, Any]) -> None:
    exposure.set_exposure_limit(book["actor"], book["buyer"].id, Side.BUYER, limit="3750.00", currency="CNY")
    refusal = assert_refused(ExposureLimitExceeded, exposure.require_within_limits, book["financier"],
                             new_receivable(book, 1_000_01))
    assert refusal.value.code == "exposure-limit-exceeded"
    assert refusal.value.errors["exposure"] == [
        f"3750.01 CNY would be at stake with the buyer {book['buyer'].name}, above the limit of 3750.00 CNY"
        " (2750.00 CNY already)"]


def test_a_supplier_limit_applies_to_that_suppliers_receivables_only(book: dict[str, Any]) -> None:
    exposure.set_exposure_limit(book["actor"], book["supplier"].id, Side.SUPPLIER, limit="3000", currency="CNY")
    assert_refused(ExposureLimitExceeded, exposure.require_within_limits, book["financier"],
                   new_receivable(book, 500_00))
    other_supplier = factories.organisation(Role.SUPPLIER)
    exposure.require_within_limits(book["financier"], new_receivable(book, 500_00, supplier=other_supplier))


def test_a_revised_offer_does_not_count_its_receivable_twice(book: dict[str, Any]) -> None:
    exposure.set_exposure_limit(book["actor"], book["buyer"].id, Side.BUYER, limit="2750.00", currency="CNY")
    exposure.require_within_limits(book["financier"], book["offered"])  # already 2,750 at stake, itself included


# ---------------------------------------------------------------- enforced by the financing services


def limited_market(db_session: Any, limit: str, side: Side = Side.BUYER) -> dict[str, Any]:
    """An open request on a confirmed 10,000.00 receivable, and a financier whose limit on its
    buyer (or supplier) is `limit`."""
    supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
    financier = factories.organisation(Role.FINANCIER)
    request = factories.financing_request(factories.invoice(supplier, buyer, amount_minor=10_000_00),
                                          asking_advance_minor=9_000_00)
    funder = factories.actor(financier)
    db.session.commit()
    counterparty = buyer if side is Side.BUYER else supplier
    exposure.set_exposure_limit(funder, counterparty.id, side, limit=limit, currency="CNY")
    return {"request": request, "funder": funder}


@pytest.mark.parametrize("side", [Side.BUYER, Side.SUPPLIER])
def test_an_offer_above_a_limit_is_refused_and_one_within_is_made(db_session: Any, side: Side) -> None:
    terms = {"advance": "9500.00", "currency": "CNY", "expiry": datetime.now(UTC) + timedelta(days=20)}
    refused = limited_market(db_session, "9999.99", side)
    assert_refused(ExposureLimitExceeded, financing.make_offer, refused["funder"], refused["request"].id, **terms)
    assert_refused(ExposureLimitExceeded, financing.fund_request, refused["funder"], refused["request"].id)

    allowed = limited_market(db_session, "10000.00", side)
    assert financing.make_offer(allowed["funder"], allowed["request"].id, **terms).advance_minor == 9_500_00


def test_a_funding_on_its_way_to_the_ledger_counts_against_the_limit(db_session: Any) -> None:
    """fundRequest changes the holder only once mined and indexed: until then the receivable is
    at stake all the same, or a second funding would slip under the limit beside the first."""
    market = limited_market(db_session, "15000.00")
    financing.fund_request(market["funder"], market["request"].id)
    invoice = market["request"].invoice
    second = factories.financing_request(factories.invoice(invoice.supplier, invoice.buyer, amount_minor=10_000_00),
                                         asking_advance_minor=9_000_00)
    db.session.commit()
    assert exposure.at_stake_minor(market["funder"].organisation.id, invoice.buyer_id, Side.BUYER) == 10_000_00
    assert_refused(ExposureLimitExceeded, financing.fund_request, market["funder"], second.id)
