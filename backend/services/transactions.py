"""Ledger writes as participants see them, and what a refused write means for its subject.

The outbox rows (`ChainTransaction`) are read here: an organisation sees the writes its own key
signs, the operator and the auditor see all of them (`permissions.visible_transactions`), and
anyone else is answered NotFound. When the ledger refuses a write for good (it reverted, or it
could never be sent), `ledger_refused` settles the domain row it was about and tells the signing
organisation through the `transaction.reverted` webhook.
"""
from __future__ import annotations

from sqlalchemy import Select, select

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    Repayment,
    RepaymentStatus,
    TokenOperation,
    TokenOperationStatus,
)
from backend.services import webhooks
from backend.services.actors import Actor
from backend.services.permissions import Action, authorize, get_authorized, visible_transactions
from backend.services.servicing import REPAYMENT_SUBJECT
from backend.services.tokens import SUBJECT as TOKEN_OPERATION_SUBJECT
from backend.services.transaction import atomic

# The statuses in which the ledger has refused a write for good.
REFUSED = (ChainTransactionStatus.REVERTED, ChainTransactionStatus.FAILED)


def transactions(
    actor: Actor,
    *,
    status: ChainTransactionStatus | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    invoice_id: int | None = None,
) -> Select[tuple[ChainTransaction]]:
    """The ledger writes the actor may see, to page through, narrowed by the filters given."""
    authorize(actor, Action.VIEW_TRANSACTION)
    statement = select(ChainTransaction).where(visible_transactions(actor))
    if status is not None:
        statement = statement.where(ChainTransaction.status == status)
    if subject_type is not None:
        statement = statement.where(ChainTransaction.subject_type == subject_type)
    if subject_id is not None:
        statement = statement.where(ChainTransaction.subject_id == subject_id)
    if invoice_id is not None:
        statement = statement.where(ChainTransaction.invoice_id == invoice_id)
    return statement


@atomic
def get_transaction(actor: Actor, transaction_id: int) -> ChainTransaction:
    return get_authorized(actor, Action.VIEW_TRANSACTION, ChainTransaction, transaction_id)


def ledger_refused(row: ChainTransaction) -> None:
    """What follows from the ledger refusing `row` for good (REVERTED or FAILED), in the
    caller's database transaction: a repayment or a token operation it carried failed, and the
    signing organisation is told (the operator's own writes have no organisation to tell)."""
    if row.status not in REFUSED:
        raise ValueError(f"{row!r} was not refused by the ledger")
    if row.subject_type == REPAYMENT_SUBJECT and row.subject_id is not None:
        repayment = db.session.get(Repayment, row.subject_id)
        if repayment is not None and repayment.status == RepaymentStatus.PENDING:
            repayment.status = RepaymentStatus.FAILED
    elif row.subject_type == TOKEN_OPERATION_SUBJECT and row.subject_id is not None:
        operation = db.session.get(TokenOperation, row.subject_id)
        if operation is not None and operation.status == TokenOperationStatus.PENDING:
            operation.status = TokenOperationStatus.FAILED
    webhooks.publish(
        "transaction.reverted",
        organisations=[row.signer],
        payload={
            "transaction_id": row.id,
            "intent_key": row.intent_key,
            "contract": str(row.contract),
            "function": row.function,
            "status": str(row.status),
            "tx_hash": row.tx_hash,
            "error_name": row.error_name,
            "error": row.error,
            "invoice_id": row.invoice_id,
            "subject_type": row.subject_type,
            "subject_id": row.subject_id,
        },
        event_key=f"transaction:{row.id}:{row.status}",
    )
