"""What each ledger event changes in the database (workers/projections.py), driven by real
transactions on anvil and the rows the services would have written before them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    FinancingRequestStatus,
    IndexerCursor,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    OfferStatus,
    Repayment,
    RepaymentStatus,
    Role,
    TokenBalance,
    TokenOperation,
    TokenOperationKind,
    TokenOperationStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.services import webhooks
from tests import domain_factories
from backend.services.invoices import receivable_hex
from tests.indexer_fixtures import IndexedChain, token_reference
from workers import projections


def balance(org) -> int | None:
    return db.session.scalar(select(TokenBalance.balance_minor).where(TokenBalance.address == org.chain_address))


def test_onboarding_gives_the_participant_id(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier = chain.organisation(Role.SUPPLIER)
    assert supplier.participant_id is None
    chain.index()
    assert supplier.participant_id is not None
    assert chain.ledger.participants.functions.accountOf(supplier.participant_id).call() == supplier.chain_address


def test_registration_confirmation_and_dispute_and_cancellation(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    confirmed, disputed = chain.pending_invoice(supplier, buyer), chain.pending_invoice(supplier, buyer)
    confirmed_id, disputed_id = chain.register(confirmed), chain.register(disputed)
    disputed.dispute_reason = "quantity: 3 pallets short"  # written by the services, off the ledger
    db.session.commit()
    chain.index()
    assert (confirmed.status, disputed.status) == (InvoiceStatus.REGISTERED, InvoiceStatus.REGISTERED)
    assert confirmed.holder_id == supplier.id

    chain.send(buyer, chain.ledger.registry.functions.confirm(confirmed_id))
    chain.send(buyer, chain.ledger.registry.functions.dispute(disputed_id, 2))
    chain.index()
    assert confirmed.status == InvoiceStatus.CONFIRMED
    assert disputed.status == InvoiceStatus.DISPUTED
    assert disputed.dispute_reason == "quantity: 3 pallets short"

    chain.send(supplier, chain.ledger.registry.functions.cancel(disputed_id))
    chain.index()
    assert disputed.status == InvoiceStatus.CANCELLED


def test_a_receivable_unknown_to_the_database_is_stored_but_not_invented(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    outsider = chain.pending_invoice(supplier, buyer)
    receivable = chain.register(outsider)
    db.session.delete(outsider)  # registered by someone outside Anchorline
    db.session.commit()

    chain.index()

    (event,) = chain.events("ReceivableRegistered")
    assert event.args["id"] == str(receivable)
    assert db.session.scalars(select(Invoice)).all() == []


def test_split_and_transfer_move_the_holders(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    sub_supplier, financier = chain.organisation(Role.SUPPLIER), chain.organisation(Role.FINANCIER)
    parent, parent_id = chain.confirmed_invoice(supplier, buyer, amount_minor=1_000)
    children = [
        Invoice(supplier_id=supplier.id, buyer_id=buyer.id, holder=holder, currency="CNY", amount_minor=amount,
                issue_date=parent.issue_date, due_date=parent.due_date, source=InvoiceSource.SPLIT,
                receivable_id=receivable_hex(chain.ledger.registry.functions.childId(parent_id, index).call()),
                status=InvoiceStatus.PENDING, parent=parent, split_index=index)
        for index, (holder, amount) in enumerate([(supplier, 600), (sub_supplier, 400)])
    ]
    db.session.add_all(children)
    db.session.commit()

    chain.send(supplier, chain.ledger.registry.functions.split(parent_id, [600, 400],
                                                               [supplier.chain_address, sub_supplier.chain_address]))
    chain.index()
    assert parent.status == InvoiceStatus.SPLIT
    assert [(child.status, child.holder_id) for child in children] == [
        (InvoiceStatus.CONFIRMED, supplier.id), (InvoiceStatus.CONFIRMED, sub_supplier.id)]

    child_id = int(children[1].receivable_id, 16)
    chain.send(sub_supplier, chain.ledger.registry.functions.transferFrom(
        sub_supplier.chain_address, financier.chain_address, child_id))
    chain.index()
    assert children[1].holder_id == financier.id
    assert parent.holder_id == supplier.id  # the burned parent keeps its last holder


def test_financing_from_request_to_settlement(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    financier, rival = chain.organisation(Role.FINANCIER), chain.organisation(Role.FINANCIER)
    invoice, receivable = chain.confirmed_invoice(supplier, buyer)
    for org in (financier, rival):
        chain.mint(org, 5_000_000, token_reference(f"deposit of {org.id}"))
    chain.index()
    request = domain_factories.financing_request(invoice, status=FinancingRequestStatus.PENDING)
    offer = domain_factories.offer(request, financier, status=OfferStatus.PENDING)
    rival_offer = domain_factories.offer(request, rival, status=OfferStatus.PENDING)
    db.session.commit()
    financing = chain.ledger.financing.functions
    now = chain.ledger.now()

    chain.send(supplier, financing.requestFinancing(receivable, 900_000, now + 30 * 86_400, False))
    chain.send(financier, financing.makeOffer(receivable, 910_000, now + 20 * 86_400))
    chain.send(rival, financing.makeOffer(receivable, 905_000, now + 20 * 86_400))
    chain.index()
    assert (request.status, request.round) == (FinancingRequestStatus.OPEN, 1)
    assert (offer.status, rival_offer.status) == (OfferStatus.OPEN, OfferStatus.OPEN)

    chain.send(rival, financing.withdrawOffer(receivable))
    chain.send(financier, financing.makeOffer(receivable, 920_000, now + 20 * 86_400))  # a revision
    chain.index()
    assert (offer.status, rival_offer.status) == (OfferStatus.OPEN, OfferStatus.WITHDRAWN)

    chain.send(supplier, financing.acceptOffer(receivable, financier.chain_address, 920_000))
    chain.index()
    assert request.status == FinancingRequestStatus.FUNDED
    assert (offer.status, rival_offer.status) == (OfferStatus.ACCEPTED, OfferStatus.WITHDRAWN)
    assert invoice.holder_id == financier.id
    assert (balance(supplier), balance(financier), balance(rival)) == (920_000, 5_000_000 - 920_000, 5_000_000)


def test_settlement_lapses_the_other_offers_and_cancellation_closes_the_request(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    financier, rival = chain.organisation(Role.FINANCIER), chain.organisation(Role.FINANCIER)
    invoice, receivable = chain.confirmed_invoice(supplier, buyer)
    for org in (financier, rival):
        chain.mint(org, 5_000_000, token_reference(f"deposit of {org.id}"))
    financing = chain.ledger.financing.functions
    now = chain.ledger.now()
    first = domain_factories.financing_request(invoice, status=FinancingRequestStatus.PENDING)
    db.session.commit()

    chain.send(supplier, financing.requestFinancing(receivable, 900_000, now + 30 * 86_400, False))
    chain.send(supplier, financing.cancelRequest(receivable))
    chain.index()
    assert (first.status, first.round) == (FinancingRequestStatus.CANCELLED, 1)

    second = domain_factories.financing_request(invoice, status=FinancingRequestStatus.PENDING)
    rival_offer = domain_factories.offer(second, rival, status=OfferStatus.PENDING)
    own_offer = domain_factories.offer(second, financier, status=OfferStatus.PENDING)
    db.session.commit()
    chain.send(supplier, financing.requestFinancing(receivable, 900_000, now + 30 * 86_400, False))
    chain.send(rival, financing.makeOffer(receivable, 950_000, now + 20 * 86_400))
    chain.send(financier, financing.makeOffer(receivable, 920_000, now + 20 * 86_400))
    chain.send(financier, financing.fundRequest(receivable))  # outright, at the asking advance
    chain.index()
    assert (second.status, second.round) == (FinancingRequestStatus.FUNDED, 2)
    assert rival_offer.status == OfferStatus.LAPSED
    # Funding at the asking terms used no offer, not even the funder's own (viaOffer false).
    assert own_offer.status == OfferStatus.LAPSED
    assert first.status == FinancingRequestStatus.CANCELLED


def test_repayments_are_recorded_and_the_full_amount_repays(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice, receivable = chain.confirmed_invoice(supplier, buyer, amount_minor=1_000)
    chain.mint(buyer, 1_000, token_reference(f"deposit of {buyer.id}"))
    first = Repayment(invoice=invoice, payer=buyer, amount_minor=300)
    second = Repayment(invoice=invoice, payer=buyer, amount_minor=700)
    db.session.add_all([first, second])
    db.session.commit()

    receipt = chain.send(buyer, chain.ledger.financing.functions.repay(receivable, 300))
    chain.index()
    assert (invoice.repaid_minor, invoice.status) == (300, InvoiceStatus.CONFIRMED)
    assert first.status == RepaymentStatus.RECORDED
    block_time = chain.ledger.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert first.recorded_at == datetime.fromtimestamp(block_time, UTC)

    # The second repayment's row is found through the outbox row that sent it.
    receipt = chain.send(buyer, chain.ledger.financing.functions.repay(receivable, 700))
    db.session.add(ChainTransaction(intent_key=f"repayment:{second.id}:repay", contract=ContractName.FINANCING,
                                    function="repay", args=[], tx_hash="0x" + receipt["transactionHash"].hex(),
                                    subject_type="repayment", subject_id=second.id, status="mined",
                                    raw_tx="0x00", nonce=0))
    db.session.commit()
    chain.index()
    assert (invoice.repaid_minor, invoice.status) == (1_000, InvoiceStatus.REPAID)
    assert second.status == RepaymentStatus.RECORDED
    assert (balance(buyer), balance(supplier)) == (0, 1_000)


def test_delinquency_follows_the_ledger(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice, receivable = chain.confirmed_invoice(supplier, buyer, due_in_days=1)
    due = int(datetime.combine(invoice.due_date, datetime.min.time(), tzinfo=UTC).timestamp())
    chain.travel_past(due)  # no grace period in this deployment

    chain.send(supplier, chain.ledger.financing.functions.markOverdue(receivable))
    chain.index()
    assert invoice.delinquency == Delinquency.OVERDUE

    chain.send(supplier, chain.ledger.financing.functions.markDefaulted(receivable))
    chain.index()
    assert invoice.delinquency == Delinquency.DEFAULTED


def test_mints_and_burns_are_done_and_balances_add_up(indexed_chain: IndexedChain):
    chain = indexed_chain
    financier = chain.organisation(Role.FINANCIER)
    operator_user = domain_factories.user(domain_factories.organisation(Role.OPERATOR, onboarded=False))
    mint_ref, burn_ref = token_reference("deposit 1"), token_reference("withdrawal 1")
    operations = [
        TokenOperation(kind=kind, organisation=financier, amount_minor=amount, reference="0x" + ref.hex(),
                       created_by=operator_user)
        for kind, amount, ref in ((TokenOperationKind.MINT, 1_000, mint_ref), (TokenOperationKind.BURN, 400, burn_ref))
    ]
    db.session.add_all(operations)
    db.session.commit()

    chain.mint(financier, 1_000, mint_ref)
    chain.send(financier, chain.ledger.token.functions.approve(chain.ledger.operator.address, 400))
    chain.ledger.send(chain.ledger.operator, chain.ledger.token.functions.burn(financier.chain_address, 400, burn_ref))
    chain.index()

    assert [operation.status for operation in operations] == [TokenOperationStatus.DONE] * 2
    assert balance(financier) == 600


def test_applied_events_are_announced_once_to_the_organisations_concerned(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    stranger = chain.organisation(Role.BUYER)
    endpoints = [WebhookEndpoint(organisation=org, url="https://example.com/hook", secret="s" * 32,
                                 event_types=["invoice.registered", "invoice.confirmed"]) for org in (buyer, stranger)]
    db.session.add_all(endpoints)
    invoice, receivable = chain.confirmed_invoice(supplier, buyer)
    db.session.commit()

    chain.index()

    deliveries = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.endpoint_id, d.event_type) for d in deliveries] == [
        (endpoints[0].id, "invoice.registered"), (endpoints[0].id, "invoice.confirmed")]
    (confirmed,) = chain.events("ReceivableConfirmed")
    assert deliveries[1].event_id == webhooks.event_id(
        f"chain:{confirmed.chain_id}:{confirmed.tx_hash}:{confirmed.log_index}:invoice.confirmed")
    assert deliveries[1].payload["invoice_id"] == invoice.id
    assert deliveries[1].payload["ledger"]["block_number"] == confirmed.block_number


def test_reset_returns_every_chain_derived_field_to_before_the_chain(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice, _receivable = chain.confirmed_invoice(supplier, buyer)
    chain.mint(buyer, 50, token_reference("deposit for reset"))
    failed = Repayment(invoice=invoice, payer=buyer, amount_minor=5, status=RepaymentStatus.FAILED)
    db.session.add(failed)
    db.session.commit()
    chain.index()
    assert invoice.status == InvoiceStatus.CONFIRMED and buyer.participant_id is not None

    projections.reset()

    assert (invoice.status, invoice.holder_id, invoice.repaid_minor) == (InvoiceStatus.PENDING, supplier.id, 0)
    assert buyer.participant_id is None
    assert db.session.scalars(select(TokenBalance)).all() == []
    assert failed.status == RepaymentStatus.FAILED  # the outbox's verdict stays
    assert invoice.due_date > datetime.now(UTC).date() - timedelta(days=1)  # off-chain facts stay


# ---------------------------------------------------------------------- early payment (no chain needed)


def _fold(*events) -> None:
    view = projections.Projections(31337, block_time=lambda block_hash: 1_900_000_000)
    view.load(list(events))
    for event in events:
        view.apply(event)
    db.session.flush()


def _early_payment_world():
    from backend.services import early_payment

    supplier = domain_factories.organisation(Role.SUPPLIER)
    buyer = domain_factories.organisation(Role.BUYER)
    financier = domain_factories.organisation(Role.FINANCIER)
    invoice = domain_factories.invoice(supplier, buyer, holder=financier, status=InvoiceStatus.CONFIRMED)
    endpoints = [WebhookEndpoint(organisation=org, url="https://example.com/hook", secret="s" * 32,
                                 event_types=["early_payment.offered", "early_payment.settled"])
                 for org in (buyer, financier)]
    db.session.add_all(endpoints)
    offer = early_payment.offer_early_payment(domain_factories.actor(buyer), invoice.id, annual_rate="12",
                                              expiry=datetime.now(UTC) + timedelta(days=20))
    return early_payment, invoice, offer, buyer, financier, endpoints


def _receivable(invoice: Invoice) -> str:
    return str(int(invoice.receivable_id, 16))


def test_early_payment_offered_withdrawn_and_announced(db_session):
    from backend.models import EarlyPaymentOfferStatus

    _service, invoice, offer, buyer, financier, endpoints = _early_payment_world()
    offered = domain_factories.chain_event(
        "EarlyPaymentOffered", {"id": _receivable(invoice), "buyer": buyer.chain_address, "annualRateBps": 1200,
                                "expiry": 1_900_000_000}, block_number=5, contract="Financing")
    _fold(offered)
    assert offer.status == EarlyPaymentOfferStatus.OPEN
    deliveries = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.endpoint_id)).all()
    assert [(d.endpoint_id, d.event_type) for d in deliveries] == [
        (endpoints[0].id, "early_payment.offered"), (endpoints[1].id, "early_payment.offered")]
    assert deliveries[1].payload["annual_rate_bps"] == 1200

    _fold(domain_factories.chain_event("EarlyPaymentWithdrawn", {"id": _receivable(invoice),
                                                                 "buyer": buyer.chain_address},
                                       block_number=6, contract="Financing"))
    assert offer.status == EarlyPaymentOfferStatus.WITHDRAWN


def test_an_early_payment_offer_opens_at_the_terms_the_ledger_holds(db_session):
    """The row is revised in place: when the ledger's event is of an earlier revision than the
    row carries (the later one still on its way, or refused, or a reindex folding old events),
    the open offer is the event's, which is what an acceptance meets."""
    from backend.models import EarlyPaymentOfferStatus

    service, invoice, offer, buyer, _financier, _endpoints = _early_payment_world()
    service.offer_early_payment(domain_factories.actor(buyer), invoice.id, annual_rate="15",
                                expiry=datetime.now(UTC) + timedelta(days=10))
    assert offer.annual_rate_bps == 1500
    _fold(domain_factories.chain_event(
        "EarlyPaymentOffered", {"id": _receivable(invoice), "buyer": buyer.chain_address, "annualRateBps": 1200,
                                "expiry": 1_900_000_000}, block_number=5, contract="Financing"))
    assert (offer.status, offer.annual_rate_bps, offer.expiry) == (
        EarlyPaymentOfferStatus.OPEN, 1200, datetime.fromtimestamp(1_900_000_000, UTC))


def test_an_early_settlement_repays_in_full_and_records_what_was_paid(db_session):
    from backend.models import EarlyPaymentOfferStatus

    service, invoice, offer, buyer, financier, _endpoints = _early_payment_world()
    offer.status = EarlyPaymentOfferStatus.OPEN  # its offerEarlyPayment mined in block 4, and indexed
    offering = db.session.scalars(select(ChainTransaction).where(
        ChainTransaction.function == "offerEarlyPayment")).one()
    offering.status, offering.raw_tx, offering.tx_hash, offering.nonce, offering.block_number = (
        ChainTransactionStatus.MINED, "0x00", "0x" + "cd" * 32, 0, 4)
    db.session.add_all(IndexerCursor(chain_id=31337, contract=contract, block_number=6, block_hash="0x" + "11" * 32)
                       for contract in ContractName)
    service.accept_early_payment(domain_factories.actor(financier), offer.id, discount_seen="200.00")
    accepting = db.session.scalars(select(ChainTransaction).where(
        ChainTransaction.function == "acceptEarlyPayment")).one()
    tx_hash = "0x" + "ab" * 32
    accepting.status, accepting.raw_tx, accepting.tx_hash, accepting.nonce = "sent", "0x00", tx_hash, 0
    # A pending repayment of the same amount that this transaction did not carry stays pending.
    other = Repayment(invoice=invoice, payer=buyer, amount_minor=1_000_000, status=RepaymentStatus.PENDING)
    db.session.add(other)
    db.session.flush()

    recorded = domain_factories.chain_event(
        "RepaymentRecorded", {"id": _receivable(invoice), "amount": 1_000_000, "repaidTotal": 1_000_000},
        block_number=7, tx_hash=tx_hash)
    settled = domain_factories.chain_event(
        "EarlyPaymentSettled", {"id": _receivable(invoice), "buyer": buyer.chain_address,
                                "holder": financier.chain_address, "paid": 980_300, "discount": 19_700},
        block_number=7, contract="Financing", tx_hash=tx_hash)
    _fold(recorded, settled)

    assert (invoice.status, invoice.repaid_minor) == (InvoiceStatus.REPAID, 1_000_000)
    assert (offer.status, offer.paid_minor, offer.discount_minor) == (EarlyPaymentOfferStatus.ACCEPTED, 980_300,
                                                                      19_700)
    assert offer.repayment.status == RepaymentStatus.RECORDED
    assert offer.repayment.recorded_at == datetime.fromtimestamp(1_900_000_000, UTC)
    assert other.status == RepaymentStatus.PENDING
    settled_deliveries = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.event_type == "early_payment.settled")).all()
    assert {d.payload["paid_minor"] for d in settled_deliveries} == {980_300}
    assert len(settled_deliveries) == 2  # the buyer and the holder

    projections.reset()

    assert (offer.status, offer.paid_minor, offer.discount_minor) == (EarlyPaymentOfferStatus.PENDING, None, None)
    assert offer.repayment.status == RepaymentStatus.PENDING
    assert offer.annual_rate_bps == 1200  # the terms are the buyer's, off the ledger


def test_a_payable_repaid_in_full_otherwise_lapses_its_early_payment_offer(db_session):
    from backend.models import EarlyPaymentOfferStatus

    _service, invoice, offer, _buyer, _financier, _endpoints = _early_payment_world()
    offer.status = EarlyPaymentOfferStatus.OPEN
    _fold(domain_factories.chain_event(
        "RepaymentRecorded", {"id": _receivable(invoice), "amount": 1_000_000, "repaidTotal": 1_000_000},
        block_number=8))
    assert (invoice.status, offer.status) == (InvoiceStatus.REPAID, EarlyPaymentOfferStatus.LAPSED)
