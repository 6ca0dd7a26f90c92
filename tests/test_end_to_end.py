"""End to end, in one process: every step an API call, the workers' passes (outbox sender,
receipt tracker, indexer) run in turn until the API shows the state the ledger's events give,
on SQLite and on PostgreSQL, against the session's anvil.

`tests/test_stack.py` proves the same lifecycle through `anchorline up` with real processes;
this file pins each state transition to the API's own answers, and checks that the database
then equals what `anchorline reindex` rebuilds from the chain.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import EarlyPaymentOffer, Organisation, Role
from backend.services import early_payment
from tests import domain_factories as factories
from tests.api_support import Credentials, issue_api_key
from tests.indexer_fixtures import projection_state
from tests.outbox_fixtures import OutboxChain, signing_organisation, wait_until
from workers import indexer, outbox

pytestmark = pytest.mark.anvil

CURRENCY = "CNY"


class Market:
    """The API as each participant calls it, and the workers' passes that carry a call to the
    ledger and back."""

    def __init__(self, app: Flask, keys: dict[str, Credentials], ids: dict[str, int]) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.keys = keys
        self.ids = ids

    def post(self, role: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.client.post(f"/api/v1{path}", json=body or {}, headers=self.keys[role].headers)
        assert answer.status_code in (201, 202), answer.get_data(as_text=True)
        return answer.json

    def get(self, role: str, path: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/v1{path}", headers=self.keys[role].headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.json

    def work_until(self, role: str, path: str, done: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Run the workers' passes until GET `path` (as `role`) satisfies `done`; return it."""
        def settled() -> dict[str, Any] | None:
            outbox.submit_queued_once(self.app)
            outbox.track_receipts_once(self.app)
            indexer.index_once(self.app)
            found = self.get(role, path)
            return found if done(found) else None

        return wait_until(settled, what=what)


@pytest.fixture
def market(outbox_app: Flask, outbox_chain: OutboxChain) -> Market:
    """A supplier, a buyer and a financier whose keys are onboarded on the chain (their
    participant ids still to be read by the indexer), an operator, and an API key each."""
    with outbox_app.app_context():
        parties: dict[str, Organisation] = {
            "supplier": signing_organisation(Role.SUPPLIER, outbox_chain.suppliers[0]),
            "buyer": signing_organisation(Role.BUYER, outbox_chain.buyer),
            "financier": signing_organisation(Role.FINANCIER, outbox_chain.financier),
        }
        for organisation in parties.values():
            organisation.participant_id = None  # known once the indexer reads the onboarding
        operator = factories.organisation(Role.OPERATOR, onboarded=False)
        keys = {role: issue_api_key(organisation) for role, organisation in parties.items()}
        keys["operator"] = issue_api_key(operator, created_by=factories.user(operator))
        ids = {role: organisation.id for role, organisation in parties.items()}
    return Market(outbox_app, keys, ids)


def test_a_receivable_goes_from_api_calls_through_the_ledger_to_the_indexed_state_and_reindex_agrees(
    market: Market, outbox_app: Flask
) -> None:
    ids = market.ids
    for role in ("supplier", "buyer", "financier"):
        market.work_until("operator", f"/organisations/{ids[role]}", lambda o: o["participant_id"] is not None,
                          f"the {role}'s onboarding read by the indexer")

    for role, amount in (("financier", "5000.00"), ("buyer", "1000.00")):
        mint = market.post("operator", "/token-operations", {
            "kind": "mint", "organisation_id": ids[role], "amount": amount, "currency": CURRENCY,
            "reference": f"e2e-deposit-{uuid.uuid4().hex}"})
        market.work_until("operator", f"/token-operations/{mint['id']}", lambda o: o["status"] == "done",
                          f"the mint to the {role}")

    today = date.today()
    invoice = market.post("supplier", "/invoices", {
        "invoice_number": f"E2E-{uuid.uuid4().hex[:10]}", "buyer": ids["buyer"], "amount": "1000.00",
        "currency": CURRENCY, "issue_date": today.isoformat(), "due_date": (today + timedelta(days=60)).isoformat()})
    assert invoice["status"] == "pending"
    path = f"/invoices/{invoice['id']}"
    # Registered once the indexer applied the event; the write stays listed as pending until the
    # outbox has recorded its receipt too (either may come first).
    registered = market.work_until("supplier", path, lambda i: i["status"] == "registered" and not i["pending_actions"],
                                   "the registration")
    assert registered["holder_id"] == ids["supplier"]

    market.post("buyer", f"{path}/confirm")
    assert market.get("buyer", path)["status"] == "registered"  # the API never runs ahead of the ledger
    market.work_until("buyer", path, lambda i: i["status"] == "confirmed", "the buyer's confirmation")

    now = datetime.now(UTC)
    request = market.post("supplier", f"{path}/financing-requests", {
        "asking_advance": "950.00", "currency": CURRENCY, "deadline": (now + timedelta(days=7)).isoformat(),
        "recourse": False})
    request_path = f"/financing-requests/{request['id']}"
    market.work_until("supplier", request_path, lambda r: r["status"] == "open", "the financing request")

    offer = market.post("financier", f"{request_path}/offers", {
        "advance": "960.00", "currency": CURRENCY, "expiry": (now + timedelta(days=6)).isoformat()})
    market.work_until("financier", f"/offers/{offer['id']}", lambda o: o["status"] == "open", "the offer")

    market.post("supplier", f"/offers/{offer['id']}/accept", {"advance": "960.00", "currency": CURRENCY})
    funded = market.work_until("supplier", request_path, lambda r: r["status"] == "funded", "the settlement")
    assert funded["status"] == "funded"
    assert market.get("financier", path)["holder_id"] == ids["financier"]
    assert market.get("financier", f"/offers/{offer['id']}")["status"] == "accepted"

    repayment = market.post("buyer", f"{path}/repayments", {"amount": "1000.00", "currency": CURRENCY})
    market.work_until("buyer", f"/repayments/{repayment['id']}", lambda r: r["status"] == "recorded", "the repayment")
    repaid = market.work_until("financier", path, lambda i: i["status"] == "repaid", "the repaid invoice")
    assert repaid["holder_id"] == ids["financier"]

    # Every write the API accepted went to the chain once, and was mined.
    transactions = market.get("operator", f"/transactions?invoice_id={invoice['id']}&limit=100")["items"]
    assert sorted(row["function"] for row in transactions) == sorted(
        ["register", "confirm", "requestFinancing", "makeOffer", "acceptOffer", "repay"])
    assert {row["status"] for row in transactions} <= {"mined", "batched"}

    with outbox_app.app_context():
        before = projection_state()
        indexer.reindex(outbox_app)
        db.session.expire_all()
        assert projection_state() == before



def test_an_early_payment_settles_at_the_ledgers_discount_within_the_quote_and_reindex_agrees(
    market: Market, outbox_app: Flask, outbox_chain: OutboxChain
) -> None:
    """The buyer's offer, the holder's acceptance at the discount it was quoted, and the
    settlement: the ledger's discount is the service's formula at the block's time, no more
    than the quote; the receivable is repaid in full by one recorded repayment."""
    ids = market.ids
    for role in ("supplier", "buyer"):
        market.work_until("operator", f"/organisations/{ids[role]}", lambda o: o["participant_id"] is not None,
                          f"the {role}'s onboarding read by the indexer")
    mint = market.post("operator", "/token-operations", {
        "kind": "mint", "organisation_id": ids["buyer"], "amount": "1000.00", "currency": CURRENCY,
        "reference": f"e2e-deposit-{uuid.uuid4().hex}"})
    market.work_until("operator", f"/token-operations/{mint['id']}", lambda o: o["status"] == "done", "the mint")
    today = date.today()
    due = today + timedelta(days=60)
    invoice = market.post("supplier", "/invoices", {
        "invoice_number": f"E2E-{uuid.uuid4().hex[:10]}", "buyer": ids["buyer"], "amount": "1000.00",
        "currency": CURRENCY, "issue_date": today.isoformat(), "due_date": due.isoformat()})
    path = f"/invoices/{invoice['id']}"
    market.work_until("supplier", path, lambda i: i["status"] == "registered" and not i["pending_actions"],
                      "the registration")
    market.post("buyer", f"{path}/confirm")
    market.work_until("buyer", path, lambda i: i["status"] == "confirmed", "the buyer's confirmation")

    market.post("buyer", f"{path}/early-payment-offer", {
        "annual_rate": "12", "expiry": (datetime.now(UTC) + timedelta(days=20)).isoformat()})
    offer_path = f"{path}/early-payment-offer"
    quoted = market.work_until("supplier", offer_path, lambda o: o["status"] == "open", "the early payment offer")
    market.post("supplier", f"{offer_path}/accept", {"discount_seen": quoted["quote"]["discount"]})
    settled = market.work_until("supplier", offer_path, lambda o: o["status"] == "accepted", "the early settlement")

    [accepting] = [row for row in market.get("operator", f"/transactions?invoice_id={invoice['id']}&limit=100")["items"]
                   if row["function"] == "acceptEarlyPayment"]
    block_time = outbox_chain.ledger.w3.eth.get_block(accepting["block_number"])["timestamp"]
    due_seconds = int(datetime.combine(due, datetime.min.time(), UTC).timestamp())
    assert settled["discount_minor"] == early_payment.discount_minor(100_000, 1200, due_seconds - block_time)
    assert 0 < settled["discount_minor"] <= quoted["quote"]["discount_minor"]
    assert settled["paid_minor"] + settled["discount_minor"] == 100_000
    repaid = market.get("supplier", path)
    assert (repaid["status"], repaid["holder_id"]) == ("repaid", ids["supplier"])
    repayments = market.get("buyer", f"/repayments?invoice_id={invoice['id']}")["items"]
    assert [(row["id"], row["amount"], row["status"]) for row in repayments] == [
        (settled["repayment_id"], "1000.00", "recorded")]

    with outbox_app.app_context():
        before = projection_state()
        def offer_state() -> tuple[Any, ...]:
            row = db.session.get(EarlyPaymentOffer, settled["id"])
            return row.status, row.annual_rate_bps, row.expiry, row.paid_minor, row.discount_minor, row.repayment_id

        offer_before = offer_state()
        indexer.reindex(outbox_app)
        db.session.expire_all()
        assert projection_state() == before
        assert offer_state() == offer_before
