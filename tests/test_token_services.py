"""Minting and burning settlement tokens (backend/services/tokens.py)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    AuditLog,
    ChainTransaction,
    ContractName,
    IndexerCursor,
    KycStatus,
    Role,
    TokenBalance,
    TokenOperation,
    TokenOperationKind,
    TokenOperationStatus,
)
from backend.services import tokens
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories
from tests.domain_factories import count


@pytest.fixture
def operator(db_session) -> Actor:
    return factories.operator()


@pytest.fixture
def financier(db_session):
    return factories.committed_organisation(Role.FINANCIER)


def writes() -> tuple[int, int, int]:
    return count(TokenOperation), count(ChainTransaction), count(AuditLog)


def digest(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("operate", "kind", "function"), [
    (tokens.mint, TokenOperationKind.MINT, "mint"),
    (tokens.burn, TokenOperationKind.BURN, "burn"),
])
def test_an_operation_is_recorded_pending_and_queued_for_the_token(operator, financier, operate, kind, function):
    operation = operate(operator, financier, amount_minor=500_000, reference=" BANK-2024-0001 ")

    assert (operation.kind, operation.organisation_id, operation.amount_minor, operation.status) == (
        kind, financier.id, 500_000, TokenOperationStatus.PENDING)
    assert operation.reference == digest("BANK-2024-0001")
    assert operation.created_by_id == operator.user.id
    (intent,) = db.session.scalars(select(ChainTransaction)).all()
    assert (intent.intent_key, intent.contract, intent.function, intent.signer_id) == (
        f"token_operation:{operation.id}:{function}", ContractName.SETTLEMENT_TOKEN, function, None)
    assert intent.args == [financier.chain_address, 500_000, digest("BANK-2024-0001")]
    (entry,) = db.session.scalars(select(AuditLog)).all()
    assert (entry.action, entry.subject_type, entry.subject_id) == (
        f"token.{function}", "token_operation", str(operation.id))
    assert entry.after == {"kind": function, "organisation_id": financier.id, "amount_minor": 500_000,
                           "currency": "CNY", "reference": digest("BANK-2024-0001"), "status": "pending"}


def test_a_reference_is_used_once_for_mints_and_burns_alike(operator, financier):
    tokens.mint(operator, financier, amount_minor=100, reference="DEP-1")
    before = writes()
    for operate in (tokens.mint, tokens.burn):
        with pytest.raises(Duplicate):
            operate(operator, financier, amount_minor=100, reference="DEP-1")
    assert writes() == before


def test_a_reference_taken_at_the_same_moment_is_refused_as_used(operator, financier, monkeypatch):
    tokens.mint(operator, financier, amount_minor=100, reference="DEP-RACE")
    before = writes()
    # The other request committed between this one's check and its insert.
    monkeypatch.setattr(tokens, "reference_taken", lambda digest: False)
    with pytest.raises(Duplicate) as refused:
        tokens.mint(operator, financier, amount_minor=100, reference="DEP-RACE")
    assert refused.value.errors == {"reference": ["used already"]}
    assert writes() == before


@pytest.mark.parametrize("amount", [0, -5, True, 2**63, 1.5])
def test_the_amount_is_a_positive_whole_number_of_minor_units(operator, financier, amount):
    with pytest.raises(InvalidInput) as refused:
        tokens.mint(operator, financier, amount_minor=amount, reference="DEP-2")
    assert list(refused.value.errors) == ["amount"]
    assert writes() == (0, 0, 0)


def test_a_reference_is_required(operator, financier):
    with pytest.raises(InvalidInput) as refused:
        tokens.burn(operator, financier, amount_minor=1, reference="  ")
    assert list(refused.value.errors) == ["reference"]


@pytest.mark.parametrize("state", [
    {"suspended": True},
    {"kyc": KycStatus.PENDING},
    {"onboarded": False},  # approved, but the ledger's onboarding is not indexed yet
])
def test_only_an_active_onboarded_participant_gets_tokens(operator, state):
    org = factories.organisation(Role.BUYER, **state)
    db.session.commit()
    with pytest.raises(InvalidState):
        tokens.mint(operator, org, amount_minor=100, reference="DEP-3")
    assert writes() == (0, 0, 0)


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.BUYER, Role.FINANCIER, Role.AUDITOR])
def test_only_the_operator_mints_and_burns(financier, role):
    participant = factories.actor(factories.organisation(role))
    db.session.commit()
    for operate in (tokens.mint, tokens.burn):
        with pytest.raises(PermissionDenied):
            operate(participant, financier, amount_minor=100, reference="DEP-4")
    assert writes() == (0, 0, 0)


def test_an_operation_is_traced_to_a_person(operator, financier):
    anonymous_key = factories.actor(operator.organisation, scopes=("read", "write"))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        tokens.mint(anonymous_key, financier, amount_minor=100, reference="DEP-5")

    anonymous_key.api_key.created_by = operator.user
    db.session.commit()
    operation = tokens.mint(anonymous_key, financier, amount_minor=100, reference="DEP-5")
    assert operation.created_by_id == operator.user.id


def test_settlement_amounts_are_in_the_settlement_currency(db_session):
    assert tokens.settlement_amount("1234.56", "CNY") == 123_456
    with pytest.raises(InvalidInput) as refused:
        tokens.settlement_amount("10", "EUR")
    assert list(refused.value.errors) == ["currency"]
    for wrong in ("1.234", "0", "-1", "1e3"):
        with pytest.raises(InvalidInput) as refused:
            tokens.settlement_amount(wrong, "CNY")
        assert list(refused.value.errors) == ["amount"]


def test_a_participant_sees_its_own_operations_and_the_auditor_all(operator, financier):
    buyer = factories.organisation(Role.BUYER)
    db.session.commit()
    own = tokens.mint(operator, financier, amount_minor=100, reference="DEP-6")
    other = tokens.mint(operator, buyer, amount_minor=200, reference="DEP-7")
    burned = tokens.burn(operator, financier, amount_minor=50, reference="WD-1")
    member = factories.actor(financier)
    auditor = factories.actor(factories.organisation(Role.AUDITOR))

    def listed(actor: Actor, **filters) -> set[int]:
        return {operation.id for operation in db.session.scalars(tokens.token_operations(actor, **filters))}

    assert listed(member) == {own.id, burned.id}
    assert listed(auditor) == listed(operator) == {own.id, other.id, burned.id}
    assert listed(auditor, organisation_id=buyer.id) == {other.id}
    assert listed(operator, kind=TokenOperationKind.BURN) == {burned.id}
    assert listed(operator, status=TokenOperationStatus.DONE) == set()
    assert tokens.get_token_operation(member, own.id) is own
    with pytest.raises(NotFound):
        tokens.get_token_operation(member, other.id)


def test_balances_are_the_indexed_ones_of_the_chain_read_last(operator, financier):
    buyer = factories.organisation(Role.BUYER, name="Big Buyer Co")
    db.session.add_all([
        # An older deployment's chain, read before: its balances are not today's.
        IndexerCursor(chain_id=1, contract=ContractName.SETTLEMENT_TOKEN, block_number=5, block_hash="0x" + "11" * 32,
                      updated_at=datetime(2026, 1, 1, tzinfo=timezone.utc)),
        IndexerCursor(chain_id=31337, contract=ContractName.SETTLEMENT_TOKEN, block_number=9,
                      block_hash="0x" + "22" * 32, updated_at=datetime(2026, 6, 1, tzinfo=timezone.utc)),
        TokenBalance(chain_id=31337, address=financier.chain_address, balance_minor=700),
        TokenBalance(chain_id=31337, address=buyer.chain_address, balance_minor=0),
        TokenBalance(chain_id=1, address=financier.chain_address, balance_minor=999),
        TokenBalance(chain_id=31337, address=factories.new_address(), balance_minor=5),  # nobody on the platform
    ])
    db.session.commit()

    assert [(org.name, balance) for org, balance in tokens.balances(operator)] == [
        (buyer.name, 0), (financier.name, 700)]
    assert tokens.balances(factories.actor(financier)) == [(financier, 700)]


def test_there_are_no_balances_before_the_indexer_reads_the_token(operator, financier):
    db.session.add(TokenBalance(chain_id=31337, address=financier.chain_address, balance_minor=700))
    db.session.commit()
    assert tokens.balances(operator) == []
