"""The invoices API (backend/api/invoices.py): registration from JSON, PDF, UBL and CSV, the
buyer's confirmation and dispute, cancellation, split, transfer, and the reads. Each test builds
its data in an application context, then calls the API with a client outside it."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pypdf import PdfWriter
from sqlalchemy import select

from backend.extensions import db
from backend.models import ChainTransaction, FinancingRequestStatus, Invoice, InvoiceStatus, Organisation, Role
from backend.services import invoice_intake
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, caller, problem_code

UBL_DIR = Path(__file__).parent / "data" / "intake" / "ubl"
ISSUED = date.today()
DUE = ISSUED + timedelta(days=60)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def supplier(app: Flask) -> Credentials:
    return caller(app, Role.SUPPLIER)


@pytest.fixture
def buyer(app: Flask) -> Credentials:
    return caller(app, Role.BUYER)


def organisation(app: Flask, organisation_id: int) -> dict[str, Any]:
    with app.app_context():
        org = db.session.get(Organisation, organisation_id)
        return {"id": org.id, "legal_identifier": org.legal_identifier, "chain_address": org.chain_address}


def invoice_in(app: Flask, supplier: Credentials, buyer: Credentials, **options: Any) -> int:
    """An invoice as the indexer leaves it (confirmed unless `status` says otherwise)."""
    with app.app_context():
        holder = options.pop("holder", None)
        row = factories.invoice(db.session.get(Organisation, supplier.organisation_id),
                                db.session.get(Organisation, buyer.organisation_id),
                                holder=db.session.get(Organisation, holder.organisation_id) if holder else None,
                                **options)
        db.session.commit()
        return row.id


def intents(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        return [(row.intent_key, row.function)
                for row in db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id))]


def terms(buyer: Credentials) -> dict[str, Any]:
    return {"invoice_number": "INV-0001", "buyer": buyer.organisation_id, "amount": "1250.50", "currency": "EUR",
            "issue_date": ISSUED.isoformat(), "due_date": DUE.isoformat()}


def pdf_bytes() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def pending(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(action["function"], action["status"]) for action in body["pending_actions"]]


# ---------------------------------------------------------------- registration from JSON


def test_a_registration_answers_202_with_the_pending_invoice_and_where_to_poll(app, client, supplier, buyer):
    response = client.post("/api/v1/invoices", json=terms(buyer), headers=supplier.headers)

    assert response.status_code == 202, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/v1/invoices/{body['id']}"
    assert (body["status"], body["source"], body["amount"], body["amount_minor"], body["currency"]) == (
        "pending", "api", "1250.50", 125050, "EUR")
    assert (body["supplier_id"], body["buyer_id"], body["holder_id"]) == (
        supplier.organisation_id, buyer.organisation_id, supplier.organisation_id)
    assert (body["repaid"], body["parent_id"], body["children"]) == ("0.00", None, [])
    assert body["receivable_id"].startswith("0x") and len(body["receivable_id"]) == 66
    assert pending(body) == [("register", "queued")]
    assert intents(app) == [(f"invoice:{body['id']}:register", "register")]

    polled = client.get(response.headers["Location"], headers=supplier.headers)
    assert polled.status_code == 200 and polled.json == body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 1250.5}, "amount"),  # amounts are strings: a float has lost the exact amount already
        ({"amount": "12.345"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"issue_date": "01/02/2026"}, "issue_date"),
        ({"due_date": ISSUED.isoformat()}, "due_date"),
        ({"buyer": True}, "buyer"),
        ({"buyer": "0088:0000000000000"}, "buyer"),
        ({"invoice_number": None}, "invoice_number"),
    ],
)
def test_a_bad_registration_is_a_422_naming_the_field(app, client, supplier, buyer, changes, field):
    response = client.post("/api/v1/invoices", json=terms(buyer) | changes, headers=supplier.headers)

    assert response.status_code == 422 and problem_code(response) == "invalid-input"
    assert field in response.json["errors"]
    assert intents(app) == []


def test_a_missing_field_is_a_422(client, supplier, buyer):
    body = terms(buyer)
    del body["due_date"]
    response = client.post("/api/v1/invoices", json=body, headers=supplier.headers)
    assert response.status_code == 422 and "due_date" in response.json["errors"]


@pytest.mark.parametrize(
    ("roles", "scopes", "status"),
    [(Role.BUYER, ("read", "write"), 403), (Role.FINANCIER, ("read", "write"), 403), (Role.SUPPLIER, ("read",), 403)],
)
def test_only_a_supplier_with_a_writing_key_registers(app, client, buyer, roles, scopes, status):
    response = client.post("/api/v1/invoices", json=terms(buyer), headers=caller(app, roles, scopes=scopes).headers)
    assert response.status_code == status and problem_code(response) == "permission-denied"


def test_registration_needs_a_caller(client, buyer):
    assert client.post("/api/v1/invoices", json=terms(buyer)).status_code == 401


def test_an_invoice_registered_twice_is_a_409(client, supplier, buyer):
    assert client.post("/api/v1/invoices", json=terms(buyer), headers=supplier.headers).status_code == 202
    again = client.post("/api/v1/invoices", json=terms(buyer), headers=supplier.headers)
    assert again.status_code == 409 and problem_code(again) == "duplicate"


# ---------------------------------------------------------------- PDF, UBL, CSV


def test_a_pdf_registration_serves_the_pdf_back_as_its_document(client, supplier, buyer):
    pdf = pdf_bytes()
    form = terms(buyer) | {"file": (io.BytesIO(pdf), "INV-0001.pdf", "application/pdf")}

    response = client.post("/api/v1/invoices/pdf", data=form, headers=supplier.headers)

    assert response.status_code == 202, response.json
    assert (response.json["source"], response.json["document_sha256"]) == ("pdf", hashlib.sha256(pdf).hexdigest())
    document = client.get(f"/api/v1/invoices/{response.json['id']}/document", headers=buyer.headers)
    assert (document.status_code, document.mimetype, document.data) == (200, "application/pdf", pdf)
    assert "INV-0001.pdf" in document.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        # Made per run: the test client closes an uploaded file, and each case runs once per backend.
        (lambda: {"file": (io.BytesIO(b"not a pdf"), "x.pdf")}, "file"),
        (lambda: {}, "file"),
        (lambda: {"file": (io.BytesIO(b"%PDF-1.7"), "x.pdf"), "buyer": ""}, "buyer"),
    ],
)
def test_a_bad_pdf_registration_is_a_422(app, client, supplier, buyer, form, field):
    response = client.post("/api/v1/invoices/pdf", data=terms(buyer) | form(), headers=supplier.headers)
    assert response.status_code == 422 and field in response.json["errors"]
    assert intents(app) == []


@pytest.fixture
def ubl_parties(app: Flask, monkeypatch: pytest.MonkeyPatch) -> tuple[Credentials, Credentials]:
    """The supplier and buyer of invoice-base.xml, on the day it was issued."""
    monkeypatch.setattr(invoice_intake, "utc_today", lambda: date(2024, 3, 4))
    with app.app_context():
        rheinkraft, fjordlys = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        rheinkraft.legal_identifier, fjordlys.legal_identifier = "0088:4000001123452", "0192:987654325"
        return api_support.issue_api_key(rheinkraft), api_support.issue_api_key(fjordlys)


@pytest.mark.parametrize("as_file", [False, True], ids=["xml-body", "multipart"])
def test_a_ubl_invoice_is_registered_from_the_body_or_a_file(client, ubl_parties, as_file):
    supplier, buyer = ubl_parties
    xml = (UBL_DIR / "invoice-base.xml").read_bytes()
    if as_file:
        response = client.post("/api/v1/invoices/ubl", data={"file": (io.BytesIO(xml), "base.xml")},
                               headers=supplier.headers)
    else:
        response = client.post("/api/v1/invoices/ubl", data=xml, content_type="application/xml",
                               headers=supplier.headers)

    assert response.status_code == 202, response.json
    body = response.json
    assert (body["source"], body["invoice_number"], body["amount"], body["buyer_id"]) == (
        "ubl", "AL-2024-0117", "15250.00", buyer.organisation_id)
    document = client.get(f"/api/v1/invoices/{body['id']}/document", headers=buyer.headers)
    assert (document.mimetype, document.data) == ("application/xml", xml)


def test_a_ubl_credit_note_or_another_suppliers_invoice_is_a_422(app, client, ubl_parties):
    supplier, _ = ubl_parties
    credit_note = client.post("/api/v1/invoices/ubl", data=(UBL_DIR / "creditnote.xml").read_bytes(),
                              content_type="application/xml", headers=supplier.headers)
    assert credit_note.status_code == 422 and "file" in credit_note.json["errors"]
    stranger = caller(app, Role.SUPPLIER)
    foreign = client.post("/api/v1/invoices/ubl", data=(UBL_DIR / "invoice-base.xml").read_bytes(),
                          content_type="application/xml", headers=stranger.headers)
    assert foreign.status_code == 422 and "supplier" in foreign.json["errors"]


def csv_upload(buyer: dict[str, Any], mode: str, *extra_rows: str) -> dict[str, Any]:
    rows = [f"C-1,{buyer['legal_identifier']},100.00,EUR,{ISSUED},{DUE}",
            f"C-2,{buyer['chain_address']},7.50,EUR,{ISSUED},{DUE}", *extra_rows]
    data = "invoice_number,buyer,amount,currency,issue_date,due_date\n" + "\n".join(rows) + "\n"
    return {"file": (io.BytesIO(data.encode()), "invoices.csv", "text/csv"), "mode": mode}


def test_a_csv_upload_registers_the_good_rows_and_reports_the_bad(app, client, supplier, buyer):
    payer = organisation(app, buyer.organisation_id)
    form = csv_upload(payer, "valid-rows-only", f"C-3,{payer['legal_identifier']},1.001,EUR,{ISSUED},{DUE}")

    response = client.post("/api/v1/invoices/csv", data=form, headers=supplier.headers)

    assert response.status_code == 202, response.json
    assert response.json["errors"] == [{"row": 4, "column": "amount", "reason": response.json["errors"][0]["reason"]}]
    assert len(response.json["invoice_ids"]) == 2
    assert response.headers["Location"] == "/api/v1/invoices?as=supplier&status=pending"
    first, second = response.json["invoice_ids"]
    assert intents(app) == [(f"invoice-batch:{first}-{second}:register", "registerBatch")]
    polled = client.get(f"/api/v1/invoices/{first}", headers=supplier.headers).json
    assert pending(polled) == [("registerBatch", "queued")]


def test_an_all_or_nothing_csv_upload_with_a_bad_row_is_a_422_listing_it(app, client, supplier, buyer):
    payer = organisation(app, buyer.organisation_id)
    form = csv_upload(payer, "all-or-nothing", f"C-3,0088:0000000000000,1.00,EUR,{ISSUED},{DUE}")

    response = client.post("/api/v1/invoices/csv", data=form, headers=supplier.headers)

    assert response.status_code == 422
    assert list(response.json["errors"]) == ["rows.4.buyer"]
    assert intents(app) == []


def test_a_csv_upload_needs_a_mode(client, supplier, buyer, app):
    form = csv_upload(organisation(app, buyer.organisation_id), "some")
    response = client.post("/api/v1/invoices/csv", data=form, headers=supplier.headers)
    assert response.status_code == 422 and "mode" in response.json["errors"]


# ---------------------------------------------------------------- the lifecycle


def test_the_buyer_confirms_and_the_invoice_shows_the_pending_confirmation(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer, status=InvoiceStatus.REGISTERED)

    response = client.post(f"/api/v1/invoices/{invoice_id}/confirm", headers=buyer.headers)

    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/invoices/{invoice_id}"
    assert (response.json["status"], pending(response.json)) == ("registered", [("confirm", "queued")])
    again = client.post(f"/api/v1/invoices/{invoice_id}/confirm", headers=buyer.headers)
    assert again.status_code == 409 and problem_code(again) == "invalid-state"


def test_confirming_is_for_the_invoices_buyer_only(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer, status=InvoiceStatus.REGISTERED)
    assert client.post(f"/api/v1/invoices/{invoice_id}/confirm", headers=supplier.headers).status_code == 403
    stranger = caller(app, Role.BUYER)
    assert client.post(f"/api/v1/invoices/{invoice_id}/confirm", headers=stranger.headers).status_code == 404
    assert client.post(f"/api/v1/invoices/{2**40}/confirm", headers=buyer.headers).status_code == 404
    assert intents(app) == []


def test_a_confirmed_invoice_cannot_be_confirmed_again(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    response = client.post(f"/api/v1/invoices/{invoice_id}/confirm", headers=buyer.headers)
    assert response.status_code == 409 and problem_code(response) == "invalid-state"


def test_the_buyer_disputes_with_a_reason(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer, status=InvoiceStatus.REGISTERED)

    response = client.post(f"/api/v1/invoices/{invoice_id}/dispute", headers=buyer.headers,
                           json={"reason": "goods-defective", "note": "3 valves leak"})

    assert response.status_code == 202
    assert response.json["dispute_reason"] == "goods-defective: 3 valves leak"
    assert pending(response.json) == [("dispute", "queued")]


@pytest.mark.parametrize("body", [{}, {"reason": "changed-my-mind"}, {"reason": "other", "note": "x" * 2001}])
def test_a_dispute_needs_a_known_reason(app, client, supplier, buyer, body):
    invoice_id = invoice_in(app, supplier, buyer, status=InvoiceStatus.REGISTERED)
    response = client.post(f"/api/v1/invoices/{invoice_id}/dispute", headers=buyer.headers, json=body)
    assert response.status_code == 422 and set(response.json["errors"]) <= {"reason", "note"}


def test_the_supplier_cancels_an_unconfirmed_invoice(app, client, supplier, buyer):
    registered = invoice_in(app, supplier, buyer, status=InvoiceStatus.REGISTERED)
    confirmed = invoice_in(app, supplier, buyer)

    assert client.post(f"/api/v1/invoices/{registered}/cancel", headers=supplier.headers).status_code == 202
    refused = client.post(f"/api/v1/invoices/{confirmed}/cancel", headers=supplier.headers)
    assert refused.status_code == 409
    assert client.post(f"/api/v1/invoices/{registered}/cancel", headers=buyer.headers).status_code == 403
    assert intents(app) == [(f"invoice:{registered}:cancel", "cancel")]


def test_the_holder_splits_and_the_parts_show_their_lineage(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer, amount_minor=1_000_000, currency="CNY")
    sub_supplier = caller(app, Role.SUPPLIER)
    address = organisation(app, sub_supplier.organisation_id)["chain_address"]

    response = client.post(f"/api/v1/invoices/{invoice_id}/split", headers=supplier.headers, json={
        "currency": "CNY", "parts": [{"amount": "4000", "holder": address},
                                     {"amount": "6000.00", "holder": supplier.organisation_id}]})

    assert response.status_code == 202, response.json
    assert pending(response.json) == [("split", "queued")]
    first, second = response.json["children"]
    part = client.get(f"/api/v1/invoices/{first}", headers=sub_supplier.headers)
    assert part.status_code == 200
    assert (part.json["parent_id"], part.json["split_index"], part.json["amount"], part.json["status"],
            part.json["holder_id"]) == (invoice_id, 0, "4000.00", "pending", sub_supplier.organisation_id)


@pytest.mark.parametrize(
    ("parts", "field"),
    [
        ([{"amount": "4000", "holder": "me"}, {"amount": "5000", "holder": "me"}], "parts"),
        ([{"amount": "4000", "holder": "buyer"}, {"amount": "6000", "holder": "me"}], "parts.0.holder"),
        ([{"amount": 4000, "holder": "me"}, {"amount": "6000", "holder": "me"}], "parts.0.amount"),
        ([{"amount": "10000"}], "parts.0.holder"),
    ],
)
def test_a_bad_split_is_a_422_naming_the_part(app, client, supplier, buyer, parts, field):
    invoice_id = invoice_in(app, supplier, buyer, amount_minor=1_000_000, currency="CNY")
    names = {"me": supplier.organisation_id, "buyer": buyer.organisation_id}
    parts = [part | ({"holder": names[part["holder"]]} if "holder" in part else {}) for part in parts]

    response = client.post(f"/api/v1/invoices/{invoice_id}/split", headers=supplier.headers,
                           json={"currency": "CNY", "parts": parts})

    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert intents(app) == []


def test_the_holder_transfers_a_confirmed_receivable(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    financier = caller(app, Role.FINANCIER)

    response = client.post(f"/api/v1/invoices/{invoice_id}/transfer", headers=supplier.headers,
                           json={"to": organisation(app, financier.organisation_id)["legal_identifier"]})

    assert response.status_code == 202
    assert (response.json["holder_id"], pending(response.json)) == (
        supplier.organisation_id, [("transferFrom", "queued")])
    assert client.post(f"/api/v1/invoices/{invoice_id}/transfer", headers=supplier.headers,
                       json={"to": financier.organisation_id}).status_code == 409  # the first is on its way


def test_a_transfer_to_oneself_or_of_someone_elses_receivable_is_refused(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    to_self = client.post(f"/api/v1/invoices/{invoice_id}/transfer", headers=supplier.headers,
                          json={"to": supplier.organisation_id})
    assert to_self.status_code == 422 and "to" in to_self.json["errors"]
    stranger = caller(app, Role.SUPPLIER)
    assert client.post(f"/api/v1/invoices/{invoice_id}/transfer", headers=stranger.headers,
                       json={"to": supplier.organisation_id}).status_code == 404


def test_a_receivable_offered_for_financing_is_not_transferred(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    with app.app_context():
        factories.financing_request(db.session.get(Invoice, invoice_id), status=FinancingRequestStatus.OPEN)
        db.session.commit()
    financier = caller(app, Role.FINANCIER)
    response = client.post(f"/api/v1/invoices/{invoice_id}/transfer", headers=supplier.headers,
                           json={"to": financier.organisation_id})
    assert response.status_code == 409 and problem_code(response) == "invalid-state"


# ---------------------------------------------------------------- reads


def test_the_list_shows_what_the_caller_may_see_filtered_and_paged(app, client, supplier, buyer):
    soon = invoice_in(app, supplier, buyer, due_in_days=10)
    later = invoice_in(app, supplier, buyer, due_in_days=90, status=InvoiceStatus.REGISTERED)
    other_buyer = caller(app, Role.BUYER)
    invoice_in(app, caller(app, Role.SUPPLIER), other_buyer)

    inbox = client.get("/api/v1/invoices?as=buyer", headers=buyer.headers)
    assert inbox.status_code == 200
    assert [item["id"] for item in inbox.json["items"]] == [soon, later]  # by due date
    assert client.get("/api/v1/invoices?as=buyer", headers=supplier.headers).json["items"] == []
    registered = client.get("/api/v1/invoices?status=registered&as=supplier", headers=supplier.headers).json
    assert [item["id"] for item in registered["items"]] == [later]
    due_range = f"due_from={ISSUED + timedelta(days=30)}&due_to={ISSUED + timedelta(days=100)}"
    assert [item["id"] for item in client.get(f"/api/v1/invoices?{due_range}", headers=buyer.headers).json["items"]
            ] == [later]

    first_page = client.get("/api/v1/invoices?limit=1", headers=buyer.headers).json
    assert [item["id"] for item in first_page["items"]] == [soon] and first_page["next_cursor"]
    second_page = client.get(f"/api/v1/invoices?limit=1&cursor={first_page['next_cursor']}", headers=buyer.headers)
    assert [item["id"] for item in second_page.json["items"]] == [later] and second_page.json["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=lost", "as=auditor", "buyer_id=0", f"supplier_id={2**40}",
                                   "amount_min_minor=-1", "due_from=yesterday", "currency=EURO"])
def test_a_bad_filter_is_a_422(client, supplier, query):
    response = client.get(f"/api/v1/invoices?{query}", headers=supplier.headers)
    assert response.status_code == 422 and problem_code(response) == "invalid-input"


def test_an_invoice_the_caller_may_not_see_is_a_404(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    stranger = caller(app, Role.SUPPLIER)
    for path in (f"/api/v1/invoices/{invoice_id}", f"/api/v1/invoices/{invoice_id}/document"):
        response = client.get(path, headers=stranger.headers)
        assert response.status_code == 404 and problem_code(response) == "not-found"
    assert client.get(f"/api/v1/invoices/{2**40}", headers=supplier.headers).status_code == 404


def test_the_document_of_an_invoice_registered_without_one_is_its_statement(client, supplier, buyer):
    registered = client.post("/api/v1/invoices", json=terms(buyer), headers=supplier.headers).json

    document = client.get(f"/api/v1/invoices/{registered['id']}/document", headers=buyer.headers)

    assert (document.status_code, document.mimetype) == (200, "application/json")
    assert hashlib.sha256(document.data).hexdigest() == registered["document_sha256"]
    assert json.loads(document.data)["invoice_number"] == "INV-0001"


def test_an_invoice_without_a_document_has_none_to_serve(app, client, supplier, buyer):
    invoice_id = invoice_in(app, supplier, buyer)
    response = client.get(f"/api/v1/invoices/{invoice_id}/document", headers=buyer.headers)
    assert response.status_code == 404 and "no document" in response.json["detail"]
