"""Financing services: requests, offers, acceptance and outright funding queue exactly the
Financing call the ledger expects, with an audit entry, after the same checks the contract
makes; every refusal leaves the database as it was. The financier's market view and supplier
histories come from the database."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
)
from backend.security.api_keys import Scope
from backend.services import financing
from backend.services.actors import Actor
from backend.services.errors import (
    Duplicate,
    InvalidInput,
    InvalidState,
    NotFound,
    OrganisationInactive,
    PermissionDenied,
)
from backend.services.financing import FinanceableFilters
from tests import domain_factories as factories
from tests.domain_factories import assert_refused, audit_entries, outbox_rows

DEADLINE = timedelta(days=30)


@dataclass
class Market:
    supplier: Organisation
    buyer: Organisation
    financier: Organisation
    rival: Organisation  # a second financier
    invoice: Invoice  # confirmed, CNY 10,000.00, due in 60 days, held by the supplier
    seller: Actor
    payer: Actor
    funder: Actor
    other_funder: Actor


@pytest.fixture
def market(db_session: Any) -> Market:
    supplier = factories.organisation(Role.SUPPLIER)
    buyer = factories.organisation(Role.BUYER)
    financier = factories.organisation(Role.FINANCIER)
    rival = factories.organisation(Role.FINANCIER)
    invoice = factories.invoice(supplier, buyer)
    world = Market(supplier, buyer, financier, rival, invoice, factories.actor(supplier), factories.actor(buyer),
                   factories.actor(financier), factories.actor(rival))
    db.session.commit()  # a refused call rolls its transaction back: the world before it must stay
    return world


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def ledger_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def open_request(world: Market, **kwargs: Any) -> FinancingRequest:
    request = factories.financing_request(world.invoice, **kwargs)
    db.session.commit()
    return request


def open_offer(request: FinancingRequest, financier: Organisation, **kwargs: Any) -> Offer:
    offer = factories.offer(request, financier, **kwargs)
    db.session.commit()
    return offer


def ask(world: Market, by: Actor | None = None, **overrides: Any) -> FinancingRequest:
    """The seller (or `by`) asks for financing of the market's invoice."""
    arguments = {"asking_advance": "9000.00", "currency": "CNY", "deadline": in_days(30), "recourse": True}
    return financing.request_financing(by or world.seller, world.invoice.id, **{**arguments, **overrides})


# ---------------------------------------------------------------- request financing


def test_a_request_is_pending_with_its_ledger_call_and_audit_entry(market: Market) -> None:
    deadline = in_days(30)
    request = ask(market, deadline=deadline + timedelta(microseconds=500))

    assert request.status == FinancingRequestStatus.PENDING
    assert (request.seller_id, request.asking_advance_minor, request.recourse) == (market.supplier.id, 900_000, True)
    assert request.deadline == deadline  # to the second, as the ledger keeps it
    [row] = outbox_rows()
    assert (row.contract, row.function) == (ContractName.FINANCING, "requestFinancing")
    assert row.signer_id == market.supplier.id
    assert row.args == [market.invoice.receivable_id, 900_000, ledger_seconds(deadline), True]
    assert row.intent_key == f"financing_request:{request.id}:request"
    assert (row.invoice_id, row.subject_type, row.subject_id) == (market.invoice.id, "financing_request", request.id)
    [entry] = audit_entries()
    assert (entry.action, entry.subject_type, entry.subject_id) == ("financing.request", "financing_request",
                                                                     str(request.id))
    assert entry.actor_organisation_id == market.supplier.id
    assert entry.after["status"] == "pending" and entry.after["asking_advance_minor"] == 900_000


def test_the_asking_advance_may_be_the_whole_outstanding_amount(market: Market) -> None:
    market.invoice.repaid_minor = 250_000
    db.session.commit()
    assert ask(market, asking_advance="7500").asking_advance_minor == 750_000


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"asking_advance": "0"}, "asking_advance"),
        ({"asking_advance": "-5"}, "asking_advance"),
        ({"asking_advance": "10000.01"}, "asking_advance"),  # more than outstanding
        ({"asking_advance": "100.001"}, "asking_advance"),  # CNY has two decimals
        ({"asking_advance": "1,000"}, "asking_advance"),
        ({"currency": "EUR"}, "currency"),
        ({"deadline": in_days(-1)}, "deadline"),
        ({"deadline": datetime.combine(date.today() + timedelta(days=60), time.min, tzinfo=UTC)}, "deadline"),
        ({"deadline": datetime.now() + DEADLINE}, "deadline"),  # naive
    ],
)
def test_bad_request_terms_are_refused_by_field(market: Market, overrides: dict[str, Any], field: str) -> None:
    refusal = assert_refused(InvalidInput, ask, market, **overrides)
    assert field in refusal.value.errors


def test_every_bad_field_is_reported_at_once(market: Market) -> None:
    refusal = assert_refused(InvalidInput, ask, market, asking_advance="0.001", deadline=in_days(-1))
    assert set(refusal.value.errors) == {"asking_advance", "deadline"}


def test_the_advance_may_not_exceed_what_is_still_owed(market: Market) -> None:
    market.invoice.repaid_minor = 200_000
    db.session.commit()
    refusal = assert_refused(InvalidInput, ask, market, asking_advance="8000.01")
    assert "8000.00 CNY outstanding" in refusal.value.errors["asking_advance"][0]


@pytest.mark.parametrize(
    "change",
    [
        {"status": InvoiceStatus.REGISTERED},
        {"status": InvoiceStatus.REPAID},
        {"currency": "EUR"},  # not the settlement currency
        {"delinquency": Delinquency.OVERDUE},
    ],
)
def test_only_a_confirmed_current_receivable_in_the_settlement_currency_is_financed(
    market: Market, change: dict[str, Any]
) -> None:
    for column, value in change.items():
        setattr(market.invoice, column, value)
    db.session.commit()
    assert_refused(InvalidState, ask, market, currency=market.invoice.currency)


def test_only_the_holder_asks(market: Market) -> None:
    assert_refused(PermissionDenied, ask, market, by=market.payer)
    stranger = factories.actor(factories.organisation(Role.SUPPLIER))
    db.session.commit()
    assert_refused(NotFound, ask, market, by=stranger)
    # The supplier that sold its receivable sees it still, but no longer holds it.
    market.invoice.holder_id = market.financier.id
    db.session.commit()
    assert_refused(PermissionDenied, ask, market)


def test_an_unknown_invoice_is_not_found(market: Market) -> None:
    assert_refused(NotFound, financing.request_financing, market.seller, 10_000, asking_advance="1",
                   currency="CNY", deadline=in_days(30), recourse=False)


def test_inactive_unonboarded_and_read_only_callers_are_refused(market: Market) -> None:
    read_only = factories.actor(market.supplier, scopes=(Scope.READ,))
    db.session.commit()
    assert_refused(PermissionDenied, ask, market, by=read_only)

    market.supplier.participant_id = None
    db.session.commit()
    assert_refused(InvalidState, ask, market)

    market.supplier.suspended = True
    db.session.commit()
    assert_refused(OrganisationInactive, ask, market)


def test_one_live_request_at_a_time(market: Market) -> None:
    pending = open_request(market, status=FinancingRequestStatus.PENDING)
    assert_refused(InvalidState, ask, market)
    pending.status = FinancingRequestStatus.OPEN
    db.session.commit()
    assert_refused(InvalidState, ask, market)


def test_a_request_past_its_deadline_or_of_an_earlier_holder_is_replaced(market: Market) -> None:
    expired = open_request(market, deadline_in_days=-1)
    assert ask(market).status == FinancingRequestStatus.PENDING
    expired_id = expired.id

    other = factories.invoice(market.supplier, market.buyer)
    earlier_holder = factories.organisation(Role.SUPPLIER)
    factories.financing_request(other, status=FinancingRequestStatus.OPEN).seller_id = earlier_holder.id
    db.session.commit()
    replacement = financing.request_financing(market.seller, other.id, asking_advance="1", currency="CNY",
                                              deadline=in_days(10), recourse=False)
    assert replacement.status == FinancingRequestStatus.PENDING and replacement.id != expired_id


# ---------------------------------------------------------------- cancel


def test_the_seller_cancels_an_open_request(market: Market) -> None:
    request = open_request(market)
    assert financing.cancel_financing_request(market.seller, request.id).status == FinancingRequestStatus.OPEN

    [row] = outbox_rows()
    assert (row.function, row.args, row.signer_id) == ("cancelRequest", [market.invoice.receivable_id],
                                                       market.supplier.id)
    assert row.intent_key == f"financing_request:{request.id}:cancel:1"
    [entry] = audit_entries()
    assert (entry.action, entry.subject_id) == ("financing.cancel", str(request.id))
    assert entry.before["status"] == "open" and entry.after["pending_action"] == "cancelRequest"
    assert [action.function for action in financing.pending_actions(request)] == ["cancelRequest"]

    assert_refused(Duplicate, financing.cancel_financing_request, market.seller, request.id)


def test_cancelling_needs_the_seller_and_an_open_request(market: Market) -> None:
    request = open_request(market, status=FinancingRequestStatus.PENDING)
    assert_refused(InvalidState, financing.cancel_financing_request, market.seller, request.id)
    request.status = FinancingRequestStatus.OPEN
    db.session.commit()
    assert_refused(PermissionDenied, financing.cancel_financing_request, market.funder, request.id)
    assert_refused(PermissionDenied, financing.cancel_financing_request, market.payer, request.id)


def test_a_request_being_funded_cannot_be_cancelled(market: Market) -> None:
    request = open_request(market)
    financing.fund_request(market.funder, request.id)
    refusal = assert_refused(InvalidState, financing.cancel_financing_request, market.seller, request.id)
    assert "fundRequest" in refusal.value.detail


# ---------------------------------------------------------------- offers


def offer_terms(**overrides: Any) -> dict[str, Any]:
    return {"advance": "9500.00", "currency": "CNY", "expiry": in_days(20), **overrides}


def test_a_financier_offers_and_revises_its_offer(market: Market) -> None:
    request = open_request(market)
    expiry = in_days(20)
    offer = financing.make_offer(market.funder, request.id, **offer_terms(expiry=expiry))
    assert (offer.status, offer.advance_minor, offer.expiry) == (OfferStatus.PENDING, 950_000, expiry)

    offer.status = OfferStatus.OPEN  # the indexer read OfferMade
    db.session.commit()
    revised = financing.make_offer(market.funder, request.id, **offer_terms(advance="9600", expiry=in_days(25)))
    assert revised.id == offer.id and (revised.status, revised.advance_minor) == (OfferStatus.PENDING, 960_000)

    first, second = outbox_rows()
    assert (first.function, first.args, first.signer_id) == (
        "makeOffer", [market.invoice.receivable_id, 950_000, ledger_seconds(expiry)], market.financier.id)
    assert [first.intent_key, second.intent_key] == [f"offer:{offer.id}:make:1", f"offer:{offer.id}:make:2"]
    assert (second.subject_type, second.subject_id, second.args[1]) == ("offer", offer.id, 960_000)
    made, remade = audit_entries()
    assert (made.action, made.before, made.after["advance_minor"]) == ("offer.make", None, 950_000)
    assert (remade.before["status"], remade.before["advance_minor"], remade.after["status"]) == ("open", 950_000,
                                                                                                  "pending")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"advance": "8999.99"}, "advance"),  # below the asking 9,000.00
        ({"advance": "10000.01"}, "advance"),  # above the outstanding 10,000.00
        ({"advance": "9500.005"}, "advance"),
        ({"currency": "USD"}, "currency"),
        ({"expiry": in_days(-1)}, "expiry"),
        ({"expiry": in_days(31)}, "expiry"),  # after the request's deadline
    ],
)
def test_bad_offers_are_refused_by_field(market: Market, overrides: dict[str, Any], field: str) -> None:
    request = open_request(market)
    refusal = assert_refused(InvalidInput, financing.make_offer, market.funder, request.id, **offer_terms(**overrides))
    assert field in refusal.value.errors


def test_an_offer_may_run_until_the_deadline_and_ask_the_whole_outstanding(market: Market) -> None:
    request = open_request(market)
    offer = financing.make_offer(market.funder, request.id, **offer_terms(advance="10000", expiry=request.deadline))
    assert offer.expiry == request.deadline.replace(microsecond=0)


def test_offers_need_a_live_request_of_another_organisation(market: Market) -> None:
    pending = open_request(market, status=FinancingRequestStatus.PENDING)
    assert_refused(NotFound, financing.make_offer, market.funder, pending.id, **offer_terms())  # not on the market

    pending.deadline = datetime.now(UTC) - timedelta(seconds=5)
    pending.status = FinancingRequestStatus.OPEN
    db.session.commit()
    assert_refused(InvalidState, financing.make_offer, market.funder, pending.id, **offer_terms())

    # An organisation that is both supplier and financier may not finance its own receivable.
    market.supplier.roles = Role.SUPPLIER | Role.FINANCIER
    pending.deadline = in_days(30)
    db.session.commit()
    assert_refused(PermissionDenied, financing.make_offer, market.seller, pending.id, **offer_terms())
    assert_refused(PermissionDenied, financing.make_offer, market.payer, pending.id, **offer_terms())


def test_no_offer_on_a_request_being_closed(market: Market) -> None:
    request = open_request(market)
    financing.cancel_financing_request(market.seller, request.id)
    assert_refused(InvalidState, financing.make_offer, market.funder, request.id, **offer_terms())


def test_the_financier_withdraws_its_open_offer(market: Market) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier)
    assert financing.withdraw_offer(market.funder, offer.id).status == OfferStatus.OPEN

    [row] = outbox_rows()
    assert (row.function, row.args, row.intent_key) == ("withdrawOffer", [market.invoice.receivable_id],
                                                        f"offer:{offer.id}:withdraw:1")
    [entry] = audit_entries()
    assert (entry.action, entry.subject_type, entry.after["pending_action"]) == ("offer.withdraw", "offer",
                                                                                  "withdrawOffer")
    assert_refused(Duplicate, financing.withdraw_offer, market.funder, offer.id)
    reverted(outbox_rows()[0])
    financing.withdraw_offer(market.funder, offer.id)
    assert outbox_rows()[-1].intent_key == f"offer:{offer.id}:withdraw:2"


def test_withdrawing_needs_the_offers_financier_and_an_open_offer(market: Market) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier, status=OfferStatus.PENDING)
    assert_refused(InvalidState, financing.withdraw_offer, market.funder, offer.id)
    assert_refused(NotFound, financing.withdraw_offer, market.other_funder, offer.id)  # sees only its own
    assert_refused(PermissionDenied, financing.withdraw_offer, market.seller, offer.id)  # sees it, is no financier


# ---------------------------------------------------------------- accept and fund


def test_the_seller_accepts_the_offer_it_saw(market: Market) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier, advance_minor=950_000)
    assert financing.accept_offer(market.seller, offer.id, advance=Decimal("9500.00"), currency="CNY") is offer

    [row] = outbox_rows()
    assert (row.function, row.signer_id) == ("acceptOffer", market.supplier.id)
    assert row.args == [market.invoice.receivable_id, market.financier.chain_address, 950_000]
    assert (row.subject_type, row.subject_id, row.intent_key) == ("offer", offer.id, f"offer:{offer.id}:accept:1")
    [entry] = audit_entries()
    assert (entry.action, entry.subject_id, entry.after["pending_action"]) == ("offer.accept", str(offer.id),
                                                                               "acceptOffer")
    assert [action.function for action in financing.pending_actions(offer)] == ["acceptOffer"]
    assert [action.function for action in financing.pending_actions(request)] == ["acceptOffer"]  # it closes it
    assert_refused(Duplicate, financing.accept_offer, market.seller, offer.id, advance="9500", currency="CNY")


def test_an_offer_revised_since_the_seller_saw_it_is_not_accepted(market: Market) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier, advance_minor=950_000)
    refusal = assert_refused(InvalidState, financing.accept_offer, market.seller, offer.id, advance="9600",
                             currency="CNY")
    assert refusal.value.detail == "offer changed: the financier now offers 9500.00 CNY, not 9600.00 CNY"
    assert_refused(InvalidInput, financing.accept_offer, market.seller, offer.id, advance="9500.001", currency="CNY")


@pytest.mark.parametrize(
    "change",
    [
        lambda world, request, offer: setattr(offer, "status", OfferStatus.PENDING),
        lambda world, request, offer: setattr(offer, "status", OfferStatus.WITHDRAWN),
        lambda world, request, offer: setattr(offer, "expiry", datetime.now(UTC) - timedelta(seconds=5)),
        lambda world, request, offer: setattr(request, "deadline", datetime.now(UTC) - timedelta(seconds=5)),
        lambda world, request, offer: setattr(world.financier, "suspended", True),
        lambda world, request, offer: setattr(world.invoice, "status", InvoiceStatus.REPAID),
        lambda world, request, offer: db.session.add(
            Repayment(invoice=world.invoice, payer=world.buyer, amount_minor=1, status=RepaymentStatus.RECORDED)
        ),  # repaid in part since the request: stale
    ],
    ids=["pending", "withdrawn", "expired", "deadline-passed", "financier-suspended", "repaid", "stale"],
)
def test_acceptance_needs_a_settleable_open_offer(market: Market, change: Any) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier)
    change(market, request, offer)
    db.session.commit()
    assert_refused(InvalidState, financing.accept_offer, market.seller, offer.id, advance="9500", currency="CNY")


def test_only_the_seller_accepts(market: Market) -> None:
    request = open_request(market)
    offer = open_offer(request, market.financier)
    assert_refused(PermissionDenied, financing.accept_offer, market.funder, offer.id, advance="9500", currency="CNY")
    assert_refused(NotFound, financing.accept_offer, market.other_funder, offer.id, advance="9500", currency="CNY")


def test_a_financier_funds_a_request_outright(market: Market) -> None:
    request = open_request(market)
    assert financing.fund_request(market.funder, request.id) is request

    [row] = outbox_rows()
    assert (row.function, row.args, row.signer_id) == ("fundRequest", [market.invoice.receivable_id],
                                                       market.financier.id)
    assert row.intent_key == f"financing_request:{request.id}:fund:{market.financier.id}:1"
    [entry] = audit_entries()
    assert (entry.action, entry.subject_type, entry.actor_organisation_id) == ("financing.fund", "financing_request",
                                                                               market.financier.id)
    assert_refused(Duplicate, financing.fund_request, market.funder, request.id)
    # One settlement at a time: the rival would only see its transaction revert.
    assert_refused(InvalidState, financing.fund_request, market.other_funder, request.id)
    offer = open_offer(request, market.rival)
    assert_refused(InvalidState, financing.accept_offer, market.seller, offer.id, advance="9500", currency="CNY")


def reverted(row: ChainTransaction) -> None:
    """The worker sent `row` and the ledger refused it."""
    row.raw_tx, row.tx_hash, row.nonce = "0x00", f"0x{row.id:064x}", row.id
    row.status = ChainTransactionStatus.REVERTED
    db.session.commit()


def test_a_write_the_ledger_refused_may_be_queued_again(market: Market) -> None:
    request = open_request(market)
    financing.fund_request(market.funder, request.id)
    reverted(outbox_rows()[-1])
    financing.fund_request(market.other_funder, request.id)  # no longer blocked by the failed funding
    outbox_rows()[-1].status = ChainTransactionStatus.FAILED
    db.session.commit()
    financing.fund_request(market.funder, request.id)  # say, once it has the tokens
    assert [(row.signer_id, row.intent_key) for row in outbox_rows()] == [
        (market.financier.id, f"financing_request:{request.id}:fund:{market.financier.id}:1"),
        (market.rival.id, f"financing_request:{request.id}:fund:{market.rival.id}:1"),
        (market.financier.id, f"financing_request:{request.id}:fund:{market.financier.id}:2"),
    ]


def test_funding_needs_a_live_request_of_another_organisation(market: Market) -> None:
    request = open_request(market, deadline_in_days=-1)
    assert_refused(InvalidState, financing.fund_request, market.funder, request.id)
    market.supplier.roles = Role.SUPPLIER | Role.FINANCIER
    request.deadline = in_days(30)
    db.session.commit()
    assert_refused(PermissionDenied, financing.fund_request, market.seller, request.id)
    assert_refused(PermissionDenied, financing.fund_request, market.payer, request.id)
    market.supplier.suspended = True  # the seller: the ledger refuses to settle with it
    db.session.commit()
    assert_refused(InvalidState, financing.fund_request, market.funder, request.id)


# ---------------------------------------------------------------- reads


def test_offers_are_seen_by_their_financier_and_the_seller(market: Market) -> None:
    request = open_request(market)
    mine = open_offer(request, market.financier)
    theirs = open_offer(request, market.rival, status=OfferStatus.PENDING)

    def seen(actor: Actor, **filters: Any) -> list[Offer]:
        return sorted(db.session.scalars(financing.offers(actor, **filters)).all(), key=lambda offer: offer.id)

    assert seen(market.funder) == [mine]
    assert seen(market.seller) == [mine, theirs]
    assert seen(market.seller, status=OfferStatus.PENDING) == [theirs]
    assert seen(market.seller, financing_request_id=request.id + 1) == []
    assert seen(market.payer) == []
    assert financing.get_offer(market.seller, theirs.id) is theirs
    with pytest.raises(NotFound):
        financing.get_offer(market.funder, theirs.id)
    assert financing.get_financing_request(market.funder, request.id) is request


def test_the_market_lists_live_requests_others_may_fund(market: Market) -> None:
    live = open_request(market)
    later = factories.invoice(market.supplier, market.buyer, due_in_days=90, amount_minor=5_000_000)
    other_buyer = factories.organisation(Role.BUYER)
    dual = factories.organisation(Role.SUPPLIER | Role.FINANCIER)
    own = factories.invoice(dual, other_buyer)  # its supplier, a financier too, cannot fund its own
    expired = factories.invoice(market.supplier, market.buyer)
    pending = factories.invoice(market.supplier, market.buyer)
    later_request = factories.financing_request(later)
    factories.financing_request(expired, deadline_in_days=-1)
    factories.financing_request(pending, status=FinancingRequestStatus.PENDING)
    own_request = factories.financing_request(own)
    viewer = factories.actor(dual)
    db.session.commit()

    def listed(actor: Actor = market.funder, **filters: Any) -> list[FinancingRequest]:
        return sorted(db.session.scalars(financing.financeable(actor, FinanceableFilters(**filters))),
                      key=lambda request: request.id)

    assert listed() == [live, later_request, own_request]
    assert listed(viewer) == [live, later_request]
    assert listed(supplier_id=own.supplier_id) == [own_request]
    assert listed(buyer_id=other_buyer.id) == [own_request]
    assert listed(due_from=date.today() + timedelta(days=61)) == [later_request]
    assert listed(due_to=date.today() + timedelta(days=60)) == [live, own_request]
    assert listed(amount_min="20000") == [later_request]
    assert listed(amount_max="10000.00") == [live, own_request]
    with pytest.raises(InvalidInput) as refusal:
        listed(amount_min="1.001")
    assert "amount_min" in refusal.value.errors
    with pytest.raises(PermissionDenied):
        financing.financeable(market.seller)


def test_the_market_page_gives_tenors_and_supplier_histories_in_one_query(market: Market) -> None:
    request = open_request(market)
    factories.invoice(market.supplier, market.buyer, status=InvoiceStatus.REPAID, amount_minor=300_000)
    overdue = factories.invoice(market.supplier, market.buyer, amount_minor=200_000)
    overdue.delinquency = Delinquency.OVERDUE
    defaulted = factories.invoice(market.supplier, market.buyer, amount_minor=100_000)
    defaulted.delinquency = Delinquency.DEFAULTED
    factories.invoice(market.supplier, market.buyer, currency="EUR", amount_minor=50_000)  # not in the volume
    factories.invoice(market.supplier, market.buyer, status=InvoiceStatus.REGISTERED)  # not confirmed
    newcomer = factories.organisation(Role.SUPPLIER)
    first_request = factories.financing_request(factories.invoice(newcomer, market.buyer, due_in_days=45))
    db.session.commit()
    requests = db.session.scalars(financing.financeable(market.funder)).all()

    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        described = financing.describe_financeable(market.funder, requests)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1

    by_request = {entry.request.id: entry for entry in described}
    assert (by_request[request.id].invoice, by_request[request.id].tenor_days) == (market.invoice, 60)
    assert by_request[request.id].supplier_history == financing.SupplierHistory(
        market.supplier.id, confirmed=5, repaid=1, overdue=1, defaulted=1, volume_minor=1_600_000
    )
    assert by_request[first_request.id].tenor_days == 45
    assert by_request[first_request.id].supplier_history == financing.SupplierHistory(newcomer.id, 1, 0, 0, 0,
                                                                                      1_000_000)
    with pytest.raises(PermissionDenied):
        financing.describe_financeable(market.seller, requests)


# ---------------------------------------------------------------- the financier's own offers, and rates


def test_a_financier_that_also_sells_lists_only_the_offers_it_made(market: Market) -> None:
    made = open_offer(open_request(market), market.financier)
    # The financier sells a receivable it holds; the rival offers on it.
    held = factories.invoice(market.supplier, market.buyer, holder=market.financier)
    received = open_offer(factories.financing_request(held), market.rival)

    every = db.session.scalars(financing.offers(market.funder)).all()
    own = db.session.scalars(financing.offers(market.funder, financier_id=market.financier.id)).all()

    assert set(every) == {made, received} and own == [made]


def test_the_annualised_rate_is_simple_on_a_365_day_year() -> None:
    # 500 on 9,500 over 60 days: 500 / 9,500 × 365 / 60 × 100 = 32.0175…
    assert financing.annualised_rate_percent(50_000, 950_000, 60) == Decimal("32.02")
    assert financing.annualised_rate_percent(-10_000, 950_000, 60) == Decimal("-6.40")  # a loss
    assert financing.annualised_rate_percent(50_000, 950_000, 0) is None
    assert financing.annualised_rate_percent(50_000, 0, 60) is None
