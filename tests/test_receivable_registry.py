"""ReceivableRegistry: registering invoices (one or in batches) under derived ids, the buyer's
confirmation or dispute, cancelling, moving confirmed receivables, splitting them, and the
servicer-only bookkeeping."""
from __future__ import annotations

import pytest

from backend.chain import client
from backend.chain.transactions import call
from tests.factories import (
    BUYER,
    DAY,
    HOLDER,
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


AMOUNT = 1_000_000  # the factories' default face amount


@pytest.fixture
def actors(module_actors, ledger):
    """The module's cast (`ledger` rolls each test back)."""
    return module_actors


@pytest.fixture
def registry(ledger):
    return ledger.registry


@pytest.fixture(scope="module")
def receivables(module_ledger, module_actors) -> tuple[int, int]:
    """A registered and a confirmed receivable of the supplier to the buyer (face AMOUNT),
    made once for the module; each test starts from them as they are here."""
    supplier, buyer = module_actors.supplier, module_actors.buyer
    return module_ledger.register(supplier, buyer), module_ledger.confirmed(supplier, buyer)


@pytest.fixture
def registered(receivables, ledger) -> int:
    return receivables[0]


@pytest.fixture
def confirmed(receivables, ledger) -> int:
    return receivables[1]


def lower(account) -> str:
    return account.address.lower()


def with_fields(entry: tuple, **changes) -> tuple:
    """A Registration tuple with some fields replaced."""
    names = ("buyer", "amount", "currency", "issue_date", "due_date", "invoice_number_hash", "document_hash")
    fields = dict(zip(names, entry))
    fields.update(changes)
    return tuple(fields[name] for name in names)


# ---------------------------------------------------------------------- registration


def test_register_mints_the_receivable_under_its_derived_id(ledger, registry, actors):
    entry = ledger.registration(actors.buyer, amount=250_000)
    buyer, amount, currency, issue_date, due_date, number_hash, document_hash = entry
    expected = client.receivable_id(actors.supplier.address, buyer, number_hash)
    # The id is known before the transaction is mined.
    assert registry.functions.register(entry).call({"from": actors.supplier.address}) == expected

    receipt = ledger.send(actors.supplier, registry.functions.register(entry))

    assert emitted(receipt, registry.events.ReceivableRegistered) == [
        {
            "id": expected, "supplier": actors.supplier.address, "buyer": buyer, "amount": amount, "currency": currency,
            "issueDate": issue_date, "dueDate": due_date, "invoiceNumberHash": number_hash, "documentHash": document_hash,
        }
    ]
    assert emitted(receipt, registry.events.Transfer) == [{"from": ZERO_ADDRESS, "to": actors.supplier.address, "tokenId": expected}]
    assert ledger.receivable(expected) == {
        "buyer": buyer, "holder": actors.supplier.address, "amount": 250_000, "repaid": 0, "due_date": due_date,
        "currency": b"CNY", "status": STATUS["Registered"], "delinquency": 0, "parent_id": 0,
    }
    assert registry.functions.ownerOf(expected).call() == actors.supplier.address
    assert registry.functions.receivableId(actors.supplier.address, buyer, number_hash).call() == expected


def test_register_batch_registers_every_entry_in_order(ledger, registry, actors):
    other_buyer = ledger.participant(BUYER)
    entries = [
        ledger.registration(actors.buyer, amount=100),
        ledger.registration(other_buyer, amount=200),
        ledger.registration(actors.buyer, amount=300),
    ]
    held = registry.functions.balanceOf(actors.supplier.address).call()
    receipt = ledger.send(actors.supplier, registry.functions.registerBatch(entries))

    ids = [client.receivable_id(actors.supplier.address, entry[0], entry[5]) for entry in entries]
    events = emitted(receipt, registry.events.ReceivableRegistered)
    assert [(event["id"], event["buyer"], event["amount"]) for event in events] == [
        (ids[0], actors.buyer.address, 100), (ids[1], other_buyer.address, 200), (ids[2], actors.buyer.address, 300)
    ]
    for receivable_id, entry in zip(ids, entries):
        record = ledger.receivable(receivable_id)
        assert (record["buyer"], record["amount"], record["status"]) == (entry[0], entry[1], STATUS["Registered"])
        assert record["holder"] == actors.supplier.address
    assert registry.functions.balanceOf(actors.supplier.address).call() == held + 3


def test_the_same_invoice_cannot_be_registered_twice_even_in_a_later_batch(ledger, registry, actors):
    entry = ledger.registration(actors.buyer, number="INV-DUP")
    ledger.send(actors.supplier, registry.functions.register(entry))
    receivable_id = ledger.receivable_id(actors.supplier, entry)

    again = with_fields(entry, amount=5, document_hash=b"\x09" * 32)  # same supplier, buyer and number
    with reverts("DuplicateReceivable") as error:
        ledger.send(actors.supplier, registry.functions.register(again))
    assert error["args"] == (receivable_id,)

    fresh = ledger.registration(actors.buyer)
    with reverts("DuplicateReceivable"):
        ledger.send(actors.supplier, registry.functions.registerBatch([fresh, again]))
    assert ledger.status(ledger.receivable_id(actors.supplier, fresh)) == "None"  # all or none
    assert ledger.receivable(receivable_id)["amount"] == AMOUNT


def test_a_duplicate_within_one_batch_voids_the_batch(ledger, registry, actors):
    entry = ledger.registration(actors.buyer)
    with reverts("DuplicateReceivable") as error:
        ledger.send(actors.supplier, registry.functions.registerBatch([entry, entry]))
    assert error["args"] == (ledger.receivable_id(actors.supplier, entry),)
    assert ledger.status(ledger.receivable_id(actors.supplier, entry)) == "None"


def test_a_cancelled_invoice_can_never_be_registered_again(ledger, registry, actors):
    entry = ledger.registration(actors.buyer)
    ledger.send(actors.supplier, registry.functions.register(entry))
    receivable_id = ledger.receivable_id(actors.supplier, entry)
    ledger.send(actors.supplier, registry.functions.cancel(receivable_id))

    for fn in (registry.functions.register(entry), registry.functions.registerBatch([entry])):
        with reverts("DuplicateReceivable") as error:
            ledger.send(actors.supplier, fn)
        assert error["args"] == (receivable_id,)
    assert ledger.status(receivable_id) == "Cancelled"


def test_the_same_invoice_number_from_another_supplier_or_to_another_buyer_is_another_receivable(ledger, actors):
    other_buyer = ledger.participant(BUYER)
    ids = {
        ledger.register(actors.supplier, actors.buyer, number="INV-1"),
        ledger.register(actors.supplier, other_buyer, number="INV-1"),
        ledger.register(actors.sub_supplier, actors.buyer, number="INV-1"),
    }
    assert len(ids) == 3
    assert {ledger.status(receivable_id) for receivable_id in ids} == {"Registered"}


def _past_due(ledger, entry):
    return with_fields(entry, issue_date=ledger.now() - 20 * DAY, due_date=ledger.now() - 10)


INVALID_REGISTRATIONS = {
    # error name: (how to spoil a valid entry, expected args given the spoiled entry)
    "ZeroAmount": (lambda ledger, e: with_fields(e, amount=0), lambda e: ()),
    "InvalidCurrency": (lambda ledger, e: with_fields(e, currency=b"\x00\x00\x00"), lambda e: ()),
    "MissingHash/invoice number": (lambda ledger, e: with_fields(e, invoice_number_hash=b"\x00" * 32), lambda e: ()),
    "MissingHash/document": (lambda ledger, e: with_fields(e, document_hash=b"\x00" * 32), lambda e: ()),
    "InvalidDates/due on issue": (lambda ledger, e: with_fields(e, due_date=e[3]), lambda e: (e[3], e[4])),
    "InvalidDates/due before issue": (lambda ledger, e: with_fields(e, due_date=e[3] - 1), lambda e: (e[3], e[4])),
    "DueDateInPast": (_past_due, lambda e: (e[4],)),
}


@pytest.mark.parametrize("batch", [False, True], ids=["register", "registerBatch"])
@pytest.mark.parametrize("case", list(INVALID_REGISTRATIONS))
def test_registration_validation(ledger, registry, actors, case, batch):
    spoil, expected_args = INVALID_REGISTRATIONS[case]
    good = ledger.registration(actors.buyer)
    bad = spoil(ledger, ledger.registration(actors.buyer))
    fn = registry.functions.registerBatch([good, bad]) if batch else registry.functions.register(bad)
    held = registry.functions.balanceOf(actors.supplier.address).call()

    with reverts(case.split("/")[0]) as error:
        ledger.send(actors.supplier, fn)
    assert error["args"] == expected_args(bad)
    assert ledger.status(ledger.receivable_id(actors.supplier, good)) == "None"
    assert registry.functions.balanceOf(actors.supplier.address).call() == held


def test_registration_refuses_an_invoice_to_oneself(ledger, registry):
    both = ledger.participant(SUPPLIER | BUYER)
    entry = ledger.registration(both)
    for fn in (registry.functions.register(entry), registry.functions.registerBatch([entry])):
        with reverts("SelfInvoice") as error:
            ledger.send(both, fn)
        assert error["args"] == (lower(both),)


def test_empty_batches_are_refused(ledger, registry, actors):
    with reverts("EmptyBatch"):
        ledger.send(actors.supplier, registry.functions.registerBatch([]))
    with reverts("EmptyBatch"):
        ledger.send(actors.buyer, registry.functions.confirmBatch([]))


PARTY_CASES = {
    # case: (who registers, the buyer invoiced, who is refused, with which role mask)
    "supplier without the supplier role": lambda ledger, a: (a.financier, a.buyer, a.financier, SUPPLIER),
    "suspended supplier": lambda ledger, a: (ledger.suspend(a.supplier), a.buyer, a.supplier, SUPPLIER),
    "buyer without the buyer role": lambda ledger, a: (a.supplier, a.sub_supplier, a.sub_supplier, BUYER),
    "suspended buyer": lambda ledger, a: (a.supplier, ledger.suspend(a.buyer), a.buyer, BUYER),
    "buyer never onboarded": lambda ledger, a: (a.supplier, (stranger := ledger.new_account()), stranger, BUYER),
}


@pytest.mark.parametrize("batch", [False, True], ids=["register", "registerBatch"])
@pytest.mark.parametrize("case", list(PARTY_CASES))
def test_registration_needs_an_active_supplier_and_an_active_buyer(ledger, registry, actors, case, batch):
    supplier, buyer, refused, mask = PARTY_CASES[case](ledger, actors)
    entry = ledger.registration(buyer)
    fn = registry.functions.registerBatch([entry]) if batch else registry.functions.register(entry)
    with reverts("ParticipantNotActive") as error:
        ledger.send(supplier, fn)
    assert error["args"] == (lower(refused), mask)
    assert ledger.status(ledger.receivable_id(supplier, entry)) == "None"


def test_register_batch_checks_every_buyer_of_the_batch(ledger, registry, actors):
    """Buyers are looked up once per run of the same buyer; a change of buyer is checked again."""
    inactive = ledger.suspend(ledger.participant(BUYER))
    entries = [ledger.registration(actors.buyer), ledger.registration(inactive), ledger.registration(actors.buyer)]
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, registry.functions.registerBatch(entries))
    assert error["args"] == (lower(inactive), BUYER)
    assert ledger.status(ledger.receivable_id(actors.supplier, entries[0])) == "None"


@pytest.mark.parametrize("batch", [False, True], ids=["register", "registerBatch"])
def test_registration_refuses_the_zero_address_as_buyer(ledger, registry, actors, batch):
    entry = with_fields(ledger.registration(actors.buyer), buyer=ZERO_ADDRESS)
    fn = registry.functions.registerBatch([entry]) if batch else registry.functions.register(entry)
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, fn)
    assert error["args"] == (ZERO_ADDRESS, BUYER)


# ---------------------------------------------------------------------- the buyer's answer


def test_confirm_turns_the_receivable_into_the_buyers_promise(ledger, registry, actors, registered):
    receipt = ledger.send(actors.buyer, registry.functions.confirm(registered))
    assert emitted(receipt, registry.events.ReceivableConfirmed) == [{"id": registered}]
    assert ledger.status(registered) == "Confirmed"
    assert ledger.receivable(registered)["holder"] == actors.supplier.address


def test_confirm_batch_confirms_all(ledger, registry, actors):
    ids = [ledger.register(actors.supplier, actors.buyer), ledger.register(actors.sub_supplier, actors.buyer)]
    receipt = ledger.send(actors.buyer, registry.functions.confirmBatch(ids))
    assert [event["id"] for event in emitted(receipt, registry.events.ReceivableConfirmed)] == ids
    assert [ledger.status(receivable_id) for receivable_id in ids] == ["Confirmed", "Confirmed"]


def test_confirm_batch_is_all_or_none(ledger, registry, actors, registered, confirmed):
    with reverts("UnexpectedStatus") as error:
        ledger.send(actors.buyer, registry.functions.confirmBatch([registered, confirmed]))
    assert error["args"] == (confirmed, STATUS["Confirmed"])
    assert ledger.status(registered) == "Registered"


def _confirmed(ledger, actors, registered):
    ledger.send(actors.buyer, ledger.registry.functions.confirm(registered))
    return registered


def _cancelled(ledger, actors, registered):
    ledger.send(actors.supplier, ledger.registry.functions.cancel(registered))
    return registered


CONFIRM_REFUSALS = {
    # case: (set-up returning (caller, receivable id)), expected error, expected args
    "another buyer": (lambda ledger, a, r: (ledger.participant(BUYER), r), "NotBuyer", lambda caller, r: (r, lower(caller))),
    "already confirmed": (lambda ledger, a, r: (a.buyer, _confirmed(ledger, a, r)), "UnexpectedStatus", lambda caller, r: (r, STATUS["Confirmed"])),
    "cancelled": (lambda ledger, a, r: (a.buyer, _cancelled(ledger, a, r)), "UnexpectedStatus", lambda caller, r: (r, STATUS["Cancelled"])),
    "unknown receivable": (lambda ledger, a, r: (a.buyer, 12345), "UnknownReceivable", lambda caller, r: (12345,)),
    "caller not a buyer": (lambda ledger, a, r: (a.supplier, r), "ParticipantNotActive", lambda caller, r: (lower(caller), BUYER)),
    "suspended buyer": (lambda ledger, a, r: (ledger.suspend(a.buyer), r), "ParticipantNotActive", lambda caller, r: (lower(caller), BUYER)),
}


@pytest.mark.parametrize("batch", [False, True], ids=["confirm", "confirmBatch"])
@pytest.mark.parametrize("case", list(CONFIRM_REFUSALS))
def test_confirm_refusals(ledger, registry, actors, registered, case, batch):
    setup, error_name, expected_args = CONFIRM_REFUSALS[case]
    caller, receivable_id = setup(ledger, actors, registered)
    before = ledger.receivable(registered)
    fn = registry.functions.confirmBatch([receivable_id]) if batch else registry.functions.confirm(receivable_id)
    with reverts(error_name) as error:
        ledger.send(caller, fn)
    assert error["args"] == expected_args(caller, receivable_id)
    assert ledger.receivable(registered) == before


def test_dispute_and_later_confirmation(ledger, registry, actors, registered):
    receipt = ledger.send(actors.buyer, registry.functions.dispute(registered, 3))
    assert emitted(receipt, registry.events.ReceivableDisputed) == [{"id": registered, "reasonCode": 3}]
    assert ledger.status(registered) == "Disputed"

    # A settled dispute: the buyer confirms after all.
    ledger.send(actors.buyer, registry.functions.confirm(registered))
    assert ledger.status(registered) == "Confirmed"


def test_dispute_refusals(ledger, registry, actors, registered, confirmed):
    with reverts("InvalidReasonCode"):
        ledger.send(actors.buyer, registry.functions.dispute(registered, 0))
    with reverts("UnexpectedStatus") as error:
        ledger.send(actors.buyer, registry.functions.dispute(confirmed, 1))
    assert error["args"] == (confirmed, STATUS["Confirmed"])
    with reverts("UnknownReceivable") as error:
        ledger.send(actors.buyer, registry.functions.dispute(777, 1))
    assert error["args"] == (777,)
    other_buyer = ledger.participant(BUYER)
    with reverts("NotBuyer") as error:
        ledger.send(other_buyer, registry.functions.dispute(registered, 1))
    assert error["args"] == (registered, lower(other_buyer))
    with reverts("ParticipantNotActive"):
        ledger.send(actors.supplier, registry.functions.dispute(registered, 1))

    ledger.send(actors.buyer, registry.functions.dispute(registered, 1))
    with reverts("UnexpectedStatus") as error:
        ledger.send(actors.buyer, registry.functions.dispute(registered, 2))
    assert error["args"] == (registered, STATUS["Disputed"])
    assert ledger.status(registered) == "Disputed"
    assert ledger.status(confirmed) == "Confirmed"


# ---------------------------------------------------------------------- cancel


@pytest.mark.parametrize("disputed", [False, True], ids=["registered", "disputed"])
def test_cancel_retires_an_unconfirmed_receivable(ledger, registry, actors, registered, disputed):
    if disputed:
        ledger.send(actors.buyer, registry.functions.dispute(registered, 1))
    receipt = ledger.send(actors.supplier, registry.functions.cancel(registered))

    assert emitted(receipt, registry.events.ReceivableCancelled) == [{"id": registered, "supplier": actors.supplier.address}]
    assert emitted(receipt, registry.events.Transfer) == [{"from": actors.supplier.address, "to": ZERO_ADDRESS, "tokenId": registered}]
    assert ledger.status(registered) == "Cancelled"
    assert ledger.receivable(registered)["holder"] == ZERO_ADDRESS
    with reverts("ERC721NonexistentToken"):
        call(registry.functions.ownerOf(registered))


def test_cancel_refusals(ledger, registry, actors, registered, confirmed):
    with reverts("UnexpectedStatus") as error:
        ledger.send(actors.supplier, registry.functions.cancel(confirmed))
    assert error["args"] == (confirmed, STATUS["Confirmed"])
    with reverts("NotHolder") as error:
        ledger.send(actors.sub_supplier, registry.functions.cancel(registered))
    assert error["args"] == (registered, lower(actors.sub_supplier))
    with reverts("UnknownReceivable"):
        ledger.send(actors.supplier, registry.functions.cancel(4242))
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.financier, registry.functions.cancel(registered))
    assert error["args"] == (lower(actors.financier), SUPPLIER)

    ledger.send(actors.supplier, registry.functions.cancel(registered))
    with reverts("NotHolder"):  # burned: nobody holds it any more
        ledger.send(actors.supplier, registry.functions.cancel(registered))
    assert ledger.status(confirmed) == "Confirmed"


# ---------------------------------------------------------------------- transfers


def test_a_confirmed_receivable_moves_between_active_holders(ledger, registry, actors, confirmed):
    receipt = ledger.send(actors.supplier, registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, confirmed))
    assert emitted(receipt, registry.events.Transfer) == [{"from": actors.supplier.address, "to": actors.sub_supplier.address, "tokenId": confirmed}]
    ledger.send(actors.sub_supplier, registry.functions.safeTransferFrom(actors.sub_supplier.address, actors.financier.address, confirmed))

    assert ledger.receivable(confirmed)["holder"] == actors.financier.address
    assert ledger.status(confirmed) == "Confirmed"


@pytest.mark.parametrize("status", ["Registered", "Disputed"])
def test_only_confirmed_receivables_move(ledger, registry, actors, registered, status):
    if status == "Disputed":
        ledger.send(actors.buyer, registry.functions.dispute(registered, 1))
    with reverts("NotConfirmed") as error:
        ledger.send(actors.supplier, registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, registered))
    assert error["args"] == (registered, STATUS[status])
    assert ledger.receivable(registered)["holder"] == actors.supplier.address


TRANSFER_ENDS = {
    # case: set-up returning (recipient, refused account)
    "recipient is a buyer": lambda ledger, a: (a.buyer, a.buyer),
    "recipient is an auditor": lambda ledger, a: (a.auditor, a.auditor),
    "recipient never onboarded": lambda ledger, a: ((stranger := ledger.new_account()), stranger),
    "recipient suspended": lambda ledger, a: (ledger.suspend(a.sub_supplier), a.sub_supplier),
    "sender suspended": lambda ledger, a: (a.sub_supplier, ledger.suspend(a.supplier)),
}


@pytest.mark.parametrize("case", list(TRANSFER_ENDS))
def test_transfers_need_active_holders_on_both_ends(ledger, registry, actors, confirmed, case):
    recipient, refused = TRANSFER_ENDS[case](ledger, actors)
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, registry.functions.transferFrom(actors.supplier.address, recipient.address, confirmed))
    assert error["args"] == (lower(refused), HOLDER)
    assert ledger.receivable(confirmed)["holder"] == actors.supplier.address


def test_only_the_holder_or_whom_it_approved_moves_a_receivable(ledger, registry, actors, confirmed):
    move = registry.functions.transferFrom(actors.supplier.address, actors.financier.address, confirmed)
    with reverts("ERC721InsufficientApproval") as error:
        ledger.send(actors.financier, move)
    assert error["args"] == (lower(actors.financier), confirmed)

    ledger.send(actors.supplier, registry.functions.approve(actors.financier.address, confirmed))
    ledger.send(actors.financier, move)
    assert ledger.receivable(confirmed)["holder"] == actors.financier.address


# ---------------------------------------------------------------------- split


def test_split_mints_confirmed_children_and_retires_the_parent(ledger, registry, actors, confirmed):
    amounts = [500_000, 300_000, 200_000]
    holders = [actors.supplier.address, actors.sub_supplier.address, actors.financier.address]
    children = [client.child_receivable_id(confirmed, i) for i in range(3)]
    parent = ledger.receivable(confirmed)
    assert registry.functions.split(confirmed, amounts, holders).call({"from": actors.supplier.address}) == children

    receipt = ledger.send(actors.supplier, registry.functions.split(confirmed, amounts, holders))

    assert emitted(receipt, registry.events.ReceivableSplit) == [{"parentId": confirmed, "childIds": children, "amounts": amounts}]
    for child, amount, holder in zip(children, amounts, holders):
        assert ledger.receivable(child) == {
            **parent, "holder": holder, "amount": amount, "status": STATUS["Confirmed"], "parent_id": confirmed,
        }
        assert registry.functions.parentOf(child).call() == confirmed
    assert registry.functions.childrenOf(confirmed).call() == children
    assert ledger.status(confirmed) == "Split"
    assert ledger.receivable(confirmed)["holder"] == ZERO_ADDRESS
    with reverts("ERC721NonexistentToken"):
        call(registry.functions.ownerOf(confirmed))

    # A child is a receivable like any other: the sub-supplier's part moves on.
    ledger.send(actors.sub_supplier, registry.functions.transferFrom(actors.sub_supplier.address, actors.financier.address, children[1]))
    assert ledger.receivable(children[1])["holder"] == actors.financier.address


def test_children_split_again_keep_their_lineage(ledger, registry, actors, confirmed):
    to_supplier = [actors.supplier.address] * 2
    ledger.send(actors.supplier, registry.functions.split(confirmed, [600_000, 400_000], to_supplier))
    child = client.child_receivable_id(confirmed, 0)
    ledger.send(actors.supplier, registry.functions.split(child, [100_000, 500_000], to_supplier))

    grandchildren = [client.child_receivable_id(child, i) for i in range(2)]
    assert registry.functions.childrenOf(child).call() == grandchildren
    assert [registry.functions.parentOf(g).call() for g in grandchildren] == [child, child]
    assert registry.functions.parentOf(child).call() == confirmed
    assert registry.functions.parentOf(confirmed).call() == 0
    assert ledger.status(child) == "Split"
    assert [ledger.receivable(g)["amount"] for g in grandchildren] == [100_000, 500_000]


def test_split_into_the_maximum_number_of_parts(ledger, registry, actors, confirmed):
    parts = registry.functions.MAX_SPLIT_PARTS().call()
    assert parts == 100
    held = registry.functions.balanceOf(actors.supplier.address).call()
    ledger.send(actors.supplier, registry.functions.split(confirmed, [AMOUNT // parts] * parts, [actors.supplier.address] * parts))
    assert len(registry.functions.childrenOf(confirmed).call()) == parts
    assert registry.functions.balanceOf(actors.supplier.address).call() == held - 1 + parts


@pytest.mark.parametrize("amounts", [[600_000, 300_000], [600_000, 500_000]], ids=["short", "over"])
def test_split_amounts_must_sum_exactly_to_the_parent(ledger, registry, actors, confirmed, amounts):
    with reverts("SplitAmountMismatch") as error:
        ledger.send(actors.supplier, registry.functions.split(confirmed, amounts, [actors.supplier.address] * 2))
    assert error["args"] == (confirmed, AMOUNT, sum(amounts))
    assert ledger.status(confirmed) == "Confirmed"


@pytest.mark.parametrize("parts, holders", [(0, 0), (1, 1), (101, 101), (2, 3), (3, 2)])
def test_split_needs_two_to_max_parts_with_a_holder_each(ledger, registry, actors, confirmed, parts, holders):
    amounts = [AMOUNT // parts] * parts if parts else []
    with reverts("InvalidSplit") as error:
        ledger.send(actors.supplier, registry.functions.split(confirmed, amounts, [actors.supplier.address] * holders))
    assert error["args"] == (parts,)
    assert ledger.status(confirmed) == "Confirmed"


def test_split_refuses_a_zero_part(ledger, registry, actors, confirmed):
    with reverts("ZeroAmount"):
        ledger.send(actors.supplier, registry.functions.split(confirmed, [AMOUNT, 0], [actors.supplier.address] * 2))
    assert ledger.status(confirmed) == "Confirmed"


def test_split_refuses_what_is_not_the_callers_confirmed_receivable(ledger, registry, actors, registered, confirmed):
    halves, to_self = [AMOUNT // 2] * 2, [actors.supplier.address] * 2
    with reverts("NotConfirmed") as error:
        ledger.send(actors.supplier, registry.functions.split(registered, halves, to_self))
    assert error["args"] == (registered, STATUS["Registered"])
    with reverts("NotHolder") as error:
        ledger.send(actors.sub_supplier, registry.functions.split(confirmed, halves, to_self))
    assert error["args"] == (confirmed, lower(actors.sub_supplier))
    with reverts("UnknownReceivable"):
        ledger.send(actors.supplier, registry.functions.split(99, halves, to_self))

    ledger.send(actors.supplier, registry.functions.split(confirmed, halves, to_self))
    with reverts("NotHolder"):  # the retired parent cannot be split twice
        ledger.send(actors.supplier, registry.functions.split(confirmed, halves, to_self))


def test_split_is_refused_after_a_partial_repayment(ledger, registry, actors, confirmed):
    ledger.send(actors.buyer, ledger.financing.functions.repay(confirmed, 1_000))
    with reverts("AlreadyPartlyRepaid") as error:
        ledger.send(actors.supplier, registry.functions.split(confirmed, [AMOUNT // 2] * 2, [actors.supplier.address] * 2))
    assert error["args"] == (confirmed,)
    assert ledger.status(confirmed) == "Confirmed"


def test_split_is_refused_once_overdue(ledger, registry, actors, time_travel):
    receivable = ledger.confirmed(actors.supplier, actors.buyer, due_date=ledger.now() + DAY)
    time_travel(DAY + ledger.financing.functions.gracePeriod().call() + 10)
    ledger.send(actors.supplier, ledger.financing.functions.markOverdue(receivable))
    with reverts("Delinquent") as error:
        ledger.send(actors.supplier, registry.functions.split(receivable, [AMOUNT // 2] * 2, [actors.supplier.address] * 2))
    assert error["args"] == (receivable, 1)  # Overdue
    assert ledger.status(receivable) == "Confirmed"


@pytest.mark.parametrize("case", ["child to a buyer", "child to a suspended holder", "suspended caller"])
def test_split_needs_active_holders(ledger, registry, actors, confirmed, case):
    holders = [actors.supplier.address, actors.sub_supplier.address]
    refused = actors.sub_supplier
    if case == "child to a buyer":
        holders[1], refused = actors.buyer.address, actors.buyer
    elif case == "child to a suspended holder":
        ledger.suspend(actors.sub_supplier)
    else:
        refused = ledger.suspend(actors.supplier)
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.supplier, registry.functions.split(confirmed, [AMOUNT // 2] * 2, holders))
    assert error["args"] == (lower(refused), HOLDER)
    assert ledger.status(confirmed) == "Confirmed"
    assert registry.functions.childrenOf(confirmed).call() == []


# ---------------------------------------------------------------------- servicer only, pause


@pytest.mark.parametrize("action", ["transferBySettlement", "setDelinquency", "recordRepayment"])
@pytest.mark.parametrize("caller", ["holder", "operator"])
def test_servicing_functions_are_for_the_financing_contract_only(ledger, registry, actors, confirmed, action, caller):
    account = actors.supplier if caller == "holder" else ledger.operator
    fn = {
        "transferBySettlement": registry.functions.transferBySettlement(actors.supplier.address, actors.financier.address, confirmed),
        "setDelinquency": registry.functions.setDelinquency(confirmed, 2),
        "recordRepayment": registry.functions.recordRepayment(confirmed, 2, 1_000, b"CNY"),
    }[action]
    before = ledger.receivable(confirmed)
    with reverts("NotServicer") as error:
        ledger.send(account, fn)
    assert error["args"] == (account.address.lower(),)
    assert ledger.receivable(confirmed) == before


PAUSED_ACTIONS = {
    "register": lambda ledger, a, reg, conf: (a.supplier, ledger.registry.functions.register(ledger.registration(a.buyer))),
    "registerBatch": lambda ledger, a, reg, conf: (a.supplier, ledger.registry.functions.registerBatch([ledger.registration(a.buyer)])),
    "confirm": lambda ledger, a, reg, conf: (a.buyer, ledger.registry.functions.confirm(reg)),
    "confirmBatch": lambda ledger, a, reg, conf: (a.buyer, ledger.registry.functions.confirmBatch([reg])),
    "dispute": lambda ledger, a, reg, conf: (a.buyer, ledger.registry.functions.dispute(reg, 1)),
    "cancel": lambda ledger, a, reg, conf: (a.supplier, ledger.registry.functions.cancel(reg)),
    "transfer": lambda ledger, a, reg, conf: (
        a.supplier, ledger.registry.functions.transferFrom(a.supplier.address, a.sub_supplier.address, conf)
    ),
    "split": lambda ledger, a, reg, conf: (
        a.supplier, ledger.registry.functions.split(conf, [AMOUNT // 2] * 2, [a.supplier.address] * 2)
    ),
}


@pytest.mark.parametrize("action", list(PAUSED_ACTIONS))
def test_pause_stops_the_registry(ledger, registry, actors, registered, confirmed, action):
    account, fn = PAUSED_ACTIONS[action](ledger, actors, registered, confirmed)
    before = (ledger.receivable(registered), ledger.receivable(confirmed))
    ledger.pause()
    with reverts("EnforcedPause"):
        ledger.send(account, fn)
    assert (ledger.receivable(registered), ledger.receivable(confirmed)) == before
    assert registry.functions.balanceOf(actors.supplier.address).call() == 2


# ---------------------------------------------------------------------- views and construction


def test_an_unknown_id_reads_as_nothing(ledger, registry):
    assert ledger.receivable(31337) == {
        "buyer": ZERO_ADDRESS, "holder": ZERO_ADDRESS, "amount": 0, "repaid": 0, "due_date": 0,
        "currency": b"\x00\x00\x00", "status": STATUS["None"], "delinquency": 0, "parent_id": 0,
    }
    assert registry.functions.childrenOf(31337).call() == []
    assert registry.functions.parentOf(31337).call() == 0


@pytest.mark.parametrize("interface, supported", [("0x80ac58cd", True), ("0x7965db0b", True), ("0x01ffc9a7", True), ("0xdeadbeef", False)])
def test_supports_erc721_and_access_control_interfaces(registry, interface, supported):
    assert registry.functions.supportsInterface(bytes.fromhex(interface[2:])).call() is supported


def test_constructor_needs_a_registry_and_a_servicer(ledger):
    administration = (0, ledger.operator.address, ledger.operator.address)
    with reverts("ZeroAddress"):
        deploy(ledger, "ReceivableRegistry", ledger.participants.address, ZERO_ADDRESS, administration)
    with reverts("ZeroAddress"):
        deploy(ledger, "ReceivableRegistry", ZERO_ADDRESS, ledger.financing.address, administration)
    registry = deploy(ledger, "ReceivableRegistry", ledger.participants.address, ledger.financing.address, administration)
    assert registry.functions.servicer().call() == ledger.financing.address



def test_the_back_end_derives_the_same_receivable_id_as_the_contract(ledger, actors):
    """The back end computes an invoice's id before its registration is mined."""
    entry = ledger.registration(actors.buyer, number="INV-2026-0042")
    assert entry[5] == client.invoice_number_hash("INV-2026-0042")
    expected = client.receivable_id(actors.supplier.address, actors.buyer.address, entry[5])
    assert ledger.receivable_id(actors.supplier, entry) == expected
    ledger.send(actors.supplier, ledger.registry.functions.register(entry))
    assert ledger.receivable(expected)["holder"] == actors.supplier.address


def test_an_approved_operator_must_be_an_active_participant(ledger, actors):
    """An ERC-721 approval does not let a suspended participant move a receivable."""
    receivable = ledger.confirmed(actors.supplier, actors.buyer)
    registry = ledger.registry
    ledger.send(actors.supplier, registry.functions.setApprovalForAll(actors.financier.address, True))
    ledger.suspend(actors.financier)
    with reverts("ParticipantNotActive") as error:
        ledger.send(actors.financier, registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, receivable))
    assert error["args"] == (actors.financier.address.lower(), 0)
    assert ledger.receivable(receivable)["holder"] == actors.supplier.address

    ledger.send(ledger.operator, ledger.participants.functions.reinstate(actors.financier.address))
    ledger.send(actors.financier, registry.functions.transferFrom(actors.supplier.address, actors.sub_supplier.address, receivable))
    assert ledger.receivable(receivable)["holder"] == actors.sub_supplier.address
