"""The schedules (backend/services/schedules.py, workers/schedules.py): due and maturity
announcements, overdue and default marking, expiry of requests and offers, the purge of
idempotency records, and reconciliation against a ledger on anvil. Each rule is run twice, and
twice at once, to show it does its work once."""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from flask import Flask
from sqlalchemy import select, update
from web3 import HTTPProvider, Web3

from backend.chain.client import LedgerClient
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    IdempotencyRecord,
    IndexerCursor,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    ReconciliationRun,
    ReconciliationStatus,
    Role,
    TokenBalance,
    WebhookDelivery,
)
from backend.services import outbox, schedules, webhooks
from tests import domain_factories as factories
from tests.indexer_fixtures import indexed_chain, token_reference  # noqa: F401 (a fixture)
from workers import schedules as schedule_tasks

DAY = timedelta(days=1)


def subscribe(org, *event_types: str) -> None:
    webhooks.create_endpoint(factories.actor(org), url="https://receiver.example.com/", event_types=list(event_types))


def invoice_due_in(days: int, *, supplier=None, buyer=None, **options) -> Invoice:
    """A confirmed invoice due `days` from today (negative: in the past)."""
    supplier = supplier or factories.organisation(Role.SUPPLIER)
    buyer = buyer or factories.organisation(Role.BUYER)
    return factories.invoice(supplier, buyer, due_in_days=days, issue_date=date.today() - timedelta(days=90),
                             **options)


def deliveries(event_type: str) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_type == event_type)
                                   .order_by(WebhookDelivery.id)))


def in_threads(app: Flask, run: Callable[[], object], count: int = 2) -> None:
    """Runs `run` in `count` threads at once, each in an application context of its own."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            with app.app_context():
                run()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


# ---------------------------------------------------------------- due and maturity


def test_due_unpaid_receivables_are_announced_once(db_session):
    buyer, financier = factories.organisation(Role.BUYER), factories.organisation(Role.FINANCIER)
    subscribe(buyer, "invoice.due")
    subscribe(financier, "invoice.due")
    due_today = invoice_due_in(0, buyer=buyer)
    sold = invoice_due_in(-2, buyer=buyer, holder=financier)
    invoice_due_in(1, buyer=buyer)  # not due yet
    invoice_due_in(-1, buyer=buyer, status=InvoiceStatus.REPAID)  # paid
    overdue = invoice_due_in(-9, buyer=buyer)
    overdue.delinquency = Delinquency.OVERDUE  # announced as overdue by the indexer instead
    db.session.commit()

    assert schedules.announce_due_invoices() == 3  # the buyer twice, the financier once
    assert schedules.announce_due_invoices() == 0

    announced = {(d.endpoint.organisation_id, d.payload["invoice_id"]) for d in deliveries("invoice.due")}
    assert announced == {(buyer.id, due_today.id), (buyer.id, sold.id), (financier.id, sold.id)}
    payload = next(d.payload for d in deliveries("invoice.due") if d.payload["invoice_id"] == due_today.id)
    assert payload["due_date"] == date.today().isoformat()
    assert payload["outstanding_minor"] == due_today.amount_minor
    assert {d.event_id for d in deliveries("invoice.due") if d.payload["invoice_id"] == sold.id} == {
        webhooks.event_id(f"invoice:{sold.id}:due")}


def test_two_runs_at_once_announce_once(app):
    with app.app_context():
        buyer = factories.organisation(Role.BUYER)
        subscribe(buyer, "invoice.due")
        for _ in range(20):
            invoice_due_in(0, buyer=buyer)
        db.session.commit()
    in_threads(app, schedules.announce_due_invoices, count=3)
    with app.app_context():
        assert len(deliveries("invoice.due")) == 20


def test_buyers_are_reminded_once_within_the_reminder_days(db_session, app):
    app.config["MATURITY_REMINDER_DAYS"] = 7
    buyer, supplier = factories.organisation(Role.BUYER), factories.organisation(Role.SUPPLIER)
    subscribe(buyer, "invoice.maturity_reminder")
    soon = invoice_due_in(7, buyer=buyer, supplier=supplier)
    invoice_due_in(8, buyer=buyer, supplier=supplier)  # not yet within the window
    invoice_due_in(0, buyer=buyer, supplier=supplier)  # due already: announced as due instead
    db.session.commit()

    assert schedules.send_maturity_reminders() == 1
    assert schedules.send_maturity_reminders() == 0
    (reminder,) = deliveries("invoice.maturity_reminder")
    assert (reminder.payload["invoice_id"], reminder.payload["days_to_maturity"]) == (soon.id, 7)
    assert reminder.endpoint.organisation_id == buyer.id


# ---------------------------------------------------------------- overdue and default


def test_overdue_and_defaulted_are_queued_for_the_holder_once_their_periods_pass(db_session, app):
    app.config["GRACE_PERIOD_SECONDS"] = 5 * 86_400
    app.config["DEFAULT_PERIOD_SECONDS"] = 30 * 86_400
    financier = factories.organisation(Role.FINANCIER)
    past_grace = invoice_due_in(-6, holder=financier)
    invoice_due_in(-4, holder=financier)  # its grace period ends at 00:00 tomorrow
    past_default = invoice_due_in(-36)
    past_default.delinquency = Delinquency.OVERDUE
    not_defaultable = invoice_due_in(-34)
    not_defaultable.delinquency = Delinquency.OVERDUE
    db.session.commit()

    assert schedules.mark_delinquent_invoices() == [past_grace.id, past_default.id]
    assert schedules.mark_delinquent_invoices() == []  # both on their way

    rows = factories.outbox_rows()
    assert [(row.intent_key, row.function, row.signer_id, row.args) for row in rows] == [
        (f"invoice:{past_grace.id}:markOverdue:1", "markOverdue", financier.id, [past_grace.receivable_id]),
        (f"invoice:{past_default.id}:markDefaulted:1", "markDefaulted", past_default.holder_id,
         [past_default.receivable_id]),
    ]
    assert {(entry.action, entry.request_id) for entry in factories.audit_entries()} == {
        ("invoice.mark_overdue", "schedule"), ("invoice.mark_defaulted", "schedule")}


def test_a_refused_mark_is_queued_again_only_after_a_while(db_session, app):
    app.config["GRACE_PERIOD_SECONDS"] = 0
    invoice = invoice_due_in(-1)
    db.session.commit()
    assert schedules.mark_delinquent_invoices() == [invoice.id]
    row = factories.only_outbox_row()
    row.status, row.nonce, row.raw_tx, row.tx_hash = ChainTransactionStatus.REVERTED, 0, "0x00", "0x" + "ab" * 32
    db.session.commit()

    assert schedules.mark_delinquent_invoices() == []
    db.session.execute(update(ChainTransaction).values(updated_at=datetime.now(timezone.utc) - 2 * schedules.RETRY_REFUSED_AFTER))
    db.session.commit()
    assert schedules.mark_delinquent_invoices() == [invoice.id]
    assert factories.outbox_rows()[-1].intent_key == f"invoice:{invoice.id}:markOverdue:2"


def test_holders_that_cannot_act_are_skipped(db_session, app):
    app.config["GRACE_PERIOD_SECONDS"] = 0
    invoice_due_in(-1, holder=factories.organisation(Role.FINANCIER, suspended=True))
    invoice_due_in(-1, holder=factories.organisation(Role.FINANCIER, onboarded=False))
    db.session.commit()
    assert schedules.mark_delinquent_invoices() == []
    assert factories.count(ChainTransaction) == 0


def test_skipped_rows_do_not_keep_later_ones_from_their_turn(db_session, app, monkeypatch):
    monkeypatch.setattr(schedules, "BATCH", 1)
    app.config["GRACE_PERIOD_SECONDS"] = 0
    invoice_due_in(-1, holder=factories.organisation(Role.FINANCIER, suspended=True))
    eligible = invoice_due_in(-1)
    db.session.commit()
    assert schedules.mark_delinquent_invoices() == [eligible.id]


def test_two_runs_at_once_queue_one_mark(app):
    app.config["GRACE_PERIOD_SECONDS"] = 0
    with app.app_context():
        invoice_due_in(-1)
        db.session.commit()
    in_threads(app, schedules.mark_delinquent_invoices)
    with app.app_context():
        assert [row.function for row in factories.outbox_rows()] == ["markOverdue"]


# ---------------------------------------------------------------- expiry


def test_requests_past_their_deadline_are_expired_on_the_ledger_by_the_operator(db_session):
    expired = factories.financing_request(invoice_due_in(60), deadline_in_days=-1)
    factories.financing_request(invoice_due_in(60), deadline_in_days=1)
    db.session.commit()

    assert schedules.expire_financing_requests() == [expired.id]
    assert schedules.expire_financing_requests() == []
    row = factories.only_outbox_row()
    assert (row.intent_key, row.contract, row.function, row.signer_id, row.args) == (
        f"financing_request:{expired.id}:expire:1", ContractName.FINANCING, "expireRequest", None,
        [expired.invoice.receivable_id])
    entry = factories.only_audit_entry()
    assert (entry.action, entry.actor_organisation_id, entry.subject_id) == ("financing.expire", None,
                                                                             str(expired.id))


def test_a_request_with_an_acceptance_on_its_way_is_not_expired(db_session):
    request = factories.financing_request(invoice_due_in(60), deadline_in_days=-1)
    offer = factories.offer(request, factories.organisation(Role.FINANCIER), expiry_in_days=-1)
    outbox.enqueue(intent_key=f"offer:{offer.id}:accept", signer=request.seller, contract=ContractName.FINANCING,
                   function="acceptOffer", args=[], subject_type="offer", subject_id=offer.id)
    db.session.commit()

    assert schedules.expire_financing_requests() == []
    assert schedules.lapse_expired_offers() == []  # the acceptance may have been mined in time
    assert offer.status == OfferStatus.OPEN


def test_two_runs_at_once_queue_one_expiry(app):
    with app.app_context():
        factories.financing_request(invoice_due_in(60), deadline_in_days=-1)
        db.session.commit()
    in_threads(app, schedules.expire_financing_requests)
    with app.app_context():
        assert [row.function for row in factories.outbox_rows()] == ["expireRequest"]


def test_open_offers_past_expiry_lapse_and_their_financier_is_told(db_session):
    financier = factories.organisation(Role.FINANCIER)
    subscribe(financier, "financing.expired")
    request = factories.financing_request(invoice_due_in(60))
    expired = factories.offer(request, financier, expiry_in_days=-1)
    pending = factories.offer(request, factories.organisation(Role.FINANCIER), expiry_in_days=-1,
                              status=OfferStatus.PENDING)
    standing = factories.offer(request, factories.organisation(Role.FINANCIER), expiry_in_days=1)
    db.session.commit()

    assert schedules.lapse_expired_offers() == [expired.id]
    assert schedules.lapse_expired_offers() == []
    db.session.expire_all()
    statuses = {offer.id: offer.status for offer in db.session.scalars(select(Offer))}
    assert statuses == {expired.id: OfferStatus.LAPSED, pending.id: OfferStatus.PENDING,
                        standing.id: OfferStatus.OPEN}
    (told,) = deliveries("financing.expired")
    assert (told.payload["offer_id"], told.payload["status"]) == (expired.id, "lapsed")
    entry = factories.last_audit_entry()  # after the endpoint's creation
    assert (entry.action, entry.before, entry.after) == ("offer.lapse", {"status": "open"}, {"status": "lapsed"})


def test_two_runs_at_once_lapse_an_offer_once(app):
    with app.app_context():
        financier = factories.organisation(Role.FINANCIER)
        subscribe(financier, "financing.expired")
        factories.offer(factories.financing_request(invoice_due_in(60)), financier, expiry_in_days=-1)
        db.session.commit()
    in_threads(app, schedules.lapse_expired_offers)
    with app.app_context():
        assert [entry.action for entry in factories.audit_entries()] == ["webhook.create", "offer.lapse"]
        assert len(deliveries("financing.expired")) == 1


# ---------------------------------------------------------------- the tasks


def test_the_purge_task_deletes_expired_idempotency_records(db_session):
    now = datetime.now(timezone.utc)
    for key, expires_at in (("old", now - DAY), ("fresh", now + DAY)):
        db.session.add(IdempotencyRecord(principal="apikey:1", key=key, request_fingerprint="0" * 64,
                                         expires_at=expires_at))
    db.session.commit()

    assert schedule_tasks.purge_idempotency_records() == 1
    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["fresh"]


def test_the_beat_runs_each_schedule():
    entries = schedule_tasks.periodic_tasks({"RECONCILE_INTERVAL_SECONDS": 3600})
    assert {entry["task"] for entry in entries.values()} == {
        f"workers.schedules.{name}" for name in ("announce_due_invoices", "send_maturity_reminders",
                                                 "mark_delinquent_invoices", "expire_financing",
                                                 "reconcile_ledger", "purge_idempotency_records",
                                                 "screen_organisations")}
    assert entries["schedules.reconcile"]["schedule"] == 3600
    assert all(entry["schedule"] <= 5 for name, entry in entries.items()
               if name not in ("schedules.reconcile", "schedules.purge_idempotency", "schedules.screening"))
    assert entries["schedules.screening"]["schedule"] == 86_400


# ---------------------------------------------------------------- reconciliation


def test_reconciliation_is_clean_when_the_database_matches_the_ledger_and_names_each_drift(indexed_chain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    first, _ = chain.confirmed_invoice(supplier, buyer)
    second, _ = chain.confirmed_invoice(supplier, buyer)
    chain.mint(buyer, 5_000, token_reference("reconcile deposit"))
    for invoice in (first, second):
        invoice.status = InvoiceStatus.CONFIRMED
    db.session.add(TokenBalance(chain_id=chain.anvil.chain_id, address=buyer.chain_address, balance_minor=5_000))
    db.session.commit()

    clean = schedules.reconcile(chain.ledger)
    assert (clean.status, clean.drift, clean.error) == (ReconciliationStatus.CLEAN, [], None)
    assert clean.checked == 4  # two receivables, two balances
    assert clean.block_number == chain.anvil.w3.eth.block_number and clean.finished_at is not None

    second.status = InvoiceStatus.REPAID
    second.repaid_minor = 1
    db.session.execute(update(TokenBalance).values(balance_minor=4_000))
    db.session.commit()
    drifted = schedules.reconcile(chain.ledger)
    assert drifted.status == ReconciliationStatus.DRIFT
    assert sorted(drifted.drift, key=lambda entry: (entry["subject"], entry["field"])) == [
        {"subject": f"balance:{buyer.chain_address}", "field": "balance_minor", "database": 4_000, "ledger": 5_000},
        {"subject": f"invoice:{second.id}", "field": "repaid_minor", "database": 1, "ledger": 0},
        {"subject": f"invoice:{second.id}", "field": "status", "database": "repaid", "ledger": "confirmed"},
    ]
    assert db.session.scalars(select(ReconciliationRun.status).order_by(ReconciliationRun.id)).all() == [
        ReconciliationStatus.CLEAN, ReconciliationStatus.DRIFT]


def test_reconciliation_compares_at_the_block_the_indexer_has_read(indexed_chain):
    """A receivable registered after the block the indexer read up to is not drift yet."""
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    read_up_to = chain.anvil.w3.eth.block_number
    for contract in ContractName:
        db.session.add(IndexerCursor(chain_id=chain.anvil.chain_id, contract=contract, block_number=read_up_to,
                                     block_hash="0x" + "00" * 32))
    chain.register(invoice)
    invoice.status = InvoiceStatus.REGISTERED  # as if read: but the cursor says otherwise
    db.session.commit()

    run = schedules.reconcile(chain.ledger)
    assert run.block_number == read_up_to
    assert run.drift == [{"subject": f"invoice:{invoice.id}", "field": "status", "database": "registered",
                          "ledger": "none"}]


def test_reconciliation_records_a_failure_when_the_node_stops_answering(indexed_chain, unused_port):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice, _ = chain.confirmed_invoice(supplier, buyer)
    invoice.status = InvoiceStatus.CONFIRMED
    db.session.commit()
    unreachable = LedgerClient(Web3(HTTPProvider(f"http://127.0.0.1:{unused_port()}", request_kwargs={"timeout": 2})),
                               chain.ledger.deployment)

    run = schedules.reconcile(unreachable)
    assert run.status == ReconciliationStatus.FAILED and "ConnectionError" in run.error
    assert run.finished_at is not None
