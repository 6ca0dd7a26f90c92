"""Anchorline's tables (SQLAlchemy 2.0 declarative models on `backend.extensions.db`).

The database is a projection of the ledger plus the facts that live only off-chain. Its schema
is made by the Alembic migrations in migrations/, never by `create_all`. Conventions:
timestamps are timezone-aware UTC; amounts are BigInteger minor units of the invoice's
currency; receivable ids, hashes and references are 0x-hex strings (66 characters) and
addresses checksummed (42); enums are stored as their string values and checked by the
database.

Importing this package registers every table on `db.metadata`.
"""
from backend.models.audit import APPEND_ONLY_MESSAGE, AppendOnlyError, AuditLog
from backend.models.chain import (
    ChainEvent,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    IndexedBlock,
    IndexerCursor,
    ReconciliationRun,
    ReconciliationStatus,
    SenderNonce,
    TokenBalance,
)
from backend.models.compliance import (
    AmlAlertReview,
    AmlAlertStatus,
    KycDocument,
    KycReview,
    ScreeningHit,
    ScreeningHitStatus,
    WatchListEntry,
)
from backend.models.financing import (
    EarlyPaymentOffer,
    EarlyPaymentOfferStatus,
    FinancingRequest,
    FinancingRequestStatus,
    Offer,
    OfferStatus,
    Repayment,
    RepaymentStatus,
    TokenOperation,
    TokenOperationKind,
    TokenOperationStatus,
)
from backend.models.idempotency import IDEMPOTENCY_RETENTION, IdempotencyRecord
from backend.models.invoices import Delinquency, Document, Invoice, InvoiceSource, InvoiceStatus
from backend.models.organisations import ApiKey, KycStatus, Organisation, Role, SigningKey, User
from backend.models.risk import ExposureLimit, Side
from backend.models.types import utcnow
from backend.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

__all__ = [
    "APPEND_ONLY_MESSAGE",
    "IDEMPOTENCY_RETENTION",
    "AmlAlertReview",
    "AmlAlertStatus",
    "ApiKey",
    "AppendOnlyError",
    "AuditLog",
    "ChainEvent",
    "ChainTransaction",
    "ChainTransactionStatus",
    "ContractName",
    "Delinquency",
    "Document",
    "EarlyPaymentOffer",
    "EarlyPaymentOfferStatus",
    "ExposureLimit",
    "FinancingRequest",
    "FinancingRequestStatus",
    "IdempotencyRecord",
    "IndexedBlock",
    "IndexerCursor",
    "Invoice",
    "InvoiceSource",
    "InvoiceStatus",
    "KycDocument",
    "KycReview",
    "KycStatus",
    "Offer",
    "OfferStatus",
    "Organisation",
    "ReconciliationRun",
    "ReconciliationStatus",
    "Repayment",
    "RepaymentStatus",
    "Role",
    "ScreeningHit",
    "ScreeningHitStatus",
    "SenderNonce",
    "Side",
    "SigningKey",
    "TokenBalance",
    "TokenOperation",
    "TokenOperationKind",
    "TokenOperationStatus",
    "User",
    "WatchListEntry",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookEndpoint",
    "utcnow",
]
