"""Settlement tokens: the operator mints them against deposits received off-chain and burns them
against withdrawals paid out off-chain.

Each deposit or withdrawal has an off-chain reference (the bank transfer's id). The ledger
accepts a reference once, so one deposit can never be credited twice; it is sent, and stored
here, as the SHA-256 of the reference text. The database refuses a reused reference before
anything is queued. A burn also needs the holder to have approved the operator for the amount
on the ledger first (`SettlementToken.burn` spends that allowance). The balances are the
indexer's, added up from the token's Transfer events (`balances`).
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    ContractName,
    IndexerCursor,
    Organisation,
    TokenBalance,
    TokenOperation,
    TokenOperationKind,
    TokenOperationStatus,
    User,
)
from backend.money import MAX_MINOR_UNITS, AmountError, to_minor_units
from backend.services import audit, outbox
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, PermissionDenied
from backend.services.ledger import settlement_currency
from backend.services.organisations import ledger_digest, require_participant
from backend.services.permissions import Action, authorize, get_authorized, reads_everything, visible_token_operations
from backend.services.transaction import atomic

MAX_REFERENCE_LENGTH = 200
SUBJECT = "token_operation"

_ACTIONS = {TokenOperationKind.MINT: Action.MINT_TOKENS, TokenOperationKind.BURN: Action.BURN_TOKENS}
# What the reference of each kind names off-chain.
_REFERENCED = {TokenOperationKind.MINT: "deposit", TokenOperationKind.BURN: "withdrawal"}


def settlement_amount(amount: Decimal | str, currency: str) -> int:
    """`amount` of `currency` as settlement-token minor units; InvalidInput unless `currency` is
    the settlement currency and the amount converts exactly."""
    expected = settlement_currency()
    if currency != expected:
        raise InvalidInput(f"the settlement token is in {expected}", errors={"currency": [f"must be {expected}"]})
    try:
        return to_minor_units(amount, currency)
    except AmountError as exc:
        raise InvalidInput(str(exc), errors={"amount": [str(exc)]}) from None


@atomic
def mint(actor: Actor, organisation: Organisation, *, amount_minor: int, reference: str) -> TokenOperation:
    """Queues `SettlementToken.mint(to, amount, depositRef)` crediting `organisation` against the
    deposit `reference`."""
    return _queue_operation(actor, organisation, TokenOperationKind.MINT, amount_minor, reference)


@atomic
def burn(actor: Actor, organisation: Organisation, *, amount_minor: int, reference: str) -> TokenOperation:
    """Queues `SettlementToken.burn(from, amount, withdrawalRef)` debiting `organisation` against
    the withdrawal `reference`."""
    return _queue_operation(actor, organisation, TokenOperationKind.BURN, amount_minor, reference)


def token_operations(
    actor: Actor,
    *,
    organisation_id: int | None = None,
    kind: TokenOperationKind | None = None,
    status: TokenOperationStatus | None = None,
) -> Select[tuple[TokenOperation]]:
    """Mints and burns the actor may see (the operator and auditor all, a participant its own)."""
    authorize(actor, Action.VIEW_TOKEN_OPERATION)
    statement = select(TokenOperation).where(visible_token_operations(actor))
    if organisation_id is not None:
        statement = statement.where(TokenOperation.organisation_id == organisation_id)
    if kind is not None:
        statement = statement.where(TokenOperation.kind == kind)
    if status is not None:
        statement = statement.where(TokenOperation.status == status)
    return statement


def get_token_operation(actor: Actor, operation_id: int) -> TokenOperation:
    return get_authorized(actor, Action.VIEW_TOKEN_OPERATION, TokenOperation, operation_id)


def balances(actor: Actor) -> list[tuple[Organisation, int]]:
    """(organisation, balance in minor units) by name, for the organisations the actor may see
    (the operator and the auditor every one, a participant its own) that have held tokens: the
    balances the indexer has added up from the token's Transfer events, on the chain whose
    settlement token it read last. Empty before it has read any."""
    authorize(actor, Action.VIEW_TOKEN_OPERATION)
    chain_id = db.session.scalar(
        select(IndexerCursor.chain_id)
        .where(IndexerCursor.contract == ContractName.SETTLEMENT_TOKEN)
        .order_by(IndexerCursor.updated_at.desc(), IndexerCursor.id.desc())
        .limit(1)
    )
    if chain_id is None:
        return []
    statement = (
        select(Organisation, TokenBalance.balance_minor)
        .join(TokenBalance, TokenBalance.address == Organisation.chain_address)
        .where(TokenBalance.chain_id == chain_id)
        .order_by(Organisation.name, Organisation.id)
    )
    if not reads_everything(actor):
        statement = statement.where(Organisation.id == actor.organisation.id)
    return [(organisation, balance) for organisation, balance in db.session.execute(statement)]


def _queue_operation(
    actor: Actor, organisation: Organisation, kind: TokenOperationKind, amount_minor: int, reference: str
) -> TokenOperation:
    action = _ACTIONS[kind]
    authorize(actor, action, organisation)
    responsible = _responsible_user(actor)
    reference = (reference or "").strip()
    errors: dict[str, list[str]] = {}
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or not 0 < amount_minor <= MAX_MINOR_UNITS:
        errors["amount"] = [f"a whole number of {settlement_currency()} minor units between 1 and {MAX_MINOR_UNITS}"]
    if not reference:
        errors["reference"] = [f"give the off-chain {_REFERENCED[kind]} id"]
    elif len(reference) > MAX_REFERENCE_LENGTH:
        errors["reference"] = [f"at most {MAX_REFERENCE_LENGTH} characters"]
    if errors:
        raise InvalidInput(f"the {kind} is invalid", errors=errors)
    require_participant(organisation)
    digest = ledger_digest(reference)
    used = Duplicate(f"the reference {reference!r} was used already; each deposit or withdrawal is used once",
                     errors={"reference": ["used already"]})
    if reference_taken(digest):
        raise used
    operation = TokenOperation(
        kind=kind,
        organisation=organisation,
        amount_minor=amount_minor,
        reference=digest,
        status=TokenOperationStatus.PENDING,
        created_by=responsible,
    )
    try:
        # The unique reference decides between two requests with it at once: the second is
        # refused like a later one, not failed.
        with db.session.begin_nested():
            db.session.add(operation)
    except IntegrityError:
        raise used from None
    outbox.enqueue(
        intent_key=f"{SUBJECT}:{operation.id}:{kind}",
        signer=None,
        contract=ContractName.SETTLEMENT_TOKEN,
        function=str(kind),
        args=[organisation.chain_address, amount_minor, digest],
        subject_type=SUBJECT,
        subject_id=operation.id,
    )
    audit.record(actor, action, SUBJECT, operation.id, after={
        "kind": str(kind),
        "organisation_id": organisation.id,
        "amount_minor": amount_minor,
        "currency": settlement_currency(),
        "reference": digest,
        "status": str(operation.status),
    })
    return operation


def reference_taken(digest: str) -> bool:
    return db.session.scalar(select(TokenOperation.id).where(TokenOperation.reference == digest)) is not None


def _responsible_user(actor: Actor) -> User:
    """The person who answers for a mint or burn: the signed-in user, or whoever issued the API key."""
    user = actor.person
    if user is None:
        raise PermissionDenied("minting and burning must be traceable to a person: use a user's session, "
                               "or an API key a user issued")
    return user
