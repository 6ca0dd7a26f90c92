"""Money around receivables: financing requests and offers, repayments, and the operator's
mints and burns of the settlement token. Amounts are in the currency's minor units."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.invoices import Invoice
from backend.models.organisations import Organisation, User
from backend.models.types import UTCDateTime, enum_type, utcnow


class FinancingRequestStatus(enum.StrEnum):
    """Financing.RequestStatus, and PENDING before the request is mined."""

    PENDING = "pending"
    OPEN = "open"
    FUNDED = "funded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNWOUND = "unwound"  # funded, then reversed when the recourse seller bought it back


class OfferStatus(enum.StrEnum):
    """Financing.OfferStatus, PENDING before the offer is mined, and what became of an offer the
    ledger no longer holds: ACCEPTED (it settled) or LAPSED (its expiry or round passed)."""

    PENDING = "pending"
    OPEN = "open"
    WITHDRAWN = "withdrawn"
    ACCEPTED = "accepted"
    LAPSED = "lapsed"


class RepaymentStatus(enum.StrEnum):
    """A buyer's repayment: PENDING until mined, then RECORDED on the ledger or FAILED."""

    PENDING = "pending"
    RECORDED = "recorded"
    FAILED = "failed"


class TokenOperationKind(enum.StrEnum):
    """MINT against an off-chain deposit, BURN against a withdrawal."""

    MINT = "mint"
    BURN = "burn"


class TokenOperationStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class FinancingRequest(db.Model):
    """A holder asking to sell a receivable for an advance (Financing.requestFinancing)."""

    __tablename__ = "financing_requests"
    __table_args__ = (
        # The ledger counts requests per receivable in rounds; each round is one request.
        UniqueConstraint("invoice_id", "round"),
        CheckConstraint("asking_advance_minor > 0", name="asking_advance_minor_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    round: Mapped[int | None] = mapped_column(Integer)  # the ledger's round, once indexed
    asking_advance_minor: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    recourse: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[FinancingRequestStatus] = mapped_column(
        enum_type(FinancingRequestStatus, "status"), default=FinancingRequestStatus.PENDING, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="financing_requests")
    seller: Mapped[Organisation] = relationship()
    offers: Mapped[list[Offer]] = relationship(back_populates="financing_request")

    def __repr__(self) -> str:
        return f"<FinancingRequest {self.id} invoice={self.invoice_id} round={self.round} {self.status}>"


class Offer(db.Model):
    """A financier's offer of an advance; a second offer by the same financier revises the
    first, as on the ledger, where offers are keyed by financier."""

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("financing_request_id", "financier_id"),
        CheckConstraint("advance_minor > 0", name="advance_minor_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    financing_request_id: Mapped[int] = mapped_column(ForeignKey("financing_requests.id"))
    financier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    advance_minor: Mapped[int] = mapped_column(BigInteger)
    expiry: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[OfferStatus] = mapped_column(enum_type(OfferStatus, "status"), default=OfferStatus.PENDING,
                                                index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    financing_request: Mapped[FinancingRequest] = relationship(back_populates="offers")
    financier: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Offer {self.id} request={self.financing_request_id} financier={self.financier_id} {self.status}>"


class Repayment(db.Model):
    """A buyer paying (part of) a receivable to its current holder (Financing.repay)."""

    __tablename__ = "repayments"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_minor_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RepaymentStatus] = mapped_column(enum_type(RepaymentStatus, "status"),
                                                    default=RepaymentStatus.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship(back_populates="repayments")
    payer: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Repayment {self.id} invoice={self.invoice_id} {self.amount_minor} {self.status}>"


class TokenOperation(db.Model):
    """The operator minting or burning settlement tokens for an organisation against an
    off-chain deposit or withdrawal. The reference is the bytes32 the token contract accepts
    only once, so one deposit can never be minted twice."""

    __tablename__ = "token_operations"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_minor_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[TokenOperationKind] = mapped_column(enum_type(TokenOperationKind, "kind"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(66), unique=True)  # 0x-hex bytes32
    status: Mapped[TokenOperationStatus] = mapped_column(enum_type(TokenOperationStatus, "status"),
                                                         default=TokenOperationStatus.PENDING, index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    created_by: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<TokenOperation {self.id} {self.kind} {self.amount_minor} organisation={self.organisation_id}>"


class EarlyPaymentOfferStatus(enum.StrEnum):
    """A buyer's offer to pay early: PENDING until the ledger has it (and after each revision),
    OPEN, then WITHDRAWN by the buyer, ACCEPTED by the holder (settled), or LAPSED (past its
    expiry, or the receivable repaid otherwise)."""

    PENDING = "pending"
    OPEN = "open"
    WITHDRAWN = "withdrawn"
    ACCEPTED = "accepted"
    LAPSED = "lapsed"


class EarlyPaymentOffer(db.Model):
    """A buyer's offer to pay a confirmed payable before its due date at a discount that shrinks
    with the days remaining (Financing.offerEarlyPayment). The ledger keeps one offer per
    receivable, so a new offer revises this row in place. `repayment` is the repayment the
    holder's acceptance queued; `paid_minor` and `discount_minor` are what the settlement paid
    the holder and what it gave up, from the ledger's EarlyPaymentSettled."""

    __tablename__ = "early_payment_offers"
    __table_args__ = (
        # Financing.offerEarlyPayment takes a uint16 of basis points.
        CheckConstraint("annual_rate_bps > 0 AND annual_rate_bps <= 10000", name="annual_rate_bps_in_range"),
        CheckConstraint("paid_minor >= 0 AND discount_minor >= 0", name="settled_amounts_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    annual_rate_bps: Mapped[int] = mapped_column(Integer)
    expiry: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[EarlyPaymentOfferStatus] = mapped_column(
        enum_type(EarlyPaymentOfferStatus, "status"), default=EarlyPaymentOfferStatus.PENDING, index=True
    )
    repayment_id: Mapped[int | None] = mapped_column(ForeignKey("repayments.id"))
    paid_minor: Mapped[int | None] = mapped_column(BigInteger)
    discount_minor: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    invoice: Mapped[Invoice] = relationship()
    buyer: Mapped[Organisation] = relationship()
    repayment: Mapped[Repayment | None] = relationship()

    def __repr__(self) -> str:
        return f"<EarlyPaymentOffer {self.id} invoice={self.invoice_id} {self.annual_rate_bps}bps {self.status}>"
