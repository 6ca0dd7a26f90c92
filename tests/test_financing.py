"""Financing: requests and offers, the delivery-versus-payment settlement, repayment to the
current holder, delinquency, recourse, and who may act when."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import (
    ANY_ROLE,
    BUYER,
    DAY,
    DEFAULT_ADMIN_ROLE,
    DELINQUENCY,
    FINANCIER,
    HOLDER,
    OPERATOR_ROLE,
    REQUEST_STATUS,
    STATUS,
    SUPPLIER,
    ZERO_ADDRESS,
    deploy,
    emitted,
    reverts,
)

pytestmark = pytest.mark.usefixtures("quick_gas_estimates")


@pytest.fixture
def ledger(reused_ledger):
    """One Ledger for the module, rolled back after each test."""
    return reused_ledger


AMOUNT = 1_000_000  # face amount of every receivable here
ASKING = 900_000
OFFER, RIVAL_OFFER = 950_000, 920_000
OFFER_STATUS = {"None": 0, "Open": 1, "Withdrawn": 2}


@dataclass(frozen=True)
class Market:
    """Receivables every test of the module starts from (all confirmed, of the buyer, held by
    the supplier, face AMOUNT)."""

    plain: int  # no request
    listed: int  # an open request: ASKING, until `deadline`, without recourse
    offered: int  # the same request, with offers from the financier (OFFER) and its rival (RIVAL_OFFER)
    deadline: int
    expiry: int  # of both offers
    due: int  # of all three


@pytest.fixture(scope="module")
def market(module_ledger, module_actors) -> Market:
    ledger, actors = module_ledger, module_actors
    due = ledger.now() + 90 * DAY
    plain, listed, offered = (ledger.confirmed(actors.supplier, actors.buyer, due_date=due) for _ in range(3))
    deadline, expiry = ledger.now() + 30 * DAY, ledger.now() + 20 * DAY
    for receivable in (listed, offered):
        ledger.send(actors.supplier, ledger.financing.functions.requestFinancing(receivable, ASKING, deadline, False))
    for financier, advance in ((actors.financier, OFFER), (actors.rival_financier, RIVAL_OFFER)):
        ledger.send(financier, ledger.financing.functions.makeOffer(offered, advance, expiry))
    return Market(plain, listed, offered, deadline, expiry, due)


@pytest.fixture
def actors(module_actors, ledger):
    """The module's cast (`ledger` rolls each test back)."""
    return module_actors


@pytest.fixture
def financing(ledger):
    return ledger.financing


@pytest.fixture
def trader(ledger, actors):
    """A participant both supplier and financier, with a receivable of its own on offer."""
    trader = ledger.participant(SUPPLIER | FINANCIER)
    ledger.mint(trader, 10_000_000)
    receivable = ledger.confirmed(trader, actors.buyer)
    ledger.request(trader, receivable, ASKING)
    return trader, receivable


def lower(account) -> str:
    return account.address.lower()


def offer_of(ledger, receivable, financier) -> tuple[dict, bool]:
    offer, lapsed = ledger.financing.functions.getOffer(receivable, financier.address).call()
    return dict(zip(("advance", "expiry", "round", "status"), offer)), lapsed


def request_status(ledger, receivable) -> str:
    return next(name for name, value in REQUEST_STATUS.items() if value == ledger.get_request(receivable)["status"])


def balances(ledger, *accounts) -> list[int]:
    return [ledger.balance(account) for account in accounts]


def accept(ledger, seller, receivable, financier):
    return ledger.accept_offer(seller, receivable, financier)


def fund(ledger, financier, receivable):
    return ledger.send(financier, ledger.financing.functions.fundRequest(receivable))


def repay(ledger, buyer, receivable, amount):
    return ledger.send(buyer, ledger.financing.functions.repay(receivable, amount))


# ---------------------------------------------------------------------- requests


def test_request_opens_round_one(ledger, financing, actors, market):
    deadline = ledger.now() + 10 * DAY
    receipt = ledger.send(actors.supplier, financing.functions.requestFinancing(market.plain, 800_000, deadline, True))

    assert emitted(receipt, financing.events.FinancingRequested) == [
        {"id": market.plain, "seller": actors.supplier.address, "round": 1, "askingAdvance": 800_000, "deadline": deadline, "recourse": True}
    ]
    seller_id = ledger.participants.functions.participantOf(actors.supplier.address).call()[0]
    assert ledger.get_request(market.plain) == {
        "seller_id": seller_id, "asking_advance": 800_000, "outstanding": AMOUNT, "deadline": deadline,
        "status": REQUEST_STATUS["Open"], "recourse": True, "round": 1, "seller": actors.supplier.address,
    }


def _usd_receivable(ledger, actors, market):
    return ledger.confirmed(actors.supplier, actors.buyer, currency=b"USD")


REQUEST_REFUSALS = {
    # case: set-up returning (caller, receivable, asking, deadline), error, args given (caller, receivable, deadline)
    "not the holder": (
        lambda ledger, a, m: (a.sub_supplier, m.plain, ASKING, ledger.now() + DAY),
        "NotHolder", lambda c, r, d, m: (r, lower(c)),
    ),
    "not confirmed": (
        lambda ledger, a, m: (a.supplier, ledger.register(a.supplier, a.buyer), ASKING, ledger.now() + DAY),
        "NotConfirmed", lambda c, r, d, m: (r,),
    ),
    "another currency": (
        lambda ledger, a, m: (a.supplier, _usd_receivable(ledger, a, m), ASKING, ledger.now() + DAY),
        "CurrencyNotSettleable", lambda c, r, d, m: (b"USD",),
    ),
    "zero asking": (lambda ledger, a, m: (a.supplier, m.plain, 0, ledger.now() + DAY), "ZeroAmount", lambda c, r, d, m: ()),
    "asking above outstanding": (
        lambda ledger, a, m: (a.supplier, m.plain, AMOUNT + 1, ledger.now() + DAY),
        "AdvanceExceedsOutstanding", lambda c, r, d, m: (AMOUNT + 1, AMOUNT),
    ),
    "deadline now": (
        lambda ledger, a, m: (a.supplier, m.plain, ASKING, ledger.now()),
        "InvalidDeadline", lambda c, r, d, m: (d, m.due),
    ),
    "deadline on the due date": (
        lambda ledger, a, m: (a.supplier, m.plain, ASKING, m.due),
        "InvalidDeadline", lambda c, r, d, m: (d, m.due),
    ),
    "deadline after the due date": (
        lambda ledger, a, m: (a.supplier, m.plain, ASKING, m.due + DAY),
        "InvalidDeadline", lambda c, r, d, m: (d, m.due),
    ),
    "caller cannot hold receivables": (
        lambda ledger, a, m: (a.buyer, m.plain, ASKING, ledger.now() + DAY),
        "ParticipantNotActive", lambda c, r, d, m: (lower(c), HOLDER),
    ),
}


@pytest.mark.parametrize("case", list(REQUEST_REFUSALS))
def test_request_refusals(ledger, financing, actors, market, case):
    setup, error_name, expected_args = REQUEST_REFUSALS[case]
    caller, receivable, asking, deadline = setup(ledger, actors, market)
    with reverts(error_name) as error:
        ledger.send(caller, financing.functions.requestFinancing(receivable, asking, deadline, False))
    assert error["args"] == expected_args(caller, receivable, deadline, market)
    assert ledger.get_request(receivable)["status"] == REQUEST_STATUS["None"]


def test_the_asking_advance_is_capped_by_what_is_still_outstanding(ledger, financing, actors, market):
    repay(ledger, actors.buyer, market.plain, 300_000)
    with reverts("AdvanceExceedsOutstanding") as error:
        ledger.request(actors.supplier, market.plain, 700_001)
    assert error["args"] == (700_001, 700_000)

    ledger.request(actors.supplier, market.plain, 700_000)
    assert ledger.get_request(market.plain)["outstanding"] == 700_000


def test_one_open_request_at_a_time_up_to_and_including_its_deadline(ledger, financing, actors, market, travel_to):
    with reverts("RequestAlreadyOpen") as error:
        ledger.request(actors.supplier, market.listed, ASKING, deadline_in=DAY)
    assert error["args"] == (market.listed,)

    travel_to(market.deadline)
    with reverts("RequestAlreadyOpen"):
        ledger.send(actors.supplier, financing.functions.requestFinancing(market.listed, ASKING, market.due - 1, False))
    assert ledger.get_request(market.listed)["round"] == 1


def test_a_request_past_its_deadline_is_replaced_by_a_new_round(ledger, financing, actors, market, travel_to):
    travel_to(market.deadline + 1)
    receipt = ledger.send(actors.supplier, financing.functions.requestFinancing(market.offered, 800_000, market.due - DAY, False))

    assert emitted(receipt, financing.events.FinancingRequestExpired) == [{"id": market.offered, "round": 1}]
    assert [event["round"] for event in emitted(receipt, financing.events.FinancingRequested)] == [2]
    assert ledger.get_request(market.offered)["round"] == 2
    assert ledger.get_request(market.offered)["asking_advance"] == 800_000
    # Round-one offers do not carry over, although still recorded as made.
    offer, lapsed = offer_of(ledger, market.offered, actors.financier)
    assert (offer["round"], offer["status"], lapsed) == (1, OFFER_STATUS["Open"], True)
    with reverts("NoOpenOffer") as error:
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered, lower(actors.financier))


def test_an_offer_of_an_old_round_cannot_be_accepted_after_cancel_and_re_request(ledger, financing, actors, market):
    ledger.send(actors.supplier, financing.functions.cancelRequest(market.offered))
    receipt = ledger.send(actors.supplier, financing.functions.requestFinancing(market.offered, ASKING, market.deadline, False))
    assert emitted(receipt, financing.events.FinancingRequestExpired) == []
    assert ledger.get_request(market.offered)["round"] == 2

    with reverts("NoOpenOffer"):
        accept(ledger, actors.supplier, market.offered, actors.financier)
    with reverts("NoOpenOffer"):
        ledger.send(actors.financier, financing.functions.withdrawOffer(market.offered))
    assert offer_of(ledger, market.offered, actors.financier)[1] is True

    # A fresh offer of round two is good.
    ledger.offer(actors.financier, market.offered, OFFER)
    accept(ledger, actors.supplier, market.offered, actors.financier)
    assert ledger.receivable(market.offered)["holder"] == actors.financier.address


# ---------------------------------------------------------------------- offers


def test_make_offer_and_revise_it(ledger, financing, actors, market):
    receipt = ledger.send(actors.financier, financing.functions.makeOffer(market.listed, ASKING, market.deadline))
    assert emitted(receipt, financing.events.OfferMade) == [
        {"id": market.listed, "financier": actors.financier.address, "round": 1, "advance": ASKING, "expiry": market.deadline}
    ]
    assert offer_of(ledger, market.listed, actors.financier) == (
        {"advance": ASKING, "expiry": market.deadline, "round": 1, "status": OFFER_STATUS["Open"]}, False
    )

    ledger.send(actors.financier, financing.functions.makeOffer(market.listed, AMOUNT, market.expiry))
    assert offer_of(ledger, market.listed, actors.financier)[0] == {
        "advance": AMOUNT, "expiry": market.expiry, "round": 1, "status": OFFER_STATUS["Open"]
    }


OFFER_REFUSALS = {
    # case: set-up returning (receivable, advance, expiry), error, args given (receivable, advance, expiry, market)
    "no request": (lambda ledger, m: (m.plain, ASKING, m.expiry), "RequestNotOpen", lambda r, a, e, m: (r, REQUEST_STATUS["None"])),
    "below asking": (lambda ledger, m: (m.listed, ASKING - 1, m.expiry), "AdvanceBelowAsking", lambda r, a, e, m: (a, ASKING)),
    "above outstanding": (
        lambda ledger, m: (m.listed, AMOUNT + 1, m.expiry), "AdvanceExceedsOutstanding", lambda r, a, e, m: (a, AMOUNT)
    ),
    "expiry after the deadline": (
        lambda ledger, m: (m.listed, ASKING, m.deadline + 1), "InvalidExpiry", lambda r, a, e, m: (e, m.deadline)
    ),
    "expiry now": (lambda ledger, m: (m.listed, ASKING, ledger.now()), "InvalidExpiry", lambda r, a, e, m: (e, m.deadline)),
}


@pytest.mark.parametrize("case", list(OFFER_REFUSALS))
def test_offer_refusals(ledger, financing, actors, market, case):
    setup, error_name, expected_args = OFFER_REFUSALS[case]
    receivable, advance, expiry = setup(ledger, market)
    with reverts(error_name) as error:
        ledger.send(actors.financier, financing.functions.makeOffer(receivable, advance, expiry))
    assert error["args"] == expected_args(receivable, advance, expiry, market)
    assert offer_of(ledger, receivable, actors.financier)[0]["status"] == OFFER_STATUS["None"]


def test_only_financiers_offer(ledger, financing, actors, market):
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.sub_supplier, financing.functions.makeOffer(market.listed, ASKING, market.expiry))
    assert error["args"] == (lower(actors.sub_supplier), FINANCIER)


def test_no_offers_once_the_request_is_past_its_deadline_or_cancelled(ledger, financing, actors, market, travel_to):
    ledger.send(actors.supplier, financing.functions.cancelRequest(market.offered))
    with reverts("RequestNotOpen") as error:
        ledger.offer(actors.financier, market.offered, OFFER)
    assert error["args"] == (market.offered, REQUEST_STATUS["Cancelled"])

    travel_to(market.deadline + 1)
    with reverts("RequestDeadlinePassed") as error:
        ledger.send(actors.financier, financing.functions.makeOffer(market.listed, ASKING, market.deadline))
    assert error["args"] == (market.listed, market.deadline)


def test_a_seller_cannot_finance_itself(ledger, financing, trader):
    account, receivable = trader
    with reverts("SelfFinancing") as error:
        ledger.offer(account, receivable, ASKING)
    assert error["args"] == (lower(account),)
    with reverts("SelfFinancing"):
        fund(ledger, account, receivable)
    assert ledger.receivable(receivable)["holder"] == account.address
    assert request_status(ledger, receivable) == "Open"


def test_withdraw_offer(ledger, financing, actors, market):
    receipt = ledger.send(actors.financier, financing.functions.withdrawOffer(market.offered))
    assert emitted(receipt, financing.events.OfferWithdrawn) == [{"id": market.offered, "financier": actors.financier.address, "round": 1}]
    assert offer_of(ledger, market.offered, actors.financier) == (
        {"advance": OFFER, "expiry": market.expiry, "round": 1, "status": OFFER_STATUS["Withdrawn"]}, False
    )
    with reverts("NoOpenOffer"):
        accept(ledger, actors.supplier, market.offered, actors.financier)
    with reverts("NoOpenOffer") as error:
        ledger.send(actors.financier, financing.functions.withdrawOffer(market.offered))
    assert error["args"] == (market.offered, lower(actors.financier))

    # Offering again re-opens it.
    ledger.send(actors.financier, financing.functions.makeOffer(market.offered, OFFER, market.expiry))
    assert offer_of(ledger, market.offered, actors.financier)[0]["status"] == OFFER_STATUS["Open"]


def test_withdraw_needs_an_open_offer_of_ones_own(ledger, financing, actors, market):
    with reverts("NoOpenOffer"):
        ledger.send(actors.financier, financing.functions.withdrawOffer(market.listed))
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, financing.functions.withdrawOffer(market.offered))
    assert error["args"] == (lower(actors.supplier), FINANCIER)


# ---------------------------------------------------------------------- settlement


def test_accepting_an_offer_swaps_advance_and_receivable_in_one_transaction(ledger, financing, actors, market):
    supply = ledger.token.functions.totalSupply().call()
    seller_before, financier_before = balances(ledger, actors.supplier, actors.financier)

    receipt = accept(ledger, actors.supplier, market.offered, actors.financier)

    assert emitted(receipt, financing.events.FinancingSettled) == [
        {"id": market.offered, "seller": actors.supplier.address, "financier": actors.financier.address,
         "round": 1, "advance": OFFER, "viaOffer": True}
    ]
    # Both legs in the same transaction.
    assert emitted(receipt, ledger.token.events.Transfer) == [{"from": actors.financier.address, "to": actors.supplier.address, "value": OFFER}]
    assert emitted(receipt, ledger.registry.events.Transfer) == [
        {"from": actors.supplier.address, "to": actors.financier.address, "tokenId": market.offered}
    ]
    assert balances(ledger, actors.supplier, actors.financier) == [seller_before + OFFER, financier_before - OFFER]
    assert ledger.token.functions.totalSupply().call() == supply
    assert ledger.receivable(market.offered)["holder"] == actors.financier.address
    assert ledger.status(market.offered) == "Confirmed"
    assert request_status(ledger, market.offered) == "Funded"
    # The accepted offer is consumed; the rival's lapsed.
    assert offer_of(ledger, market.offered, actors.financier) == ({"advance": 0, "expiry": 0, "round": 0, "status": 0}, False)
    assert offer_of(ledger, market.offered, actors.rival_financier)[1] is True
    with reverts("RequestNotOpen") as error:
        accept(ledger, actors.financier, market.offered, actors.rival_financier)
    assert error["args"] == (market.offered, REQUEST_STATUS["Funded"])


ACCEPT_REFUSALS = {
    # case: set-up returning (caller, financier), error, args given (caller, financier, market)
    "caller is not the seller": (lambda ledger, a: (a.sub_supplier, a.financier), "NotSeller", lambda c, f, m: (m.offered, lower(c))),
    "caller cannot hold receivables": (lambda ledger, a: (a.buyer, a.financier), "ParticipantNotActive", lambda c, f, m: (lower(c), HOLDER)),
    "no offer from that financier": (
        lambda ledger, a: (a.supplier, ledger.participant(FINANCIER)), "NoOpenOffer", lambda c, f, m: (m.offered, lower(f))
    ),
    "counterparty is no financier": (
        lambda ledger, a: (a.supplier, a.sub_supplier), "ParticipantNotActive", lambda c, f, m: (lower(f), FINANCIER)
    ),
}


@pytest.mark.parametrize("case", list(ACCEPT_REFUSALS))
def test_accept_refusals(ledger, financing, actors, market, case):
    setup, error_name, expected_args = ACCEPT_REFUSALS[case]
    caller, financier = setup(ledger, actors)
    before = balances(ledger, actors.supplier, actors.financier)
    with reverts(error_name) as error:
        accept(ledger, caller, market.offered, financier)
    assert error["args"] == expected_args(caller, financier, market)
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address
    assert balances(ledger, actors.supplier, actors.financier) == before
    assert request_status(ledger, market.offered) == "Open"


def test_an_offer_is_good_up_to_and_including_its_expiry(ledger, actors, market, travel_to):
    travel_to(market.expiry)
    accept(ledger, actors.supplier, market.offered, actors.financier)
    assert ledger.receivable(market.offered)["holder"] == actors.financier.address


def test_an_expired_offer_cannot_be_accepted(ledger, actors, market, travel_to):
    travel_to(market.expiry + 2)  # views run a second earlier: the offer reads lapsed there too
    assert offer_of(ledger, market.offered, actors.financier)[1] is True
    with reverts("OfferExpired") as error:
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered, lower(actors.financier), market.expiry)
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address


def test_nothing_is_accepted_or_funded_after_the_deadline(ledger, actors, market, travel_to):
    travel_to(market.deadline + 1)
    with reverts("RequestDeadlinePassed") as error:
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered, market.deadline)
    with reverts("RequestDeadlinePassed"):
        fund(ledger, actors.rival_financier, market.listed)
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address


def test_settlement_is_atomic_when_the_financier_lacks_the_advance(ledger, financing, actors, market):
    poor = ledger.participant(FINANCIER)
    ledger.mint(poor, 100_000)
    ledger.offer(poor, market.offered, OFFER)  # offering does not check the balance

    with reverts("ERC20InsufficientBalance") as error:
        accept(ledger, actors.supplier, market.offered, poor)
    assert error["args"] == (lower(poor), 100_000, OFFER)
    with reverts("ERC20InsufficientBalance"):
        fund(ledger, poor, market.offered)

    # Neither leg happened.
    assert balances(ledger, poor, actors.supplier) == [100_000, 0]
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address
    assert request_status(ledger, market.offered) == "Open"
    offer, lapsed = offer_of(ledger, market.offered, poor)
    assert (offer["advance"], offer["status"], lapsed) == (OFFER, OFFER_STATUS["Open"], False)


def test_a_stale_request_cannot_settle_after_the_seller_transferred_the_receivable(ledger, financing, actors, market):
    registry = ledger.registry
    ledger.send(actors.supplier, registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, market.offered))
    before = balances(ledger, actors.supplier, actors.financier, actors.rival_financier)

    with reverts("NotHolder") as error:  # the registry's: the seller no longer holds it
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered, lower(actors.supplier))
    with reverts("NotHolder"):
        fund(ledger, actors.rival_financier, market.offered)

    assert balances(ledger, actors.supplier, actors.financier, actors.rival_financier) == before
    assert ledger.receivable(market.offered)["holder"] == actors.sub_supplier.address


def test_a_stale_request_cannot_settle_after_the_seller_split_the_receivable(ledger, financing, actors, market):
    ledger.send(actors.supplier, ledger.registry.functions.split(market.offered, [AMOUNT // 2] * 2, [actors.supplier.address] * 2))
    before = balances(ledger, actors.supplier, actors.financier)
    with reverts("NotConfirmed") as error:  # the registry's: the parent is retired
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered, STATUS["Split"])
    assert balances(ledger, actors.supplier, actors.financier) == before
    assert request_status(ledger, market.offered) == "Open"


def test_a_repayment_since_the_request_makes_it_stale(ledger, financing, actors, market):
    """Offers and the asking advance were priced on what the buyer owed when the request was
    made: once the buyer has paid part of it, neither an offer nor outright funding settles."""
    repay(ledger, actors.buyer, market.offered, 100_000)
    with reverts("StaleRequest") as error:
        accept(ledger, actors.supplier, market.offered, actors.financier)
    assert error["args"] == (market.offered,)
    with reverts("StaleRequest"):
        fund(ledger, actors.rival_financier, market.offered)
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address

    # The seller withdraws it and asks again on what is owed now; that settles.
    ledger.send(actors.supplier, financing.functions.cancelRequest(market.offered))
    ledger.request(actors.supplier, market.offered, 800_000, deadline_in=DAY)
    fund(ledger, actors.rival_financier, market.offered)
    assert ledger.receivable(market.offered)["holder"] == actors.rival_financier.address


def test_a_new_holder_replaces_the_stale_request_of_the_previous_one(ledger, financing, actors, market):
    """After the seller moved the receivable on, its open request can never settle: the new
    holder's request replaces it at once, and the old round's offers lapse."""
    ledger.send(actors.supplier, ledger.registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, market.listed))
    with reverts("NotSeller") as error:
        ledger.send(actors.sub_supplier, financing.functions.cancelRequest(market.listed))
    assert error["args"] == (market.listed, lower(actors.sub_supplier))

    receipt = ledger.send(actors.sub_supplier, financing.functions.requestFinancing(market.listed, ASKING, ledger.now() + DAY, False))
    assert emitted(receipt, financing.events.FinancingRequestCancelled) == [{"id": market.listed, "round": 1}]
    assert ledger.get_request(market.listed)["seller"] == actors.sub_supplier.address
    assert ledger.get_request(market.listed)["round"] == 2
    assert ledger.get_request(market.listed)["status"] == REQUEST_STATUS["Open"]


def test_fund_request_settles_at_the_asking_advance(ledger, financing, actors, market):
    before = balances(ledger, actors.supplier, actors.rival_financier)
    receipt = fund(ledger, actors.rival_financier, market.offered)

    assert emitted(receipt, financing.events.FinancingSettled) == [
        {"id": market.offered, "seller": actors.supplier.address, "financier": actors.rival_financier.address,
         "round": 1, "advance": ASKING, "viaOffer": False}
    ]
    assert balances(ledger, actors.supplier, actors.rival_financier) == [before[0] + ASKING, before[1] - ASKING]
    assert ledger.receivable(market.offered)["holder"] == actors.rival_financier.address
    assert request_status(ledger, market.offered) == "Funded"
    assert offer_of(ledger, market.offered, actors.financier)[1] is True  # lapsed


def test_fund_request_refusals(ledger, financing, actors, market):
    with reverts("ParticipantNotActive") as error:
        fund(ledger, actors.sub_supplier, market.listed)
    assert error["args"] == (lower(actors.sub_supplier), FINANCIER)
    with reverts("RequestNotOpen") as error:
        fund(ledger, actors.financier, market.plain)
    assert error["args"] == (market.plain, REQUEST_STATUS["None"])
    assert request_status(ledger, market.listed) == "Open"


# ---------------------------------------------------------------------- cancel and expire


def test_cancel_request(ledger, financing, actors, market):
    receipt = ledger.send(actors.supplier, financing.functions.cancelRequest(market.offered))
    assert emitted(receipt, financing.events.FinancingRequestCancelled) == [{"id": market.offered, "round": 1}]
    assert request_status(ledger, market.offered) == "Cancelled"
    assert offer_of(ledger, market.offered, actors.financier)[1] is True
    with reverts("RequestNotOpen") as error:
        fund(ledger, actors.financier, market.offered)
    assert error["args"] == (market.offered, REQUEST_STATUS["Cancelled"])
    with reverts("RequestNotOpen"):
        ledger.send(actors.supplier, financing.functions.cancelRequest(market.offered))


def test_cancel_request_refusals(ledger, financing, actors, market):
    with reverts("NotSeller") as error:
        ledger.send(actors.sub_supplier, financing.functions.cancelRequest(market.listed))
    assert error["args"] == (market.listed, lower(actors.sub_supplier))
    with reverts("RequestNotOpen"):
        ledger.send(actors.supplier, financing.functions.cancelRequest(market.plain))
    with reverts("ParticipantNotActive"):
        ledger.send(actors.buyer, financing.functions.cancelRequest(market.listed))
    assert request_status(ledger, market.listed) == "Open"


def test_expire_request_only_after_the_deadline_and_by_anyone(ledger, financing, actors, market, travel_to):
    stranger = ledger.new_account()  # not even a participant
    with reverts("RequestNotExpired") as error:
        ledger.send(stranger, financing.functions.expireRequest(market.offered))
    assert error["args"] == (market.offered, market.deadline)
    travel_to(market.deadline)
    with reverts("RequestNotExpired"):
        ledger.send(stranger, financing.functions.expireRequest(market.offered))

    travel_to(market.deadline + 1)
    receipt = ledger.send(stranger, financing.functions.expireRequest(market.offered))
    assert emitted(receipt, financing.events.FinancingRequestExpired) == [{"id": market.offered, "round": 1}]
    assert request_status(ledger, market.offered) == "Expired"
    with reverts("RequestNotOpen") as error:
        ledger.send(stranger, financing.functions.expireRequest(market.offered))
    assert error["args"] == (market.offered, REQUEST_STATUS["Expired"])

    ledger.send(actors.supplier, financing.functions.requestFinancing(market.offered, ASKING, market.due - DAY, False))
    assert ledger.get_request(market.offered)["round"] == 2


# ---------------------------------------------------------------------- repayment


def test_repayment_in_full_pays_the_holder_and_closes_the_receivable(ledger, financing, actors, market):
    receipt = repay(ledger, actors.buyer, market.plain, AMOUNT)

    assert emitted(receipt, ledger.registry.events.RepaymentRecorded) == [{"id": market.plain, "amount": AMOUNT, "repaidTotal": AMOUNT}]
    assert emitted(receipt, ledger.token.events.Transfer) == [{"from": actors.buyer.address, "to": actors.supplier.address, "value": AMOUNT}]
    assert ledger.balance(actors.supplier) == AMOUNT
    record = ledger.receivable(market.plain)
    assert (record["status"], record["repaid"]) == (STATUS["Repaid"], AMOUNT)

    # A repaid receivable is closed for good.
    with reverts("NotConfirmed") as error:
        ledger.send(actors.supplier, ledger.registry.functions.transferFrom(actors.supplier.address, actors.financier.address, market.plain))
    assert error["args"] == (market.plain, STATUS["Repaid"])
    with reverts("NotConfirmed"):
        ledger.request(actors.supplier, market.plain, ASKING)
    with reverts("NotConfirmed"):
        repay(ledger, actors.buyer, market.plain, 1)


def test_repayment_in_parts(ledger, financing, actors, market):
    first = repay(ledger, actors.buyer, market.plain, 300_000)
    assert emitted(first, ledger.registry.events.RepaymentRecorded) == [{"id": market.plain, "amount": 300_000, "repaidTotal": 300_000}]
    assert ledger.status(market.plain) == "Confirmed"
    assert ledger.receivable(market.plain)["repaid"] == 300_000

    with reverts("RepaymentExceedsOutstanding") as error:
        repay(ledger, actors.buyer, market.plain, 700_001)
    assert error["args"] == (market.plain, 700_000)

    second = repay(ledger, actors.buyer, market.plain, 700_000)
    assert emitted(second, ledger.registry.events.RepaymentRecorded) == [{"id": market.plain, "amount": 700_000, "repaidTotal": AMOUNT}]
    assert ledger.status(market.plain) == "Repaid"
    assert ledger.balance(actors.supplier) == AMOUNT


def test_repayment_goes_to_the_current_holder(ledger, financing, actors, market):
    repay(ledger, actors.buyer, market.plain, 40_000)  # before the financing: to the supplier
    ledger.request(actors.supplier, market.plain, ASKING, deadline_in=DAY)
    ledger.offer(actors.financier, market.plain, OFFER, expiry_in=DAY // 2)
    accept(ledger, actors.supplier, market.plain, actors.financier)
    financier_after_advance = ledger.balance(actors.financier)

    repay(ledger, actors.buyer, market.plain, AMOUNT - 40_000)  # after: to the financier

    assert ledger.balance(actors.supplier) == 40_000 + OFFER
    assert ledger.balance(actors.financier) == financier_after_advance + AMOUNT - 40_000
    assert ledger.status(market.plain) == "Repaid"


def test_repayment_refusals(ledger, financing, actors, market):
    other_buyer = ledger.participant(BUYER)
    ledger.mint(other_buyer, AMOUNT)
    with reverts("NotBuyer") as error:
        repay(ledger, other_buyer, market.plain, 1_000)
    assert error["args"] == (market.plain, lower(other_buyer))
    with reverts("ZeroAmount"):
        repay(ledger, actors.buyer, market.plain, 0)
    with reverts("RepaymentExceedsOutstanding") as error:
        repay(ledger, actors.buyer, market.plain, AMOUNT + 1)
    assert error["args"] == (market.plain, AMOUNT)
    with reverts("ParticipantNotActive") as error:
        repay(ledger, actors.supplier, market.plain, 1_000)
    assert error["args"] == (lower(actors.supplier), BUYER)

    registered = ledger.register(actors.supplier, actors.buyer)
    with reverts("NotConfirmed") as error:
        repay(ledger, actors.buyer, registered, 1_000)
    assert error["args"] == (registered, STATUS["Registered"])
    assert ledger.receivable(market.plain)["repaid"] == 0
    assert ledger.balance(other_buyer) == AMOUNT


def test_a_buyer_short_of_tokens_repays_nothing(ledger, actors):
    broke_buyer = ledger.participant(BUYER)
    receivable = ledger.confirmed(actors.supplier, broke_buyer)
    with reverts("ERC20InsufficientBalance") as error:
        repay(ledger, broke_buyer, receivable, 1_000)
    assert error["args"] == (lower(broke_buyer), 0, 1_000)
    assert ledger.receivable(receivable)["repaid"] == 0


# ---------------------------------------------------------------------- delinquency


def test_overdue_then_defaulted_on_schedule(ledger, financing, actors, market, travel_to):
    grace, default = financing.functions.gracePeriod().call(), financing.functions.defaultPeriod().call()
    overdue_at, defaultable_at = market.due + grace, market.due + grace + default
    repay(ledger, actors.buyer, market.plain, 250_000)

    travel_to(overdue_at)
    with reverts("NotYetOverdue") as error:
        ledger.send(actors.supplier, financing.functions.markOverdue(market.plain))
    assert error["args"] == (market.plain, overdue_at)

    travel_to(overdue_at + 1)
    receipt = ledger.send(actors.supplier, financing.functions.markOverdue(market.plain))
    assert emitted(receipt, financing.events.ReceivableOverdue) == [{"id": market.plain, "holder": actors.supplier.address, "outstanding": 750_000}]
    assert emitted(receipt, ledger.registry.events.DelinquencyChanged) == [{"id": market.plain, "delinquency": DELINQUENCY["Overdue"]}]
    assert ledger.receivable(market.plain)["delinquency"] == DELINQUENCY["Overdue"]
    with reverts("Delinquent") as error:
        ledger.send(actors.supplier, financing.functions.markOverdue(market.plain))
    assert error["args"] == (market.plain, DELINQUENCY["Overdue"])

    travel_to(defaultable_at)
    with reverts("NotYetDefaultable") as error:
        ledger.send(actors.supplier, financing.functions.markDefaulted(market.plain))
    assert error["args"] == (market.plain, defaultable_at)

    travel_to(defaultable_at + 1)
    receipt = ledger.send(actors.supplier, financing.functions.markDefaulted(market.plain))
    assert emitted(receipt, financing.events.ReceivableDefaulted) == [{"id": market.plain, "holder": actors.supplier.address, "outstanding": 750_000}]
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == []  # never financed
    assert ledger.receivable(market.plain)["delinquency"] == DELINQUENCY["Defaulted"]
    with reverts("Delinquent") as error:
        ledger.send(actors.supplier, financing.functions.markDefaulted(market.plain))
    assert error["args"] == (market.plain, DELINQUENCY["Defaulted"])

    # Still the buyer's debt: a late repayment closes it.
    repay(ledger, actors.buyer, market.plain, 750_000)
    assert ledger.status(market.plain) == "Repaid"


def test_default_needs_overdue_first(ledger, financing, actors, market, travel_to):
    travel_to(market.due + financing.functions.gracePeriod().call() + financing.functions.defaultPeriod().call() + 1)
    with reverts("Delinquent") as error:
        ledger.send(actors.supplier, financing.functions.markDefaulted(market.plain))
    assert error["args"] == (market.plain, DELINQUENCY["None"])
    assert ledger.receivable(market.plain)["delinquency"] == DELINQUENCY["None"]


def test_only_the_holder_marks_delinquency(ledger, financing, actors, market, travel_to):
    repaid = ledger.confirmed(actors.supplier, actors.buyer, due_date=market.due)
    repay(ledger, actors.buyer, repaid, AMOUNT)
    travel_to(market.due + financing.functions.gracePeriod().call() + 1)
    for mark in (financing.functions.markOverdue, financing.functions.markDefaulted):
        with reverts("NotHolder") as error:
            ledger.send(actors.financier, mark(market.plain))
        assert error["args"] == (market.plain, lower(actors.financier))
        with reverts("ParticipantNotActive") as error:
            ledger.send(actors.buyer, mark(market.plain))
        assert error["args"] == (lower(actors.buyer), HOLDER)
        with reverts("NotConfirmed") as error:  # Financing's: a repaid receivable is not serviced
            ledger.send(actors.supplier, mark(repaid))
        assert error["args"] == (repaid,)
    assert ledger.receivable(market.plain)["delinquency"] == DELINQUENCY["None"]


def test_set_servicing_periods_is_for_the_admin_and_moves_the_schedule(ledger, financing, actors, market, travel_to):
    operator_only = ledger.new_account()
    ledger.send(ledger.operator, financing.functions.grantRole(OPERATOR_ROLE, operator_only.address))
    for account in (operator_only, actors.financier):
        with reverts("AccessControlUnauthorizedAccount") as error:
            ledger.send(account, financing.functions.setServicingPeriods(0, 0))
        assert error["args"] == (lower(account), DEFAULT_ADMIN_ROLE)

    receipt = ledger.send(ledger.operator, financing.functions.setServicingPeriods(DAY, 2 * DAY))
    assert emitted(receipt, financing.events.ServicingPeriodsChanged) == [{"gracePeriod": DAY, "defaultPeriod": 2 * DAY}]
    assert (financing.functions.gracePeriod().call(), financing.functions.defaultPeriod().call()) == (DAY, 2 * DAY)
    travel_to(market.due + DAY + 1)
    ledger.send(actors.supplier, financing.functions.markOverdue(market.plain))
    travel_to(market.due + 3 * DAY + 1)
    ledger.send(actors.supplier, financing.functions.markDefaulted(market.plain))
    assert ledger.receivable(market.plain)["delinquency"] == DELINQUENCY["Defaulted"]


# ---------------------------------------------------------------------- recourse


@pytest.fixture
def overdue_times(financing, market):
    grace, default = financing.functions.gracePeriod().call(), financing.functions.defaultPeriod().call()
    return market.due + grace + 1, market.due + grace + default + 1


def finance(ledger, actors, market, *, recourse: bool) -> int:
    """The plain receivable, financed by the financier at ASKING."""
    ledger.send(actors.supplier, ledger.financing.functions.requestFinancing(market.plain, ASKING, market.deadline, recourse))
    fund(ledger, actors.financier, market.plain)
    return market.plain


def default(ledger, holder, receivable, overdue_times, travel_to):
    """Mark `receivable` overdue and then defaulted (by its holder); the defaulting receipt."""
    overdue_at, defaultable_at = overdue_times
    travel_to(overdue_at)
    ledger.send(holder, ledger.financing.functions.markOverdue(receivable))
    travel_to(defaultable_at)
    return ledger.send(holder, ledger.financing.functions.markDefaulted(receivable))


@pytest.fixture
def recourse_default(ledger, actors, market, overdue_times, travel_to):
    """Financed with recourse, 200_000 repaid, then defaulted by the financier: the supplier
    owes the financier the 800_000 shortfall. The defaulting receipt."""
    receivable = finance(ledger, actors, market, recourse=True)
    repay(ledger, actors.buyer, receivable, 200_000)
    return default(ledger, actors.financier, receivable, overdue_times, travel_to)


def test_default_after_recourse_financing_records_the_sellers_liability(ledger, financing, actors, market, recourse_default):
    assert emitted(recourse_default, financing.events.RecourseLiabilityRecorded) == [
        {"id": market.plain, "seller": actors.supplier.address, "creditor": actors.financier.address, "amount": 800_000}
    ]
    assert financing.functions.recourseLiability(market.plain).call() == 800_000


def test_buyer_repayment_after_default_reduces_the_liability(ledger, financing, actors, market, recourse_default):
    financier_before = ledger.balance(actors.financier)
    receipt = repay(ledger, actors.buyer, market.plain, 300_000)
    assert emitted(receipt, financing.events.RecourseLiabilityReduced) == [{"id": market.plain, "liability": 500_000}]
    assert financing.functions.recourseLiability(market.plain).call() == 500_000
    assert ledger.balance(actors.financier) == financier_before + 300_000

    receipt = repay(ledger, actors.buyer, market.plain, 500_000)
    assert emitted(receipt, financing.events.RecourseLiabilityReduced) == [{"id": market.plain, "liability": 0}]
    assert financing.functions.recourseLiability(market.plain).call() == 0
    with reverts("NoRecourseLiability"):
        ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))


def test_settle_recourse_buys_the_receivable_back_atomically(ledger, financing, actors, market, recourse_default):
    ledger.mint(actors.supplier, 1_000_000)
    supplier_before, financier_before = balances(ledger, actors.supplier, actors.financier)

    receipt = ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))

    assert emitted(receipt, financing.events.RecourseSettled) == [
        {"id": market.plain, "seller": actors.supplier.address, "creditor": actors.financier.address, "amount": 800_000}
    ]
    assert emitted(receipt, ledger.registry.events.Transfer) == [
        {"from": actors.financier.address, "to": actors.supplier.address, "tokenId": market.plain}
    ]
    assert balances(ledger, actors.supplier, actors.financier) == [supplier_before - 800_000, financier_before + 800_000]
    assert ledger.receivable(market.plain)["holder"] == actors.supplier.address
    assert financing.functions.recourseLiability(market.plain).call() == 0
    with reverts("NoRecourseLiability"):
        ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))

    # The buyer's late payment now goes to the supplier, and no liability is reduced.
    receipt = repay(ledger, actors.buyer, market.plain, 100_000)
    assert ledger.balance(actors.supplier) == supplier_before - 800_000 + 100_000
    assert emitted(receipt, financing.events.RecourseLiabilityReduced) == []


def test_settle_recourse_refusals(ledger, financing, actors, market, recourse_default):
    with reverts("NoRecourseLiability") as error:  # only the liable seller settles
        ledger.send(actors.sub_supplier, financing.functions.settleRecourse(market.plain))
    assert error["args"] == (market.plain,)
    ledger.send(actors.supplier, ledger.token.functions.transfer(actors.sub_supplier.address, ASKING - 100_000))
    with reverts("ERC20InsufficientBalance") as error:  # the supplier spent most of its advance
        ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))
    assert error["args"] == (lower(actors.supplier), 100_000, 800_000)
    ledger.mint(actors.supplier, 1_000_000)
    ledger.suspend(actors.financier)
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))
    assert error["args"] == (lower(actors.financier), HOLDER)

    # Nothing moved.
    assert financing.functions.recourseLiability(market.plain).call() == 800_000
    assert ledger.receivable(market.plain)["holder"] == actors.financier.address
    assert ledger.balance(actors.supplier) == 1_100_000


def test_the_creditor_is_whoever_holds_the_receivable_at_default(ledger, financing, actors, market, overdue_times, travel_to):
    receivable = finance(ledger, actors, market, recourse=True)
    ledger.send(actors.financier, ledger.registry.functions.transferFrom(actors.financier.address, actors.rival_financier.address, receivable))
    receipt = default(ledger, actors.rival_financier, receivable, overdue_times, travel_to)
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == [
        {"id": receivable, "seller": actors.supplier.address, "creditor": actors.rival_financier.address, "amount": AMOUNT}
    ]


def test_no_liability_when_the_seller_itself_holds_it_at_default(ledger, financing, actors, market, overdue_times, travel_to):
    receivable = finance(ledger, actors, market, recourse=True)
    ledger.send(actors.financier, ledger.registry.functions.transferFrom(actors.financier.address, actors.supplier.address, receivable))
    receipt = default(ledger, actors.supplier, receivable, overdue_times, travel_to)
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == []
    assert financing.functions.recourseLiability(receivable).call() == 0


def test_without_recourse_a_default_leaves_no_liability(ledger, financing, actors, market, overdue_times, travel_to):
    receivable = finance(ledger, actors, market, recourse=False)
    receipt = default(ledger, actors.financier, receivable, overdue_times, travel_to)
    assert emitted(receipt, financing.events.ReceivableDefaulted)[0]["holder"] == actors.financier.address
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == []
    assert financing.functions.recourseLiability(receivable).call() == 0
    ledger.mint(actors.supplier, AMOUNT)
    with reverts("NoRecourseLiability"):
        ledger.send(actors.supplier, financing.functions.settleRecourse(receivable))


def test_recourse_survives_an_unsuccessful_resale_attempt(ledger, financing, actors, market, overdue_times, travel_to):
    receivable = finance(ledger, actors, market, recourse=True)
    ledger.send(actors.financier, financing.functions.requestFinancing(receivable, ASKING, ledger.now() + DAY, False))
    ledger.send(actors.financier, financing.functions.cancelRequest(receivable))  # nobody bought it

    receipt = default(ledger, actors.financier, receivable, overdue_times, travel_to)
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == [
        {"id": receivable, "seller": actors.supplier.address, "creditor": actors.financier.address, "amount": AMOUNT}
    ]


def test_a_resale_without_recourse_replaces_the_recourse_of_the_first_financing(
    ledger, financing, actors, market, overdue_times, travel_to
):
    """The last funded financing sets the recourse terms: the first financier was paid in full
    by the second, who bought without recourse, so nobody is liable at default."""
    receivable = finance(ledger, actors, market, recourse=True)
    ledger.send(actors.financier, financing.functions.requestFinancing(receivable, ASKING, ledger.now() + DAY, False))
    ledger.send(actors.rival_financier, financing.functions.fundRequest(receivable))

    receipt = default(ledger, actors.rival_financier, receivable, overdue_times, travel_to)
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == []
    assert financing.functions.recourseLiability(receivable).call() == 0


# ---------------------------------------------------------------------- suspension and pause


SUSPENDED = {
    # action: (who is suspended, its role mask in the error, set-up returning (caller, call))
    "supplier requests": ("supplier", HOLDER, lambda l, a, m: (a.supplier, l.financing.functions.requestFinancing(m.plain, ASKING, m.deadline, False))),
    "supplier cancels": ("supplier", HOLDER, lambda l, a, m: (a.supplier, l.financing.functions.cancelRequest(m.listed))),
    "supplier accepts": ("supplier", HOLDER, lambda l, a, m: (a.supplier, l.financing.functions.acceptOffer(m.offered, a.financier.address, OFFER))),
    "financier funds a suspended supplier": ("supplier", HOLDER, lambda l, a, m: (a.financier, l.financing.functions.fundRequest(m.offered))),
    "supplier marks overdue": ("supplier", HOLDER, lambda l, a, m: (a.supplier, l.financing.functions.markOverdue(m.plain))),
    "supplier marks defaulted": ("supplier", HOLDER, lambda l, a, m: (a.supplier, l.financing.functions.markDefaulted(m.plain))),
    "buyer repays a suspended supplier": ("supplier", ANY_ROLE, lambda l, a, m: (a.buyer, l.financing.functions.repay(m.plain, 1_000))),
    "financier offers": ("financier", FINANCIER, lambda l, a, m: (a.financier, l.financing.functions.makeOffer(m.listed, ASKING, m.expiry))),
    "financier withdraws": ("financier", FINANCIER, lambda l, a, m: (a.financier, l.financing.functions.withdrawOffer(m.offered))),
    "financier funds": ("financier", FINANCIER, lambda l, a, m: (a.financier, l.financing.functions.fundRequest(m.offered))),
    "supplier accepts a suspended financier": (
        "financier", FINANCIER, lambda l, a, m: (a.supplier, l.financing.functions.acceptOffer(m.offered, a.financier.address, OFFER))
    ),
    "buyer repays": ("buyer", BUYER, lambda l, a, m: (a.buyer, l.financing.functions.repay(m.plain, 1_000))),
}


@pytest.mark.parametrize("action", list(SUSPENDED))
def test_suspended_participants_can_do_nothing(ledger, actors, market, action):
    role, mask, setup = SUSPENDED[action]
    suspended = ledger.suspend(getattr(actors, role))
    caller, fn = setup(ledger, actors, market)
    before = [ledger.receivable(r) for r in (market.plain, market.listed, market.offered)]
    with reverts("ParticipantNotActive") as error:
        ledger.send(caller, fn)
    assert error["args"] == (lower(suspended), mask)
    assert [ledger.receivable(r) for r in (market.plain, market.listed, market.offered)] == before


PAUSED = {
    "requestFinancing": lambda l, a, m: (a.supplier, l.financing.functions.requestFinancing(m.plain, ASKING, m.deadline, False)),
    "cancelRequest": lambda l, a, m: (a.supplier, l.financing.functions.cancelRequest(m.listed)),
    "expireRequest": lambda l, a, m: (a.supplier, l.financing.functions.expireRequest(m.listed)),
    "makeOffer": lambda l, a, m: (a.financier, l.financing.functions.makeOffer(m.listed, ASKING, m.expiry)),
    "withdrawOffer": lambda l, a, m: (a.financier, l.financing.functions.withdrawOffer(m.offered)),
    "acceptOffer": lambda l, a, m: (a.supplier, l.financing.functions.acceptOffer(m.offered, a.financier.address, OFFER)),
    "fundRequest": lambda l, a, m: (a.rival_financier, l.financing.functions.fundRequest(m.offered)),
    "repay": lambda l, a, m: (a.buyer, l.financing.functions.repay(m.plain, 1_000)),
    "markOverdue": lambda l, a, m: (a.supplier, l.financing.functions.markOverdue(m.plain)),
    "markDefaulted": lambda l, a, m: (a.supplier, l.financing.functions.markDefaulted(m.plain)),
}


@pytest.mark.parametrize("action", list(PAUSED))
def test_paused_platform_stops_financing(ledger, actors, market, action):
    caller, fn = PAUSED[action](ledger, actors, market)
    before = [ledger.get_request(r) for r in (market.plain, market.listed, market.offered)]
    ledger.pause()
    with reverts("EnforcedPause"):
        ledger.send(caller, fn)
    assert [ledger.get_request(r) for r in (market.plain, market.listed, market.offered)] == before
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address


def test_paused_platform_stops_a_recourse_buy_back(ledger, financing, actors, market, recourse_default):
    ledger.mint(actors.supplier, AMOUNT)
    ledger.pause()
    with reverts("EnforcedPause"):
        ledger.send(actors.supplier, financing.functions.settleRecourse(market.plain))
    assert financing.functions.recourseLiability(market.plain).call() == 800_000


# ---------------------------------------------------------------------- construction


def test_constructor_wires_registry_token_and_periods(ledger):
    administration = (0, ledger.operator.address, ledger.operator.address)
    registry, token = ledger.registry.address, ledger.token.address
    with reverts("ZeroAddress"):
        deploy(ledger, "Financing", ZERO_ADDRESS, token, DAY, DAY, administration)
    with reverts("ZeroAddress"):
        deploy(ledger, "Financing", registry, ZERO_ADDRESS, DAY, DAY, administration)
    financing = deploy(ledger, "Financing", registry, token, 3 * DAY, 7 * DAY, administration)
    assert financing.functions.settlementCurrency().call() == b"CNY"
    assert (financing.functions.gracePeriod().call(), financing.functions.defaultPeriod().call()) == (3 * DAY, 7 * DAY)


def test_repayment_in_the_settlement_currency_only(ledger, financing, actors):
    """A receivable in another currency cannot be paid off with this deployment's tokens."""
    usd = ledger.confirmed(actors.supplier, actors.buyer, amount=1_000, currency=b"USD")
    with reverts("CurrencyMismatch") as error:
        repay(ledger, actors.buyer, usd, 1_000)
    assert error["args"] == (usd, b"USD")
    assert ledger.status(usd) == "Confirmed"


def test_accepting_an_offer_revised_since_the_seller_read_it_reverts(ledger, financing, actors, market):
    ledger.offer(actors.financier, market.offered, ASKING, expiry_in=DAY // 2)  # revised down
    with reverts("OfferChanged") as error:
        ledger.send(actors.supplier, financing.functions.acceptOffer(market.offered, actors.financier.address, OFFER))
    assert error["args"] == (market.offered, lower(actors.financier), ASKING)
    assert ledger.receivable(market.offered)["holder"] == actors.supplier.address


def test_a_recourse_buy_back_passes_the_liability_down_the_chain(ledger, financing, actors, market, overdue_times, travel_to):
    """Supplier -> financier with recourse, financier -> rival with recourse; at default the
    financier buys back from the rival and the supplier becomes liable to the financier."""
    receivable = finance(ledger, actors, market, recourse=True)
    ledger.send(actors.financier, financing.functions.requestFinancing(receivable, ASKING, ledger.now() + DAY, True))
    fund(ledger, actors.rival_financier, receivable)
    default(ledger, actors.rival_financier, receivable, overdue_times, travel_to)
    assert financing.functions.recourseLiability(receivable).call() == AMOUNT

    receipt = ledger.send(actors.financier, financing.functions.settleRecourse(receivable))
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == [
        {"id": receivable, "seller": actors.supplier.address, "creditor": actors.financier.address, "amount": AMOUNT}
    ]
    assert ledger.receivable(receivable)["holder"] == actors.financier.address
    assert ledger.get_request(receivable)["status"] == REQUEST_STATUS["Unwound"]

    ledger.mint(actors.supplier, AMOUNT)
    receipt = ledger.send(actors.supplier, financing.functions.settleRecourse(receivable))
    assert emitted(receipt, financing.events.RecourseLiabilityRecorded) == []  # nobody before the supplier
    assert ledger.receivable(receivable)["holder"] == actors.supplier.address
    assert financing.functions.recourseLiability(receivable).call() == 0
