"""Every operation of the OpenAPI document, fuzzed by schemathesis as each kind of caller: no
answer is a server error, and every answer (202, 200, 204 or a problem) is what the document
says it would be: a documented status, content type, headers and body (schemathesis's default
checks, all but the one EXCLUDED_CHECKS names).

The application and its database, seeded as a small market (organisations of every role,
invoices along their life, financing requests with offers, repayments, token operations), are
made once per database backend. Before each example the seeded database is put back if an
earlier example may have written, so what one example does (revoke a key, use an
Idempotency-Key) does not change the answer to the next, and a failure replays the same way
when hypothesis shrinks it.

The examples mix four kinds of request: valid ones about the market (ids, amounts, currencies,
dates, files and second-page cursors taken from it, so that the success answers and their
bodies are checked too, not only the refusals a made-up id gets); those again with a NUL
character in one text field (valid JSON and valid for the document, but not storable in
PostgreSQL); valid requests about anything; invalid requests.

On SQLite, each test is one operation called with the API key of one role. On PostgreSQL, when
one is reachable (see tests/db_fixtures.py), one test calls every operation, each example as a
role drawn at random, with fewer examples: putting a PostgreSQL database back costs more.
"""
from __future__ import annotations

import io
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select, text

from backend.app import create_app
from backend.extensions import db
from backend.models import (
    ApiKey,
    Delinquency,
    Document,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    KycStatus,
    Offer,
    OfferStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
    TokenOperation,
    TokenOperationKind,
)
from backend.security.api_keys import Scope
from backend.services import audit, invoice_intake
from backend.services.actors import Actor
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials
from tests.db_fixtures import dispose, isolate_configuration, migrated_app

OPENAPI_PATH = "/api/v1/openapi.json"
HTTP_METHODS = frozenset({"get", "put", "post", "patch", "delete"})
ROLES = ("operator", "supplier", "buyer", "financier", "auditor")
# No budget runs out while a test fuzzes (the rate limits have their own tests).
UNLIMITED = {"API_RATE_LIMIT": "1000000 per minute", "LOGIN_RATE_LIMIT": "1000000 per minute",
             "LOGIN_ADDRESS_RATE_LIMIT": "1000000 per minute"}
EXCLUDED_CHECKS = [
    # A request can fit the document and still be rightly refused: an id or cursor this server
    # never gave out (404, 422), a caller without the role (403), an object in the wrong state
    # (409), an amount above what is outstanding (422). The document describes shapes, not rules.
    positive_data_acceptance,
]
# The health check answers its documented 503 whenever a part of the stack is down, as the chain
# and Redis are for this market: there a 5xx is the documented answer, not a crash.
HEALTH_OPERATION = "GET /api/v1/health"
CURRENCY = "CNY"
UBL_INVOICE = Path(__file__).parent / "data" / "intake" / "ubl" / "invoice-base.xml"
# The parties of UBL_INVOICE, by their legal identifiers, and its dates.
UBL_SUPPLIER, UBL_BUYER = "0088:4000001123452", "0192:987654325"
UBL_ISSUE_DATE, UBL_DUE_DATE = "2024-03-04", "2024-04-03"
# The PostgreSQL trigger that keeps the audit log append-only (see the initial migration).
AUDIT_LOG_TRIGGER = "audit_log_append_only"


def documented_operations() -> list[str]:
    """The label ("GET /api/v1/...") of every operation of the OpenAPI document, read from an
    application made in a throw-away instance folder (for parametrising, before any fixture)."""
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as monkeypatch:
        isolate_configuration(monkeypatch, Path(directory))
        app = create_app({"DATABASE_URL": f"sqlite:///{directory}/unused.db", "TESTING": True})
        document = app.test_client().get(OPENAPI_PATH).json
    return [f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS]


OPERATIONS = documented_operations()


# ---------------------------------------------------------------- the market


@dataclass
class Market:
    """The application on the seeded database, its OpenAPI document, a caller of each role,
    values the market knows (see `known_values`), and a way back to the seeded state."""

    app: Flask
    schema: schemathesis.BaseSchema
    callers: Mapping[str, Credentials]
    known: st.SearchStrategy[dict[str, Any]]
    cursors: Mapping[str, str]  # of a second page, by the label of the list's operation
    restore: Callable[[], None]
    changed: bool = False  # whether a request since the last restore may have written

    def call(self, case: schemathesis.Case, role: str) -> None:
        """Sends `case` as `role` to the seeded market, and checks the answer against the
        document. The database is put back only after a request that is not a GET: a GET
        writes nothing that matters (a key's last use)."""
        if self.changed:
            self.restore()
        self.changed = case.method.upper() != "GET"
        excluded = EXCLUDED_CHECKS + ([not_a_server_error] if case.operation.label == HEALTH_OPERATION else [])
        case.call_and_validate(headers=self.callers[role].headers, excluded_checks=excluded)


@dataclass(frozen=True)
class Seeded:
    """What the seeding gives the requests beyond what the database holds: a caller of each
    role, the email of a person who can sign in, and files a supplier may upload."""

    callers: dict[str, Credentials]
    email: str
    files: list[bytes]


def seed_market() -> Seeded:
    """A small market, committed: the operator (off-chain only, so not on the ledger), two
    suppliers, two buyers, two financiers and an auditor, all through KYC and on the ledger (and
    one supplier awaiting KYC, one suspended); invoices along their life; financing requests
    open (one with two offers) and funded; repayments; a mint and a burn; an audit entry; a
    person who can sign in. Every list has a second page for someone. Returns an API key for
    one organisation of each role (the auditor's read-only, as it must be), and a PDF, a UBL
    invoice and a CSV file the supplier may upload."""
    operator = factories.organisation(Role.OPERATOR, name="Anchorline Operations", onboarded=False)
    suppliers = [factories.organisation(Role.SUPPLIER, name=name) for name in ("Shenzhen Parts", "Ningbo Castings")]
    buyers = [factories.organisation(Role.BUYER, name=name) for name in ("Core Motors", "Delta Appliances")]
    financiers = [factories.organisation(Role.FINANCIER, name=name) for name in ("Harbour Bank", "Pearl Factoring")]
    auditor = factories.organisation(Role.AUDITOR, name="Ledger Audit LLP")
    factories.organisation(Role.SUPPLIER, name="Awaiting Review", kyc=KycStatus.PENDING, onboarded=False)
    factories.organisation(Role.SUPPLIER, name="Suspended Supplier", suspended=True)
    supplier, buyer, financier = suppliers[0], buyers[0], financiers[0]
    supplier.legal_identifier, buyer.legal_identifier = UBL_SUPPLIER, UBL_BUYER
    operator_user = factories.user(operator)

    # Registered here (one with its terms as its document, one with its PDF) and queued for
    # the ledger; on the ledger; confirmed; disputed; cancelled; split in two; overdue; and one
    # sold to a financier.
    terms = {"buyer": buyer.id, "amount": "12500.00", "currency": CURRENCY, "issue_date": date.today(),
             "due_date": date.today() + timedelta(days=90)}
    invoice_intake.register_invoice(factories.actor(supplier), invoice_number="SP-2026-0001", **terms)
    invoice_intake.register_pdf_invoice(factories.actor(supplier), _pdf(), filename="SP-2026-0002.pdf",
                                        invoice_number="SP-2026-0002", **terms)
    factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED)
    for_financing = factories.invoice(supplier, buyer)
    factories.invoice(suppliers[1], buyers[1])
    disputed = factories.invoice(supplier, buyer, status=InvoiceStatus.DISPUTED)
    disputed.dispute_reason = "40 housings cracked"
    factories.invoice(supplier, buyers[1], status=InvoiceStatus.CANCELLED)
    whole = factories.invoice(supplier, buyer, status=InvoiceStatus.SPLIT, amount_minor=2_000_000)
    for index, holder in enumerate((supplier, suppliers[1])):
        part = factories.invoice(supplier, buyer, holder=holder)
        part.parent_id, part.split_index, part.invoice_number = whole.id, index, None
    late = factories.invoice(supplier, buyer, issue_date=date.today() - timedelta(days=90), due_in_days=-10)
    late.delinquency = Delinquency.OVERDUE
    sold = factories.invoice(suppliers[1], buyer, holder=financier, amount_minor=5_000_000)
    repaid = factories.invoice(suppliers[1], buyer, holder=financier, status=InvoiceStatus.REPAID)
    repaid.repaid_minor = repaid.amount_minor

    # Two requests open to offers (one with two), one funded; repayments recorded and pending.
    request = factories.financing_request(for_financing)
    for lender in financiers:
        factories.offer(request, lender)
    factories.financing_request(factories.invoice(suppliers[1], buyers[1]), recourse=True)
    funded = factories.financing_request(sold, status=FinancingRequestStatus.FUNDED, asking_advance_minor=4_500_000)
    factories.offer(funded, financier, advance_minor=4_600_000, status=OfferStatus.ACCEPTED)
    for status in (RepaymentStatus.RECORDED, RepaymentStatus.PENDING):
        db.session.add(Repayment(invoice=sold, payer=buyer, amount_minor=1_000_000, status=status))
    sold.repaid_minor = 1_000_000
    for kind, org, reference in ((TokenOperationKind.MINT, buyer, "ab"), (TokenOperationKind.BURN, financier, "cd")):
        db.session.add(TokenOperation(kind=kind, organisation=org, amount_minor=50_000_000,
                                      reference="0x" + reference * 32, created_by=operator_user))
    audit.record(Actor(organisation=operator, user=operator_user), "organisation.kyc", "organisation", auditor.id,
                 before={"kyc_status": "pending"}, after={"kyc_status": "approved"})
    db.session.commit()

    callers = {
        role: api_support.issue_api_key(org, scopes=(Scope.READ,) if role == "auditor" else (Scope.READ, Scope.WRITE),
                                        created_by=factories.user(org))
        for role, org in (("operator", operator), ("supplier", supplier), ("buyer", buyer),
                          ("financier", financier), ("auditor", auditor))
    }
    api_support.issue_api_key(supplier, scopes=(Scope.READ,))  # its ERP's, say
    person = api_support.user_with_password(financier, email="treasury@harbour-bank.example")
    return Seeded(callers, person.email, files=[_pdf(), _ubl_invoice(), _csv_invoices(buyers)])


def _pdf() -> bytes:
    writer, output = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(output)
    return output.getvalue()


def _ubl_invoice() -> bytes:
    """UBL_INVOICE, issued today and due in 60 days."""
    xml = UBL_INVOICE.read_text(encoding="utf-8")
    return (xml.replace(UBL_ISSUE_DATE, date.today().isoformat())
            .replace(UBL_DUE_DATE, (date.today() + timedelta(days=60)).isoformat()).encode())


def _csv_invoices(buyers: Sequence[Organisation]) -> bytes:
    due = (date.today() + timedelta(days=45)).isoformat()
    rows = [f"CSV-{index:04d},{1000 * index}.00,{CURRENCY},{buyer.legal_identifier},{date.today()},{due}"
            for index, buyer in enumerate(buyers, start=1)]
    return "\n".join(["Invoice Number,Amount,Currency,Buyer,Issue Date,Due Date", *rows, ""]).encode()


def open_market(app: Flask, keep: Callable[[], Callable[[], None]]) -> Market:
    """The market seeded on `app`'s (migrated, empty) database; `keep()`, called in an
    application context once the market is seeded, keeps the database as it is and returns
    how to put it back."""
    app.config.update(UNLIMITED)
    with app.app_context():
        seeded = seed_market()
        known = known_values(seeded)
        restore = keep()
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, app)
    return Market(app, schema, seeded.callers, known, _second_page_cursors(app, schema, seeded.callers), restore)


def _second_page_cursors(app: Flask, schema: schemathesis.BaseSchema,
                         callers: Mapping[str, Credentials]) -> dict[str, str]:
    """The cursor of the second page of each list, by its operation's label, as the first
    caller who sees more than one item in it is given it. (Reads: the market is unchanged.)"""
    client, cursors = app.test_client(), {}
    for label in OPERATIONS:
        operation = schema.find_operation_by_label(label)
        if "cursor" not in {parameter.name for parameter in operation.query}:
            continue
        pages = (client.get(operation.path, query_string={"limit": 1}, headers=caller.headers)
                 for caller in callers.values())
        cursor = next((page.json["next_cursor"] for page in pages if page.status_code == 200
                       and page.json["next_cursor"]), None)
        if cursor is not None:
            cursors[label] = cursor
    return cursors


def _copy_database(source: Path, target: Path) -> None:
    """Copies one SQLite database onto another, which may be open (the application's)."""
    source_connection, target_connection = sqlite3.connect(source), sqlite3.connect(target)
    try:
        source_connection.backup(target_connection)
    finally:
        source_connection.close()
        target_connection.close()


def _kept_rows(app: Flask) -> Callable[[], None]:
    """Keeps every table's rows (of `app`'s PostgreSQL database), and returns how to put them
    back: delete every row, insert the kept ones. Deleting audit entries is what the audit log's
    trigger refuses, so it is disabled (in this throw-away database only)."""
    tables = db.metadata.sorted_tables
    rows = {table: [dict(row._mapping) for row in db.session.execute(select(table).order_by(*table.primary_key))]
            for table in tables}
    db.session.execute(text(f"ALTER TABLE audit_log DISABLE TRIGGER {AUDIT_LOG_TRIGGER}"))
    db.session.commit()

    def restore() -> None:
        with app.app_context(), db.engine.begin() as connection:
            for table in reversed(tables):
                connection.execute(table.delete())
            for table in tables:
                if rows[table]:
                    connection.execute(table.insert(), rows[table])

    return restore


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """The market on SQLite, for the module (made once: building the application and the
    market for each of the module's tests would take most of its time)."""
    directory = tmp_path_factory.mktemp("api-schema")
    database, seeded = directory / "market.db", directory / "seeded.db"

    def keep() -> Callable[[], None]:
        _copy_database(database, seeded)
        return lambda: _copy_database(seeded, database)

    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_configuration(monkeypatch, directory)
        app = migrated_app(f"sqlite:///{database}")
        yield open_market(app, keep)
        dispose(app)


# ---------------------------------------------------------------- the requests


def known_values(seeded: Seeded) -> st.SearchStrategy[dict[str, Any]]:
    """A value for each field, path or query parameter that, by its name, names something of the
    market or is a business value (an amount, a currency, a date): ids of what exists (of the
    role the field asks for), amounts and dates the rules may accept, files that are what an
    upload asks for (one time in three: each upload is offered all three kinds). Every value
    is one the document allows for that field."""

    def ids(model: Any) -> st.SearchStrategy[int]:
        return st.sampled_from(list(db.session.scalars(select(model.id).order_by(model.id))))

    organisations = list(db.session.scalars(select(Organisation).order_by(Organisation.id)))

    def having(roles: Role) -> st.SearchStrategy[int]:
        return st.sampled_from([org.id for org in organisations if org.roles & roles])

    now = datetime.now(UTC).replace(microsecond=0)
    amounts = st.sampled_from(["1.50", "100.00", "9000.00", "9500.00", "10000.00"])
    # Before the seeded invoices' due dates (60 days on).
    soon = st.integers(min_value=1, max_value=59).map(lambda days: (now + timedelta(days=days)).isoformat())
    return st.fixed_dictionaries({
        "organisation_id": ids(Organisation),
        "actor_organisation_id": ids(Organisation),
        "buyer_id": having(Role.BUYER),
        "supplier_id": having(Role.SUPPLIER),
        "buyer": having(Role.BUYER),
        "holder": having(Role.SUPPLIER),
        "to": having(Role.SUPPLIER | Role.FINANCIER),
        "key_id": ids(ApiKey),
        "operation_id": ids(TokenOperation),
        "invoice_id": ids(Invoice),
        "request_id": ids(FinancingRequest),
        "financing_request_id": ids(FinancingRequest),
        "offer_id": ids(Offer),
        "repayment_id": ids(Repayment),
        "amount": amounts,
        "advance": amounts,
        "asking_advance": amounts,
        "currency": st.just(CURRENCY),
        "issue_date": st.integers(min_value=0, max_value=30).map(
            lambda days: (date.today() - timedelta(days=days)).isoformat()),
        "due_date": st.integers(min_value=1, max_value=120).map(
            lambda days: (date.today() + timedelta(days=days)).isoformat()),
        "deadline": soon,
        "expiry": soon,
        "expires_at": soon,
        "invoice_number": st.integers(min_value=1, max_value=9999).map(lambda n: f"INV-2026-{n:04d}"),
        "document_sha256": st.sampled_from(list(db.session.scalars(select(Document.sha256)))),
        "file": st.sampled_from(seeded.files),
        # The person who can sign in, or someone new (to add as a user).
        "email": st.just(seeded.email) | st.integers(min_value=1, max_value=10**6).map(
            lambda n: f"person{n}@example.com"),
        "password": st.just(api_support.PASSWORD),
        "legal_identifier": st.integers(min_value=10**12, max_value=10**13 - 1).map(lambda n: f"0088:{n}"),
    })


def _with_known_values(value: Any, known: Mapping[str, Any]) -> Any:
    """`value` (a body, or path or query parameters) with each field named in `known`, at any
    depth, set to the known value."""
    if isinstance(value, dict):
        return {name: known[name] if name in known else _with_known_values(field, known)
                for name, field in value.items()}
    if isinstance(value, list):
        return [_with_known_values(item, known) for item in value]
    return value


def _text_fields(value: Any) -> set[str]:
    """The names of the fields of `value` (at any depth) that hold a string."""
    if isinstance(value, dict):
        return {name for name, field in value.items() if isinstance(field, str)}.union(
            *(_text_fields(field) for field in value.values()))
    if isinstance(value, list):
        return set().union(*(_text_fields(item) for item in value))
    return set()


def _with_a_nul_character(value: Any, field_name: str | None) -> Any:
    """`value` with a NUL character at the end of the string of each field named `field_name`."""
    if isinstance(value, dict):
        return {name: field + "\x00" if name == field_name and isinstance(field, str)
                else _with_a_nul_character(field, field_name) for name, field in value.items()}
    if isinstance(value, list):
        return [_with_a_nul_character(item, field_name) for item in value]
    return value


def requests(operation: schemathesis.APIOperation, known: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy:
    """Valid requests about the market, as they are and with a NUL character in one text field
    of their query or body (the others valid, so that the NUL gets as far as it can); valid
    requests about anything; invalid requests."""
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    drawn = st.tuples(valid, known)

    def about_the_market(case: schemathesis.Case, values: Mapping[str, Any],
                         nul_in: str | None) -> st.SearchStrategy:
        # Given as explicit values rather than edited into the case, so that schemathesis still
        # takes them for a valid request (it cannot tell an uploaded file's bytes from a string).
        query, body = (_with_a_nul_character(_with_known_values(part, values), nul_in)
                       for part in (case.query, case.body))
        return operation.as_strategy(GenerationMode.POSITIVE, query=query, body=body, media_type=case.media_type,
                                     path_parameters=_with_known_values(case.path_parameters, values))

    def with_a_nul_character(case: schemathesis.Case, values: Mapping[str, Any]) -> st.SearchStrategy:
        fields = set().union(*(_text_fields(_with_known_values(part, values)) for part in (case.query, case.body)))
        return st.sampled_from(sorted(fields) or [None]).flatmap(lambda name: about_the_market(case, values, name))

    return st.one_of(drawn.flatmap(lambda pair: about_the_market(*pair, nul_in=None)),
                     drawn.flatmap(lambda pair: with_a_nul_character(*pair)),
                     valid, operation.as_strategy(GenerationMode.NEGATIVE))


# ---------------------------------------------------------------- the tests


def fuzz(market: Market, label: str, roles: Sequence[str], max_examples: int) -> None:
    """Calls the operation `label` with requests from `requests`, each as one of `roles`, and
    checks every answer against the document."""
    operation = market.schema.find_operation_by_label(label)
    known = market.known
    if label in market.cursors:
        known = known.map(lambda values: values | {"cursor": market.cursors[label]})

    @given(case=requests(operation, known), role=st.sampled_from(roles))
    @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    def answers_as_documented(case: schemathesis.Case, role: str) -> None:
        market.call(case, role)

    answers_as_documented()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_operation_answers_as_documented(market: Market, label: str, role: str) -> None:
    fuzz(market, label, [role], max_examples=15)


def test_every_operation_answers_as_documented_on_postgresql(postgres_url: str, instance_dir: Path) -> None:
    """What SQLite forgives, PostgreSQL may refuse with an error (a NUL character in text, say):
    every operation again, on PostgreSQL."""
    app = migrated_app(postgres_url)
    try:
        market_on_postgresql = open_market(app, lambda: _kept_rows(app))
        # Every operation's failure, not only the first one's (schemathesis reports a failure as
        # an exception group).
        failures: dict[str, BaseException] = {}
        for label in OPERATIONS:
            try:
                fuzz(market_on_postgresql, label, ROLES, max_examples=10)
            except (Exception, BaseExceptionGroup) as failure:
                failure.add_note(f"on PostgreSQL: {label}")
                failures[label] = failure
        if failures:
            raise BaseExceptionGroup(f"on PostgreSQL, {len(failures)} of {len(OPERATIONS)} operations fail: "
                                     + "; ".join(failures), list(failures.values()))
    finally:
        dispose(app)
