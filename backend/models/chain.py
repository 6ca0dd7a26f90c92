"""The database's side of the ledger: the outbox of transactions to send, the events read
back, and how far the indexer has read."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.invoices import Invoice
from backend.models.organisations import Organisation
from backend.models.types import JSONDocument, UTCDateTime, enum_type, utcnow


class ContractName(enum.StrEnum):
    """The deployed Anchorline contracts, by their Solidity names (as deployments record them).
    Financing is also the participant registry: onboarding and suspensions are sent to it."""

    SETTLEMENT_TOKEN = "SettlementToken"
    RECEIVABLE_REGISTRY = "ReceivableRegistry"
    FINANCING = "Financing"


class ChainTransactionStatus(enum.StrEnum):
    """An outbox row's way to the chain: QUEUED, SIGNED (the raw transaction is stored), SENT,
    then MINED or REVERTED (also straight from QUEUED, without a transaction, when its gas
    estimate reverts); FAILED when it could not be sent at all. BATCHED: the row's write
    went out inside another row's batch transaction (`carried_by`), whose fate is its own."""

    QUEUED = "queued"
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    REVERTED = "reverted"
    FAILED = "failed"
    BATCHED = "batched"


class ChainTransaction(db.Model):
    """One intent to write to the ledger (the outbox), written in the same database transaction
    as the domain change it carries out, and sent by a worker.

    One intent is at most one transaction: the intent key is unique, and the signed bytes (with
    their nonce and hash) are stored before they are broadcast, so a retry re-sends the same
    transaction instead of signing a second one.
    """

    __tablename__ = "chain_transactions"
    __table_args__ = (
        Index(None, "status", "created_at"),  # the worker's scan of the queue
        Index(None, "subject_type", "subject_id"),
        # A reverted row may have no transaction: the ledger refused it at its gas estimate.
        CheckConstraint(
            "status NOT IN ('signed', 'sent', 'mined')"
            " OR (raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND nonce IS NOT NULL)",
            name="signed_before_sent",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("(status = 'batched') = (carried_by_id IS NOT NULL)", name="batched_with_carrier"),
        # A sender's nonce is used by one intent only; a re-broadcast or a fee bump of the same
        # intent stays on its row.
        UniqueConstraint("chain_id", "sender", "nonce"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent_key: Mapped[str] = mapped_column(String(255), unique=True)
    # The organisation whose key signs; NULL for the platform operator's key.
    signer_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    contract: Mapped[ContractName] = mapped_column(enum_type(ContractName, "contract"))
    function: Mapped[str] = mapped_column(String(64))
    args: Mapped[Any] = mapped_column(JSONDocument)
    status: Mapped[ChainTransactionStatus] = mapped_column(enum_type(ChainTransactionStatus, "status"),
                                                           default=ChainTransactionStatus.QUEUED)
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    raw_tx: Mapped[str | None] = mapped_column(Text)  # 0x-hex signed transaction
    tx_hash: Mapped[str | None] = mapped_column(String(66), unique=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    # Set when the row is signed: the chain, and the address whose nonce it takes.
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    sender: Mapped[str | None] = mapped_column(String(42))
    # Hashes of earlier broadcasts of this intent at the same nonce (fee bumps); any of them,
    # or tx_hash, may be the one that is mined.
    replaced_tx_hashes: Mapped[list[str]] = mapped_column(JSONDocument, default=list, server_default=text("'[]'"))
    # The custom error a revert carried (e.g. "NotConfirmed"); `error` has the detail.
    error_name: Mapped[str | None] = mapped_column(String(64))
    carried_by_id: Mapped[int | None] = mapped_column(ForeignKey("chain_transactions.id"), index=True)
    # Not before this time (backoff after an RPC error); NULL means now.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last broadcast
    mined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the transaction is about: an invoice, or any other row by table and id.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    signer: Mapped[Organisation | None] = relationship()
    invoice: Mapped[Invoice | None] = relationship()
    carried_by: Mapped[ChainTransaction | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        # Not the raw transaction or the arguments: long, and for logs the key says enough.
        return f"<ChainTransaction {self.id} {self.intent_key!r} {self.contract}.{self.function} {self.status}>"


class ChainEvent(db.Model):
    """A ledger event the indexer has read. It is stored and applied to the projections in one
    database transaction, and the unique (chain, transaction, log index) makes that once."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index(None, "chain_id", "block_number"),  # rolling back a reorganised block range
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    contract: Mapped[ContractName] = mapped_column(enum_type(ContractName, "contract"))
    event: Mapped[str] = mapped_column(String(64))
    args: Mapped[Any] = mapped_column(JSONDocument)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<ChainEvent {self.id} {self.contract}.{self.event} block={self.block_number} log={self.log_index}>"


class IndexerCursor(db.Model):
    """How far the indexer has read one contract's events on one chain. The block hash lets it
    notice that the chain was reorganised under the block it last read."""

    __tablename__ = "indexer_cursors"
    __table_args__ = (UniqueConstraint("chain_id", "contract"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[ContractName] = mapped_column(enum_type(ContractName, "contract"))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<IndexerCursor chain={self.chain_id} {self.contract} block={self.block_number}>"


class SenderNonce(db.Model):
    """The next nonce Anchorline will sign with, per chain and sending address. A worker locks
    this row while it takes a nonce and stores the signed transaction, so two workers never
    take the same nonce and none is skipped."""

    __tablename__ = "sender_nonces"
    __table_args__ = (UniqueConstraint("chain_id", "address"), CheckConstraint("next_nonce >= 0", name="next_nonce_not_negative"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42))  # checksummed
    next_nonce: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<SenderNonce chain={self.chain_id} {self.address} next={self.next_nonce}>"


class IndexedBlock(db.Model):
    """The hash of each block the indexer has read, within the reorganisation window: a block
    whose hash on the chain differs from the stored one has been reorganised away."""

    __tablename__ = "indexed_blocks"
    __table_args__ = (UniqueConstraint("chain_id", "block_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))

    def __repr__(self) -> str:
        return f"<IndexedBlock chain={self.chain_id} {self.block_number} {self.block_hash}>"


class TokenBalance(db.Model):
    """The settlement-token balance of one address, as the indexed Transfer events add up."""

    __tablename__ = "token_balances"
    __table_args__ = (UniqueConstraint("chain_id", "address"), CheckConstraint("balance_minor >= 0", name="balance_minor_not_negative"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(42), index=True)  # checksummed
    balance_minor: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<TokenBalance chain={self.chain_id} {self.address} {self.balance_minor}>"


class ReconciliationStatus(enum.StrEnum):
    RUNNING = "running"
    CLEAN = "clean"  # the database and the ledger agree
    DRIFT = "drift"  # they disagree; `drift` lists where
    FAILED = "failed"  # the check could not finish; `error` says why


class ReconciliationRun(db.Model):
    """One scheduled comparison of the projections with the ledger's own state."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)  # the ledger state compared against
    status: Mapped[ReconciliationStatus] = mapped_column(enum_type(ReconciliationStatus, "status"),
                                                         default=ReconciliationStatus.RUNNING)
    checked: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # [{"subject": "invoice:42", "field": "status", "database": ..., "ledger": ...}, ...]
    drift: Mapped[list[Any]] = mapped_column(JSONDocument, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<ReconciliationRun {self.id} {self.status} checked={self.checked} drift={len(self.drift or [])}>"
