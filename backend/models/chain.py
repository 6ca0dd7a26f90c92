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
    then MINED or REVERTED; FAILED when it could not be sent at all."""

    QUEUED = "queued"
    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    REVERTED = "reverted"
    FAILED = "failed"


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
        CheckConstraint(
            "status NOT IN ('signed', 'sent', 'mined', 'reverted')"
            " OR (raw_tx IS NOT NULL AND tx_hash IS NOT NULL AND nonce IS NOT NULL)",
            name="signed_before_sent",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
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
    # What the transaction is about: an invoice, or any other row by table and id.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    signer: Mapped[Organisation | None] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

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
