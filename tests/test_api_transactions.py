"""The ledger writes API (backend/api/transactions.py): an organisation sees the writes its key
signs, the operator and the auditor see all of them, anyone else gets 404; lists page and
filter; a refused write shows its custom error, a batched one the transaction carrying it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName, Role
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, problem_code

Status = ChainTransactionStatus


@dataclass(frozen=True)
class Writes:
    supplier: Credentials
    buyer: Credentials
    operator: Credentials
    auditor: Credentials
    carrier_id: int  # the supplier's batch, mined
    member_ids: list[int]  # batched into it
    refused_id: int  # the buyer's confirmation, reverted
    operator_id: int  # an operator's mint, queued


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writes(app: Flask) -> Writes:
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        mined_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        carrier = ChainTransaction(intent_key="carrier:register:2-3", signer=supplier,
                                   contract=ContractName.RECEIVABLE_REGISTRY, function="registerBatch", args=[[]],
                                   status=Status.MINED, raw_tx="0x01", tx_hash="0x" + "aa" * 32, nonce=7,
                                   chain_id=31337, sender=supplier.chain_address, block_number=12, mined_at=mined_at)
        db.session.add(carrier)
        db.session.flush()
        members = [ChainTransaction(intent_key=f"invoice:{n}:register", signer=supplier,
                                    contract=ContractName.RECEIVABLE_REGISTRY, function="register", args=[[]],
                                    status=Status.BATCHED, carried_by_id=carrier.id, block_number=12)
                   for n in (2, 3)]
        refused = ChainTransaction(intent_key="invoice:2:confirm:1", signer=buyer,
                                   contract=ContractName.RECEIVABLE_REGISTRY, function="confirm", args=["0x01"],
                                   status=Status.REVERTED, error_name="NotConfirmed",
                                   error="refused at its gas estimate: NotConfirmed(1, 0)",
                                   subject_type="invoice", subject_id=2)
        minted = ChainTransaction(intent_key="token_operation:1:mint", signer=None,
                                  contract=ContractName.SETTLEMENT_TOKEN, function="mint", args=[],
                                  subject_type="token_operation", subject_id=1)
        db.session.add_all([*members, refused, minted])
        db.session.commit()
        return Writes(
            supplier=api_support.issue_api_key(supplier, scopes=("read",)),
            buyer=api_support.issue_api_key(buyer),
            operator=api_support.issue_api_key(factories.organisation(Role.OPERATOR, onboarded=False)),
            auditor=api_support.issue_api_key(factories.organisation(Role.AUDITOR)),
            carrier_id=carrier.id,
            member_ids=[member.id for member in members],
            refused_id=refused.id,
            operator_id=minted.id,
        )


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.json["items"]]


def test_an_organisation_lists_the_writes_its_key_signs(client: FlaskClient, writes: Writes):
    assert ids(client.get("/api/v1/transactions", headers=writes.supplier.headers)) == [
        writes.carrier_id, *writes.member_ids]
    assert ids(client.get("/api/v1/transactions", headers=writes.buyer.headers)) == [writes.refused_id]


@pytest.mark.parametrize("reader", ["operator", "auditor"])
def test_the_operator_and_the_auditor_see_every_write(client: FlaskClient, writes: Writes, reader: str):
    headers = getattr(writes, reader).headers
    assert ids(client.get("/api/v1/transactions", headers=headers)) == [
        writes.carrier_id, *writes.member_ids, writes.refused_id, writes.operator_id]
    assert client.get(f"/api/v1/transactions/{writes.operator_id}", headers=headers).json["signer_id"] is None


def test_a_write_of_another_organisation_is_not_found(client: FlaskClient, writes: Writes, app: Flask):
    for transaction_id in (writes.refused_id, writes.operator_id, 10_000):
        response = client.get(f"/api/v1/transactions/{transaction_id}", headers=writes.supplier.headers)
        assert response.status_code == 404 and problem_code(response) == "not-found"
    stranger = api_support.caller(app, Role.FINANCIER)
    assert ids(client.get("/api/v1/transactions", headers=stranger.headers)) == []


def test_a_refused_write_shows_its_custom_error(client: FlaskClient, writes: Writes):
    body = client.get(f"/api/v1/transactions/{writes.refused_id}", headers=writes.buyer.headers).json
    assert body["status"] == "reverted" and body["error_name"] == "NotConfirmed"
    assert body["error"] == "refused at its gas estimate: NotConfirmed(1, 0)"
    assert (body["tx_hash"], body["nonce"], body["block_number"], body["carried_by"]) == (None, None, None, None)
    assert (body["contract"], body["function"], body["intent_key"]) == (
        "ReceivableRegistry", "confirm", "invoice:2:confirm:1")


def test_a_batched_write_names_the_transaction_carrying_it(client: FlaskClient, writes: Writes):
    member = client.get(f"/api/v1/transactions/{writes.member_ids[0]}", headers=writes.supplier.headers).json
    carrier = client.get(f"/api/v1/transactions/{writes.carrier_id}", headers=writes.supplier.headers).json
    assert member["status"] == "batched" and member["carried_by"] == writes.carrier_id
    assert carrier["status"] == "mined" and carrier["carried_by"] is None
    assert (carrier["tx_hash"], carrier["nonce"], carrier["block_number"]) == ("0x" + "aa" * 32, 7, 12)
    assert carrier["mined_at"] == "2026-01-02T03:04:05+00:00" and carrier["sent_at"] is None


def test_lists_filter_by_status_and_subject_and_page(client: FlaskClient, writes: Writes):
    headers = writes.operator.headers
    assert ids(client.get("/api/v1/transactions?status=batched", headers=headers)) == writes.member_ids
    assert ids(client.get("/api/v1/transactions?subject_type=invoice&subject_id=2", headers=headers)) == [
        writes.refused_id]
    first = client.get("/api/v1/transactions?limit=2", headers=headers)
    second = client.get(f"/api/v1/transactions?limit=2&cursor={first.json['next_cursor']}", headers=headers)
    assert ids(first) + ids(second) == [writes.carrier_id, *writes.member_ids, writes.refused_id]
    bad = client.get("/api/v1/transactions?status=lost", headers=headers)
    assert bad.status_code == 422 and problem_code(bad) == "invalid-input"
