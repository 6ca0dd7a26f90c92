"""Invoices (each anchored as one receivable on the ledger) and the documents behind them."""
from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.organisations import Organisation
from backend.models.types import UTCDateTime, enum_type, utcnow

if TYPE_CHECKING:
    from backend.models.financing import FinancingRequest, Repayment


class InvoiceSource(enum.StrEnum):
    """How an invoice reached Anchorline; SPLIT marks a child of a split receivable."""

    PDF = "pdf"
    CSV = "csv"
    UBL = "ubl"
    API = "api"
    SPLIT = "split"


class InvoiceStatus(enum.StrEnum):
    """The receivable's status on the ledger (ReceivableRegistry.Status), and PENDING before
    its registration is mined."""

    PENDING = "pending"
    REGISTERED = "registered"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    SPLIT = "split"
    REPAID = "repaid"


class Delinquency(enum.StrEnum):
    """ReceivableRegistry.Delinquency: how late the buyer is, as the ledger last recorded."""

    NONE = "none"
    OVERDUE = "overdue"
    DEFAULTED = "defaulted"


class Document(db.Model):
    """An uploaded invoice document. The bytes live on disk under their SHA-256
    (backend.documents), the digest the ledger anchors."""

    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_bytes_positive"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # lowercase hex
    media_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Document {self.sha256} {self.media_type} {self.size_bytes} bytes>"


class Invoice(db.Model):
    """A supplier's invoice to a buyer, and the projection of its receivable on the ledger.

    Amounts are in the currency's minor units, as the ledger keeps them. A split child has no
    invoice number of its own; it points at its parent and its place among the parent's parts.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        # The ledger derives the receivable id from these three; the database refuses a
        # duplicate too, before anything is sent to the chain.
        UniqueConstraint("supplier_id", "buyer_id", "invoice_number_hash"),
        UniqueConstraint("parent_id", "split_index"),
        CheckConstraint("amount_minor > 0", name="amount_minor_positive"),
        CheckConstraint("repaid_minor >= 0 AND repaid_minor <= amount_minor", name="repaid_minor_within_amount"),
        CheckConstraint("due_date >= issue_date", name="due_date_not_before_issue_date"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency_iso_4217"),
        CheckConstraint("receivable_id = lower(receivable_id) AND length(receivable_id) = 66",
                        name="receivable_id_lowercase_hex"),
        CheckConstraint("(parent_id IS NULL) = (split_index IS NULL)", name="split_index_with_parent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # Who holds the receivable now: the supplier until it is transferred or financed.
    holder_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    invoice_number: Mapped[str | None] = mapped_column(String(100))  # off-chain only
    # 0x-hex SHA-256 of the invoice number (backend.chain.client.invoice_number_hash).
    invoice_number_hash: Mapped[str | None] = mapped_column(String(66))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    repaid_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    document_sha256: Mapped[str | None] = mapped_column(ForeignKey("documents.sha256"))
    source: Mapped[InvoiceSource] = mapped_column(enum_type(InvoiceSource, "source"))
    # The ledger's uint256 id as 0x-hex (66 characters, lowercase); known before it is mined.
    receivable_id: Mapped[str | None] = mapped_column(String(66), unique=True)
    status: Mapped[InvoiceStatus] = mapped_column(enum_type(InvoiceStatus, "status"), default=InvoiceStatus.PENDING,
                                                  index=True)
    delinquency: Mapped[Delinquency] = mapped_column(enum_type(Delinquency, "delinquency"), default=Delinquency.NONE,
                                                     index=True)
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    split_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    supplier: Mapped[Organisation] = relationship(foreign_keys=[supplier_id])
    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_id])
    holder: Mapped[Organisation] = relationship(foreign_keys=[holder_id])
    document: Mapped[Document | None] = relationship()
    parent: Mapped[Invoice | None] = relationship(back_populates="children", remote_side=[id])
    children: Mapped[list[Invoice]] = relationship(back_populates="parent", order_by=split_index)
    financing_requests: Mapped[list[FinancingRequest]] = relationship(back_populates="invoice")
    repayments: Mapped[list[Repayment]] = relationship(back_populates="invoice")

    def __repr__(self) -> str:
        return f"<Invoice {self.id} {self.status} {self.amount_minor} {self.currency} receivable={self.receivable_id}>"
