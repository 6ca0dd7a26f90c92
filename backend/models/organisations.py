"""Participants: organisations, their signing keys, their users and their API keys."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Dialect, ForeignKey, Integer, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from backend.extensions import db
from backend.models.types import JSONDocument, UTCDateTime, enum_type, utcnow


class Role(enum.IntFlag):
    """An organisation's roles. SUPPLIER to AUDITOR are the ledger's participant role bits
    (backend.chain.client); OPERATOR is off-chain only: the platform operator's own staff."""

    SUPPLIER = 1
    BUYER = 2
    FINANCIER = 4
    AUDITOR = 8
    OPERATOR = 16


class RoleBits(TypeDecorator[Role]):
    """A combination of `Role`s, stored as its integer bitmask."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None else int(Role(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Role | None:
        return None if value is None else Role(value)


class KycStatus(enum.StrEnum):
    """Where the operator's know-your-customer review of an organisation stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Organisation(db.Model):
    """A company on the platform: supplier, buyer (core enterprise), financier, auditor or the
    operator. On the ledger it is one participant, once onboarded and indexed."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(f"roles >= 0 AND roles <= {int(~Role(0))}", name="roles_known"),
        CheckConstraint("participant_id > 0", name="participant_id_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # A PEPPOL participant identifier (e.g. 0088:7300010000001) or an LEI.
    legal_identifier: Mapped[str] = mapped_column(String(100), unique=True)
    roles: Mapped[Role] = mapped_column(RoleBits(), default=Role(0))
    chain_address: Mapped[str | None] = mapped_column(String(42), unique=True)  # checksummed
    # The ledger's compact uint32 id, known once the onboarding event is indexed.
    participant_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    kyc_status: Mapped[KycStatus] = mapped_column(enum_type(KycStatus, "kyc_status"), default=KycStatus.PENDING,
                                                  index=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    suspension_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    signing_key: Mapped[SigningKey | None] = relationship(back_populates="organisation")
    users: Mapped[list[User]] = relationship(back_populates="organisation")
    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="organisation")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.legal_identifier!r} roles={self.roles!r}>"


class SigningKey(db.Model):
    """The key that signs an organisation's ledger transactions, kept encrypted (keystore v3)."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)  # checksummed
    keystore_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="signing_key")

    def __repr__(self) -> str:
        # Never the keystore: even encrypted, it does not belong in logs and tracebacks.
        return f"<SigningKey {self.id} organisation={self.organisation_id} {self.address}>"


class User(db.Model):
    """A person who signs in to the portal on behalf of one organisation."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string format
    display_name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="users")

    @validates("email")
    def _normalise_email(self, _key: str, email: str) -> str:
        """Addresses are unique regardless of case, so they are stored lowercased."""
        return email.strip().lower()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r} organisation={self.organisation_id}>"


class ApiKey(db.Model):
    """A machine client's key (backend.security.api_keys): found by its public prefix, checked
    against the SHA-256 of the whole token; the token itself is never stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="api_keys")
    created_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix} organisation={self.organisation_id}>"
