"""Factories for domain objects in the database (organisations, actors, invoices, financing),
flushed so they have ids. They write rows directly, as the indexer would have left them; tests
of a service build the state before it with these and then call the service. Then the reads at
the end check what the call wrote: its outbox rows, its audit entries, or nothing at all."""
from __future__ import annotations

import functools
import itertools
import secrets
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from eth_utils import to_checksum_address
from sqlalchemy import func, select

from backend.chain.client import invoice_number_hash, receivable_id
from backend.extensions import db
from backend.models import (
    ApiKey,
    AuditLog,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    Document,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    KycStatus,
    Offer,
    OfferStatus,
    Organisation,
    Role,
    User,
)
from backend.security.api_keys import generate_api_key, hash_secret
from backend.security.keystore import new_signing_key
from backend.services import organisations as organisations_service
from backend.services.actors import Actor

_sequence = itertools.count(1)


def new_address() -> str:
    return to_checksum_address("0x" + secrets.token_hex(20))


def organisation(
    roles: Role,
    *,
    name: str | None = None,
    kyc: KycStatus = KycStatus.APPROVED,
    suspended: bool = False,
    onboarded: bool = True,
) -> Organisation:
    """An organisation; `onboarded` gives it a ledger address and participant id."""
    n = next(_sequence)
    org = Organisation(
        name=name or f"{roles.name} {n}",
        legal_identifier=f"0088:{7300000000000 + n}",
        roles=roles,
        kyc_status=kyc,
        suspended=suspended,
        chain_address=new_address() if onboarded else None,
        participant_id=n if onboarded else None,
    )
    db.session.add(org)
    db.session.flush()
    return org


def committed_organisation(roles: Role, **options: Any) -> Organisation:
    """An organisation, committed: a refused service call's rollback leaves it in place."""
    org = organisation(roles, **options)
    db.session.commit()
    return org


def operator() -> Actor:
    """A user of a new platform operator organisation (off the ledger), committed."""
    operator_user = actor(organisation(Role.OPERATOR, onboarded=False))
    db.session.commit()
    return operator_user


def user(org: Organisation, *, email: str | None = None) -> User:
    person = User(
        organisation=org,
        email=email or f"user{next(_sequence)}@example.com",
        password_hash="$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$not-a-real-hash-for-tests",
        display_name="Test User",
    )
    db.session.add(person)
    db.session.flush()
    return person


def actor(org: Organisation, *, scopes: tuple[str, ...] | None = None) -> Actor:
    """A portal user of `org`, or with `scopes` a machine client holding one of its API keys."""
    if scopes is None:
        return Actor(organisation=org, user=user(org))
    issued = generate_api_key()
    key = ApiKey(organisation=org, name="test key", prefix=issued.prefix, secret_hash=hash_secret(issued.token),
                 scopes=list(scopes))
    db.session.add(key)
    db.session.flush()
    return Actor(organisation=org, api_key=key)


def invoice(
    supplier: Organisation,
    buyer: Organisation,
    *,
    status: InvoiceStatus = InvoiceStatus.CONFIRMED,
    amount_minor: int = 1_000_000,
    currency: str = "CNY",
    holder: Organisation | None = None,
    issue_date: date | None = None,
    due_in_days: int = 60,
) -> Invoice:
    """An invoice as the indexer leaves it once its registration (and confirmation) is mined."""
    number = f"INV-{next(_sequence):06d}"
    number_hash = invoice_number_hash(number)
    issued = issue_date or date.today()
    row = Invoice(
        supplier=supplier,
        buyer=buyer,
        holder=holder or supplier,
        invoice_number=number,
        invoice_number_hash="0x" + number_hash.hex(),
        currency=currency,
        amount_minor=amount_minor,
        issue_date=issued,
        due_date=date.today() + timedelta(days=due_in_days),
        source=InvoiceSource.API,
        receivable_id=(
            None
            if status == InvoiceStatus.PENDING
            else "0x%064x" % receivable_id(supplier.chain_address, buyer.chain_address, number_hash)
        ),
        status=status,
    )
    db.session.add(row)
    db.session.flush()
    return row


def financing_request(
    invoice_: Invoice,
    *,
    status: FinancingRequestStatus = FinancingRequestStatus.OPEN,
    asking_advance_minor: int = 900_000,
    deadline_in_days: int = 30,
    recourse: bool = False,
) -> FinancingRequest:
    request = FinancingRequest(
        invoice=invoice_,
        seller_id=invoice_.holder_id,
        round=None if status == FinancingRequestStatus.PENDING else len(invoice_.financing_requests) + 1,
        asking_advance_minor=asking_advance_minor,
        deadline=datetime.now(timezone.utc) + timedelta(days=deadline_in_days),
        recourse=recourse,
        status=status,
    )
    db.session.add(request)
    db.session.flush()
    return request


def offer(
    request: FinancingRequest,
    financier: Organisation,
    *,
    advance_minor: int = 950_000,
    status: OfferStatus = OfferStatus.OPEN,
    expiry_in_days: int = 20,
) -> Offer:
    row = Offer(
        financing_request=request,
        financier=financier,
        advance_minor=advance_minor,
        expiry=datetime.now(timezone.utc) + timedelta(days=expiry_in_days),
        status=status,
    )
    db.session.add(row)
    db.session.flush()
    return row


def cheap_signing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Organisations created through the services get keystores sealed at a trivial scrypt cost:
    at the standard's cost each one takes over half a second."""
    monkeypatch.setattr(organisations_service, "new_signing_key", functools.partial(new_signing_key, scrypt_n=2))


# ---------------------------------------------------------------- what a service call wrote


def count(model: type) -> int:
    """How many rows `model`'s table holds."""
    return db.session.scalar(select(func.count()).select_from(model))


def outbox_rows() -> list[ChainTransaction]:
    return list(db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id)))


def audit_entries() -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).order_by(AuditLog.id)))


def only_outbox_row() -> ChainTransaction:
    (row,) = db.session.scalars(select(ChainTransaction)).all()
    return row


def only_audit_entry() -> AuditLog:
    (entry,) = db.session.scalars(select(AuditLog)).all()
    return entry


def last_audit_entry() -> AuditLog:
    return db.session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()


def assert_refused(error: type[Exception], call: Any, *args: Any, **kwargs: Any) -> pytest.ExceptionInfo[Any]:
    """`call` raises `error` and writes nothing: every table holds as many rows as before."""
    before = _row_counts()
    with pytest.raises(error) as refusal:
        call(*args, **kwargs)
    assert _row_counts() == before
    return refusal


def _row_counts() -> dict[str, int]:
    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


# ---------------------------------------------------------------- the ledger explorer's rows


def split_part(parent: Invoice, index: int, *, amount_minor: int, holder: Organisation | None = None,
               status: InvoiceStatus = InvoiceStatus.CONFIRMED) -> Invoice:
    """Part `index` of a split of `parent`, as the services create it and the indexer confirms
    it: the parent's terms and document, its own derived receivable id."""
    from backend.chain.client import child_receivable_id

    row = Invoice(
        supplier_id=parent.supplier_id, buyer_id=parent.buyer_id, holder=holder or parent.holder,
        currency=parent.currency, amount_minor=amount_minor, issue_date=parent.issue_date,
        due_date=parent.due_date, document_sha256=parent.document_sha256, source=InvoiceSource.SPLIT,
        receivable_id="0x%064x" % child_receivable_id(int(parent.receivable_id, 16), index),
        status=status, parent=parent, split_index=index,
    )
    db.session.add(row)
    db.session.flush()
    return row


_log_positions = itertools.count(1)


def chain_event(event: str, args: dict[str, Any], *, block_number: int, contract: str = "ReceivableRegistry",
                tx_hash: str | None = None) -> Any:
    """A ledger event as the indexer stores it (receivable ids as decimal strings: see
    workers.indexer.json_safe), in its own transaction unless `tx_hash` is given."""
    from backend.models import ChainEvent, ContractName

    position = next(_log_positions)
    row = ChainEvent(chain_id=31337, tx_hash=tx_hash or "0x%064x" % position, log_index=position,
                     block_number=block_number, block_hash="0x%064x" % block_number,
                     contract=ContractName(contract), event=event, args=args)
    db.session.add(row)
    db.session.flush()
    return row


def early_payment_offer(invoice_: Invoice, *, annual_rate_bps: int = 1200, expiry_in_days: int = 20,
                        status: Any = None) -> Any:
    """The buyer's early payment offer on `invoice_`, as the indexer leaves it once mined (OPEN)."""
    from backend.models import EarlyPaymentOffer, EarlyPaymentOfferStatus

    row = EarlyPaymentOffer(invoice=invoice_, buyer_id=invoice_.buyer_id, annual_rate_bps=annual_rate_bps,
                            expiry=datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=expiry_in_days),
                            status=status or EarlyPaymentOfferStatus.OPEN)
    db.session.add(row)
    db.session.flush()
    return row


# ---------------------------------------------------------------- risk and compliance


def with_document(invoice: Invoice, digest: str) -> Invoice:
    """`invoice` anchoring the document with SHA-256 `digest` (stored once)."""
    if db.session.get(Document, digest) is None:
        db.session.add(Document(sha256=digest, media_type="application/pdf", size_bytes=10,
                                uploaded_by_id=invoice.supplier_id))
        db.session.flush()
    invoice.document_sha256 = digest
    db.session.flush()
    return invoice


def receivable(supplier: Organisation, buyer: Organisation, amount_minor: int, *, issued: date, due: date,
               status: InvoiceStatus = InvoiceStatus.CONFIRMED,
               delinquency: Delinquency = Delinquency.NONE) -> Invoice:
    """A receivable issued on `issued`, due on `due`."""
    row = invoice(supplier, buyer, amount_minor=amount_minor, status=status, issue_date=issued)
    row.due_date, row.delinquency = due, delinquency
    db.session.flush()
    return row


def funded(invoice: Invoice, seller: Organisation, financier: Organisation, advance_minor: int,
           on: datetime | None, *, indexed_at: datetime | None = None) -> None:
    """A FinancingSettled event for `invoice`, mined `on` (None: written outside Anchorline,
    with no outbox row; it counts from `indexed_at`)."""
    event = chain_event("FinancingSettled", {
        "id": str(int(invoice.receivable_id, 16)), "seller": seller.chain_address,
        "financier": financier.chain_address, "round": 1, "advance": str(advance_minor), "viaOffer": True,
    }, block_number=10, contract="Financing")
    if indexed_at is not None:
        event.applied_at = indexed_at
    if on is not None:
        db.session.add(ChainTransaction(
            intent_key=f"offer:{invoice.id}:accept", signer=seller, invoice=invoice, contract=ContractName.FINANCING,
            function="acceptOffer", args=[], status=ChainTransactionStatus.MINED, nonce=invoice.id, raw_tx="0x00",
            tx_hash=event.tx_hash, mined_at=on))
    db.session.flush()


def token_movement(sender: str, recipient: str, amount_minor: int, at: datetime) -> Any:
    """A token Transfer event mined at `at` (through the outbox)."""
    event = chain_event("Transfer", {"from": sender, "to": recipient, "value": str(amount_minor)},
                        block_number=1, contract="SettlementToken")
    db.session.add(ChainTransaction(
        intent_key=f"transfer:{event.tx_hash}", contract=ContractName.SETTLEMENT_TOKEN, function="transfer", args=[],
        status=ChainTransactionStatus.MINED, nonce=event.log_index, raw_tx="0x00", tx_hash=event.tx_hash, mined_at=at))
    db.session.flush()
    return event
