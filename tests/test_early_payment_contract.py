"""Financing's early payment (issue 6 §3): the buyer offers to pay a confirmed receivable before
its due date at a discount that shrinks with the days left, the holder accepts, and the payment
and the receivable's closing happen in one transaction."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import BUYER, DAY, DELINQUENCY, HOLDER, STATUS, emitted, reverts

pytestmark = pytest.mark.usefixtures("quick_gas_estimates")

AMOUNT = 1_000_000  # CNY 10,000.00, face amount of every receivable here
RATE = 1_200  # 12 % a year
YEAR = 365 * DAY
# The worked example: 10,000.00 at 12 % with exactly 30 days to go.
# 1_000_000 * 1200 * 2_592_000 / (10_000 * 31_536_000) = 9_863.01..., rounded down.
DISCOUNT_30_DAYS = 9_863
NO_OFFER = (0, 0)


@pytest.fixture
def ledger(reused_ledger):
    """One Ledger for the module, rolled back after each test."""
    return reused_ledger


@pytest.fixture
def actors(module_actors, ledger):
    """The module's cast (`ledger` rolls each test back)."""
    return module_actors


@dataclass(frozen=True)
class Book:
    """Receivables every test starts from: confirmed, of the buyer, held by the supplier, face
    AMOUNT, due `due`."""

    plain: int  # no early-payment offer
    offered: int  # the buyer offers early payment at RATE until `expiry`
    due: int
    expiry: int


@pytest.fixture(scope="module")
def book(module_ledger, module_actors) -> Book:
    ledger, actors = module_ledger, module_actors
    due = ledger.now() + 90 * DAY
    plain, offered = (ledger.confirmed(actors.supplier, actors.buyer, due_date=due) for _ in range(2))
    expiry = due - 10 * DAY
    ledger.send(actors.buyer, ledger.financing.functions.offerEarlyPayment(offered, RATE, expiry))
    return Book(plain, offered, due, expiry)


def lower(account) -> str:
    return account.address.lower()


def offer_of(ledger, receivable) -> tuple[int, int]:
    """(annualRateBps, expiry) of the buyer's standing offer; (0, 0) for none."""
    return tuple(ledger.financing.functions.getEarlyPaymentOffer(receivable).call())


def offer(ledger, buyer, receivable, rate, expiry):
    return ledger.send(buyer, ledger.financing.functions.offerEarlyPayment(receivable, rate, expiry))


def withdraw(ledger, buyer, receivable):
    return ledger.send(buyer, ledger.financing.functions.withdrawEarlyPayment(receivable))


def accept(ledger, holder, receivable, max_discount):
    return ledger.send(holder, ledger.financing.functions.acceptEarlyPayment(receivable, max_discount))


def discount(outstanding: int, rate: int, seconds_to_due: int) -> int:
    """The contract's rule, restated: rounded down, in the holder's favour."""
    return outstanding * rate * seconds_to_due // (10_000 * YEAR)


def balances(ledger, *accounts) -> list[int]:
    return [ledger.balance(account) for account in accounts]


# ---------------------------------------------------------------------- offering and withdrawing


def test_the_buyer_offers_and_a_new_offer_replaces_the_last(ledger, actors, book):
    financing = ledger.financing
    expiry = book.due - DAY
    receipt = offer(ledger, actors.buyer, book.plain, 10_000, expiry)  # 100 % a year: the highest rate

    assert emitted(receipt, financing.events.EarlyPaymentOffered) == [
        {"id": book.plain, "buyer": actors.buyer.address, "annualRateBps": 10_000, "expiry": expiry}
    ]
    assert offer_of(ledger, book.plain) == (10_000, expiry)

    receipt = offer(ledger, actors.buyer, book.plain, 800, book.due)  # up to the due date itself
    assert emitted(receipt, financing.events.EarlyPaymentOffered) == [
        {"id": book.plain, "buyer": actors.buyer.address, "annualRateBps": 800, "expiry": book.due}
    ]
    assert offer_of(ledger, book.plain) == (800, book.due)


def _usd_receivable(ledger, actors, book):
    return ledger.confirmed(actors.supplier, actors.buyer, currency=b"USD", due_date=book.due)


def _repaid_receivable(ledger, actors, book):
    ledger.send(actors.buyer, ledger.financing.functions.repay(book.plain, AMOUNT))
    return book.plain


OFFER_REFUSALS = {
    # case: (caller, receivable, rate, expiry) from (ledger, actors, book), error, its args from (caller, receivable, rate, expiry, book)
    "another buyer": (
        lambda l, a, b: (l.participant(BUYER), b.plain, RATE, b.expiry), "NotBuyer", lambda c, r, rate, e, b: (r, lower(c))
    ),
    "not a buyer at all": (
        lambda l, a, b: (a.supplier, b.plain, RATE, b.expiry), "ParticipantNotActive", lambda c, r, rate, e, b: (lower(c), BUYER)
    ),
    "rate zero": (lambda l, a, b: (a.buyer, b.plain, 0, b.expiry), "InvalidDiscountRate", lambda c, r, rate, e, b: (0,)),
    "rate above 100 % a year": (
        lambda l, a, b: (a.buyer, b.plain, 10_001, b.expiry), "InvalidDiscountRate", lambda c, r, rate, e, b: (10_001,)
    ),
    "expiry not in the future": (
        lambda l, a, b: (a.buyer, b.plain, RATE, l.now()), "InvalidExpiry", lambda c, r, rate, e, b: (e, b.due)
    ),
    "expiry after the due date": (
        lambda l, a, b: (a.buyer, b.plain, RATE, b.due + 1), "InvalidExpiry", lambda c, r, rate, e, b: (e, b.due)
    ),
    "not confirmed": (
        lambda l, a, b: (a.buyer, l.register(a.supplier, a.buyer), RATE, b.expiry), "NotConfirmed", lambda c, r, rate, e, b: (r,)
    ),
    "repaid": (
        lambda l, a, b: (a.buyer, _repaid_receivable(l, a, b), RATE, b.expiry), "NotConfirmed", lambda c, r, rate, e, b: (r,)
    ),
    "another currency": (
        lambda l, a, b: (a.buyer, _usd_receivable(l, a, b), RATE, b.expiry),
        "CurrencyNotSettleable", lambda c, r, rate, e, b: (b"USD",),
    ),
}


@pytest.mark.parametrize("case", list(OFFER_REFUSALS))
def test_offer_refusals(ledger, actors, book, case):
    setup, error_name, expected_args = OFFER_REFUSALS[case]
    caller, receivable, rate, expiry = setup(ledger, actors, book)
    with reverts(error_name) as error:
        offer(ledger, caller, receivable, rate, expiry)
    assert error["args"] == expected_args(caller, receivable, rate, expiry, book)
    assert offer_of(ledger, receivable) == NO_OFFER


def test_a_rate_that_would_discount_the_whole_amount_is_refused(ledger, actors):
    """More than a year before the due date even 100 % a year could take everything: the
    discount at the time of the offer must stay below what is owed (it only shrinks later)."""
    now = ledger.now()
    far = ledger.confirmed(actors.supplier, actors.buyer, due_date=now + 400 * DAY)
    with reverts("InvalidDiscountRate") as error:
        offer(ledger, actors.buyer, far, 10_000, now + DAY)
    assert error["args"] == (10_000,)
    offer(ledger, actors.buyer, far, 9_000, now + DAY)  # 90 % for 400 days: 98.6 % of it
    assert offer_of(ledger, far) == (9_000, now + DAY)


def test_no_offer_on_a_delinquent_receivable(ledger, actors, book, travel_to):
    financing = ledger.financing
    travel_to(book.due + financing.functions.gracePeriod().call() + 1)
    ledger.send(actors.supplier, financing.functions.markOverdue(book.offered))

    with reverts("Delinquent") as error:
        offer(ledger, actors.buyer, book.offered, RATE, ledger.now() + 2 * DAY)
    assert error["args"] == (book.offered, DELINQUENCY["Overdue"])
    with reverts("Delinquent") as error:
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (book.offered, DELINQUENCY["Overdue"])
    assert ledger.status(book.offered) == "Confirmed"


def test_the_buyer_withdraws_its_offer(ledger, actors, book):
    financing = ledger.financing
    other_buyer = ledger.participant(BUYER)
    with reverts("NotBuyer") as error:
        withdraw(ledger, other_buyer, book.offered)
    assert error["args"] == (book.offered, lower(other_buyer))
    assert offer_of(ledger, book.offered) == (RATE, book.expiry)

    receipt = withdraw(ledger, actors.buyer, book.offered)
    assert emitted(receipt, financing.events.EarlyPaymentWithdrawn) == [{"id": book.offered, "buyer": actors.buyer.address}]
    assert offer_of(ledger, book.offered) == NO_OFFER

    for receivable in (book.offered, book.plain):
        with reverts("NoEarlyPaymentOffer") as error:
            withdraw(ledger, actors.buyer, receivable)
        assert error["args"] == (receivable,)
    with reverts("NoEarlyPaymentOffer") as error:
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (book.offered,)


# ---------------------------------------------------------------------- accepting


def test_the_holder_accepts_the_worked_example(ledger, actors, book, travel_to):
    financing = ledger.financing
    supply = ledger.token.functions.totalSupply().call()
    buyer_before, holder_before = balances(ledger, actors.buyer, actors.supplier)
    travel_to(book.due - 30 * DAY)

    receipt = accept(ledger, actors.supplier, book.offered, DISCOUNT_30_DAYS)

    paid = AMOUNT - DISCOUNT_30_DAYS
    assert paid == 990_137
    assert emitted(receipt, financing.events.EarlyPaymentSettled) == [
        {"id": book.offered, "buyer": actors.buyer.address, "holder": actors.supplier.address,
         "paid": paid, "discount": DISCOUNT_30_DAYS}
    ]
    assert emitted(receipt, ledger.token.events.Transfer) == [
        {"from": actors.buyer.address, "to": actors.supplier.address, "value": paid}
    ]
    assert balances(ledger, actors.buyer, actors.supplier) == [buyer_before - paid, holder_before + paid]
    assert ledger.token.functions.totalSupply().call() == supply
    # The registry records the whole debt as paid: the holder took `paid` for it.
    assert emitted(receipt, ledger.registry.events.RepaymentRecorded) == [
        {"id": book.offered, "amount": AMOUNT, "repaidTotal": AMOUNT}
    ]
    record = ledger.receivable(book.offered)
    assert (record["status"], record["repaid"], record["holder"]) == (STATUS["Repaid"], AMOUNT, actors.supplier.address)
    assert offer_of(ledger, book.offered) == NO_OFFER

    # Closed for good: nothing more to pay or accept.
    with reverts("NotConfirmed"):
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    with reverts("NotConfirmed"):
        ledger.send(actors.buyer, financing.functions.repay(book.offered, 1))


def test_the_quoted_discount_guards_the_holder(ledger, actors, book, travel_to):
    travel_to(book.due - 30 * DAY)
    with reverts("DiscountAboveAccepted") as error:
        accept(ledger, actors.supplier, book.offered, DISCOUNT_30_DAYS - 1)
    assert error["args"] == (book.offered, DISCOUNT_30_DAYS, DISCOUNT_30_DAYS - 1)

    # The buyer raises its rate after the holder's quote: the quote refuses the dearer terms.
    offer(ledger, actors.buyer, book.offered, 2 * RATE, book.expiry)
    with reverts("DiscountAboveAccepted"):
        accept(ledger, actors.supplier, book.offered, DISCOUNT_30_DAYS)
    assert ledger.status(book.offered) == "Confirmed"
    assert ledger.receivable(book.offered)["repaid"] == 0


def test_a_quote_stays_good_as_the_discount_shrinks(ledger, actors, book, travel_to):
    """Quoted 30 days before the due date, accepted a day later: the smaller discount applies."""
    holder_before = ledger.balance(actors.supplier)
    travel_to(book.due - 29 * DAY)
    receipt = accept(ledger, actors.supplier, book.offered, DISCOUNT_30_DAYS)
    later = discount(AMOUNT, RATE, 29 * DAY)
    assert later < DISCOUNT_30_DAYS
    assert emitted(receipt, ledger.financing.events.EarlyPaymentSettled)[0]["discount"] == later
    assert ledger.balance(actors.supplier) == holder_before + AMOUNT - later


def test_an_offer_is_good_up_to_and_including_its_expiry(ledger, actors, book, travel_to):
    travel_to(book.expiry)
    receipt = accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert emitted(receipt, ledger.financing.events.EarlyPaymentSettled)[0]["discount"] == discount(AMOUNT, RATE, 10 * DAY)
    assert ledger.status(book.offered) == "Repaid"


def test_an_expired_offer_cannot_be_accepted(ledger, actors, book, travel_to):
    travel_to(book.expiry + 1)
    with reverts("EarlyPaymentExpired") as error:
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (book.offered, book.expiry)
    assert ledger.status(book.offered) == "Confirmed"
    assert offer_of(ledger, book.offered) == (RATE, book.expiry)  # the buyer may still withdraw it


def test_a_financier_holding_the_receivable_accepts(ledger, actors, book, travel_to):
    """The offer follows the receivable: after a financing, the financier is the holder paid."""
    ledger.request(actors.supplier, book.offered, 900_000)
    ledger.offer(actors.financier, book.offered, 950_000)
    ledger.accept_offer(actors.supplier, book.offered, actors.financier)
    supplier_before, financier_before = balances(ledger, actors.supplier, actors.financier)

    with reverts("NotHolder") as error:  # the supplier sold it
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (book.offered, lower(actors.supplier))

    travel_to(book.due - 30 * DAY)
    receipt = accept(ledger, actors.financier, book.offered, DISCOUNT_30_DAYS)
    assert emitted(receipt, ledger.financing.events.EarlyPaymentSettled) == [
        {"id": book.offered, "buyer": actors.buyer.address, "holder": actors.financier.address,
         "paid": AMOUNT - DISCOUNT_30_DAYS, "discount": DISCOUNT_30_DAYS}
    ]
    assert balances(ledger, actors.supplier, actors.financier) == [
        supplier_before, financier_before + AMOUNT - DISCOUNT_30_DAYS
    ]
    assert ledger.status(book.offered) == "Repaid"


def test_partial_repayments_before_shrink_what_is_discounted(ledger, actors, book, travel_to):
    financing = ledger.financing
    ledger.send(actors.buyer, financing.functions.repay(book.offered, 400_000))
    holder_before = ledger.balance(actors.supplier)
    travel_to(book.due - 30 * DAY)

    expected = discount(600_000, RATE, 30 * DAY)
    assert expected == 5_917  # 5_917.8...
    receipt = accept(ledger, actors.supplier, book.offered, expected)

    assert emitted(receipt, financing.events.EarlyPaymentSettled) == [{
        "id": book.offered, "buyer": actors.buyer.address, "holder": actors.supplier.address,
        "paid": 600_000 - expected, "discount": expected,
    }]
    assert emitted(receipt, ledger.registry.events.RepaymentRecorded) == [
        {"id": book.offered, "amount": 600_000, "repaidTotal": AMOUNT}
    ]
    assert ledger.balance(actors.supplier) == holder_before + 600_000 - expected
    assert ledger.status(book.offered) == "Repaid"


def test_accept_refusals(ledger, actors, book):
    with reverts("NotHolder") as error:
        accept(ledger, actors.sub_supplier, book.offered, AMOUNT)
    assert error["args"] == (book.offered, lower(actors.sub_supplier))
    with reverts("ParticipantNotActive") as error:  # a buyer cannot hold receivables
        accept(ledger, actors.buyer, book.offered, AMOUNT)
    assert error["args"] == (lower(actors.buyer), HOLDER)
    with reverts("NoEarlyPaymentOffer") as error:
        accept(ledger, actors.supplier, book.plain, AMOUNT)
    assert error["args"] == (book.plain,)
    assert ledger.receivable(book.offered)["repaid"] == 0


def test_an_offer_left_on_a_repaid_or_split_receivable_is_unusable_but_withdrawable(ledger, actors, book):
    financing = ledger.financing
    split = ledger.confirmed(actors.supplier, actors.buyer, due_date=book.due)
    for receivable in (book.plain, split):
        offer(ledger, actors.buyer, receivable, RATE, book.expiry)
    ledger.send(actors.buyer, financing.functions.repay(book.plain, AMOUNT))
    ledger.send(actors.supplier, ledger.registry.functions.split(split, [AMOUNT // 2] * 2, [actors.supplier.address] * 2))

    with reverts("NotConfirmed") as error:
        accept(ledger, actors.supplier, book.plain, AMOUNT)
    assert error["args"] == (book.plain,)
    with reverts("NotHolder") as error:  # a split receivable has no holder any more
        accept(ledger, actors.supplier, split, AMOUNT)
    assert error["args"] == (split, lower(actors.supplier))

    for receivable in (book.plain, split):
        withdraw(ledger, actors.buyer, receivable)
        assert offer_of(ledger, receivable) == NO_OFFER


def test_a_buyer_short_of_tokens_pays_nothing_and_the_receivable_stays_open(ledger, actors, book):
    broke_buyer = ledger.participant(BUYER)
    receivable = ledger.confirmed(actors.supplier, broke_buyer, due_date=book.due)
    offer(ledger, broke_buyer, receivable, RATE, book.expiry)
    with reverts("ERC20InsufficientBalance") as error:
        accept(ledger, actors.supplier, receivable, AMOUNT)
    assert error["args"][0] == lower(broke_buyer)
    record = ledger.receivable(receivable)
    assert (record["status"], record["repaid"]) == (STATUS["Confirmed"], 0)
    assert offer_of(ledger, receivable) == (RATE, book.expiry)


# ---------------------------------------------------------------------- suspension and pause


def test_suspended_participants_can_do_nothing(ledger, actors, book):
    financing = ledger.financing
    ledger.suspend(actors.buyer)
    for call in (
        financing.functions.offerEarlyPayment(book.plain, RATE, book.expiry),
        financing.functions.withdrawEarlyPayment(book.offered),
    ):
        with reverts("ParticipantNotActive") as error:
            ledger.send(actors.buyer, call)
        assert error["args"] == (lower(actors.buyer), BUYER)
    with reverts("ParticipantNotActive") as error:  # the buyer who would pay
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (lower(actors.buyer), BUYER)

    ledger.send(ledger.operator, financing.functions.reinstate(actors.buyer.address))
    ledger.suspend(actors.supplier)
    with reverts("ParticipantNotActive") as error:
        accept(ledger, actors.supplier, book.offered, AMOUNT)
    assert error["args"] == (lower(actors.supplier), HOLDER)
    assert ledger.status(book.offered) == "Confirmed"


def test_paused_platform_stops_early_payment(ledger, actors, book):
    financing = ledger.financing
    ledger.pause()
    for caller, call in (
        (actors.buyer, financing.functions.offerEarlyPayment(book.plain, RATE, book.expiry)),
        (actors.buyer, financing.functions.withdrawEarlyPayment(book.offered)),
        (actors.supplier, financing.functions.acceptEarlyPayment(book.offered, AMOUNT)),
    ):
        with reverts("EnforcedPause"):
            ledger.send(caller, call)
    assert offer_of(ledger, book.offered) == (RATE, book.expiry)
    assert offer_of(ledger, book.plain) == NO_OFFER
    assert ledger.status(book.offered) == "Confirmed"
