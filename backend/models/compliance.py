"""Know-your-customer and anti-money-laundering records (issue 6 §4): each KYC decision with the
documents checked and who decided; the sanctions and watch lists the operator loads; the
screening hits they raise against organisations, until someone resolves them; and the reviews
of alerts on settlement-token movements."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.organisations import KycStatus, Organisation, User
from backend.models.types import JSONDocument, UTCDateTime, enum_type, utcnow


class KycDocument(enum.StrEnum):
    """The documents a KYC review checks."""

    BUSINESS_LICENCE = "business_licence"
    ARTICLES_OF_ASSOCIATION = "articles_of_association"
    REPRESENTATIVE_ID = "representative_id"
    BENEFICIAL_OWNERS = "beneficial_owners"
    BANK_ACCOUNT = "bank_account"
    TAX_REGISTRATION = "tax_registration"


class KycReview(db.Model):
    """One KYC decision: approved or rejected, on which documents, by whom (the person, also when
    an API key they issued made the call)."""

    __tablename__ = "kyc_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    decision: Mapped[KycStatus] = mapped_column(enum_type(KycStatus, "decision"))
    documents_checked: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    decided_by: Mapped[User | None] = relationship()


class WatchListEntry(db.Model):
    """One entry of a sanctions or watch list: a name, an address (a ledger address, or a
    postal one), or both. Loading a list replaces every entry of the same list name."""

    __tablename__ = "watch_list_entries"
    __table_args__ = (UniqueConstraint("list_name", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_name: Mapped[str] = mapped_column(String(100), index=True)
    reference: Mapped[str] = mapped_column(String(100))  # the list's own id of the entry
    name: Mapped[str | None] = mapped_column(String(300))
    normalised_name: Mapped[str | None] = mapped_column(String(300), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    normalised_address: Mapped[str | None] = mapped_column(String(300), index=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    loaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    loaded_by: Mapped[User | None] = relationship()


class ScreeningHitStatus(enum.StrEnum):
    OPEN = "open"  # to be reviewed; an organisation with one cannot be approved
    CLEARED = "cleared"  # a false positive
    CONFIRMED = "confirmed"  # a true match: the organisation is to be rejected or suspended


class ScreeningHit(db.Model):
    """An organisation matching a watch-list entry. The entry's details are copied, so a hit
    outlives a reloaded list; the same match is recorded once."""

    __tablename__ = "screening_hits"
    __table_args__ = (UniqueConstraint("organisation_id", "list_name", "entry_reference", "matched_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    list_name: Mapped[str] = mapped_column(String(100))
    entry_reference: Mapped[str] = mapped_column(String(100))
    matched_on: Mapped[str] = mapped_column(String(20))  # "name" or "address"
    entry_value: Mapped[str] = mapped_column(String(300))  # the entry's name or address as listed
    status: Mapped[ScreeningHitStatus] = mapped_column(enum_type(ScreeningHitStatus, "status"),
                                                       default=ScreeningHitStatus.OPEN, index=True)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_note: Mapped[str | None] = mapped_column(Text)

    organisation: Mapped[Organisation] = relationship()
    resolved_by: Mapped[User | None] = relationship()


class AmlAlertStatus(enum.StrEnum):
    CLEARED = "cleared"  # explained: an ordinary payment
    REPORTED = "reported"  # reported to the financial intelligence unit


class AmlAlertReview(db.Model):
    """A person's review of one alert on settlement-token movements. Alerts themselves are
    computed from the indexed Transfer events (backend/services/aml.py); the review is kept by
    the alert's key, which names its kind and transactions, so it sticks to the same alert."""

    __tablename__ = "aml_alert_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[AmlAlertStatus] = mapped_column(enum_type(AmlAlertStatus, "status"))
    note: Mapped[str] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    reviewed_by: Mapped[User | None] = relationship()
