"""Risk controls a financier sets for itself: how much it will have at stake on one buyer or
one supplier (issue 6 §1). Amounts are in the settlement currency's minor units."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.organisations import Organisation
from backend.models.types import UTCDateTime, enum_type, utcnow


class Side(enum.StrEnum):
    """Which side of its invoices an organisation is looked at from: the supplier that issued
    them, or the buyer that owes them."""

    SUPPLIER = "supplier"
    BUYER = "buyer"


class ExposureLimit(db.Model):
    """At most `limit_minor` at stake with `counterparty` on one side: the outstanding face value
    of the receivables of that buyer (or supplier) the financier holds or has offered for
    (backend/services/exposure.py)."""

    __tablename__ = "exposure_limits"
    __table_args__ = (
        UniqueConstraint("financier_id", "counterparty_id", "side"),
        CheckConstraint("limit_minor > 0", name="limit_minor_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    financier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    counterparty_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    side: Mapped[Side] = mapped_column(enum_type(Side, "side"))
    limit_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    financier: Mapped[Organisation] = relationship(foreign_keys=[financier_id])
    counterparty: Mapped[Organisation] = relationship(foreign_keys=[counterparty_id])

    def __repr__(self) -> str:
        return f"<ExposureLimit financier={self.financier_id} {self.side} {self.counterparty_id} {self.limit_minor}>"
