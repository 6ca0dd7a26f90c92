"""The supplier's pages: its invoice list (by status, a page at a time), each invoice's page
with its ledger timeline, and registering one invoice from its PDF (the form filled in from a
UBL e-invoice when one is given), through the same services as the API."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    Offer,
    Role,
)
from backend.portal.paging import PAGE_SIZE
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text
from tests.test_invoice_intake_services import UBL_DIR, pdf_bytes

REGISTRATION_HASH = "0x" + "ab" * 32
CONFIRMATION_HASH = "0x" + "cd" * 32


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def parties(app: Flask) -> dict[str, int | str]:
    """A supplier with a confirmed invoice whose registration and confirmation are mined (and an
    offer made on it, which moved nothing), a disputed one, and another supplier's invoice."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER, name="Keel Motors")
        financier = factories.organisation(Role.FINANCIER)
        confirmed = factories.invoice(supplier, buyer, status=InvoiceStatus.CONFIRMED, amount_minor=12_345_67)
        disputed = factories.invoice(supplier, buyer, status=InvoiceStatus.DISPUTED)
        for nonce, (signer, function, tx_hash, block) in enumerate(((supplier, "register", REGISTRATION_HASH, 101),
                                                                    (buyer, "confirm", CONFIRMATION_HASH, 107),
                                                                    (financier, "makeOffer", "0x" + "ef" * 32, 110))):
            db.session.add(ChainTransaction(
                intent_key=f"invoice:{confirmed.id}:{function}", signer=signer, invoice=confirmed,
                contract=ContractName.RECEIVABLE_REGISTRY, function=function, args=[], nonce=nonce, raw_tx="0x00",
                status=ChainTransactionStatus.MINED, tx_hash=tx_hash, block_number=block))
        others = factories.invoice(factories.organisation(Role.SUPPLIER), buyer)
        db.session.commit()
        return {"supplier": user_with_password(supplier).email, "buyer": user_with_password(buyer).email,
                "confirmed": confirmed.id, "confirmed_number": confirmed.invoice_number,
                "disputed_number": disputed.invoice_number, "others": others.id}


def test_the_supplier_lists_its_invoices(client, parties):
    portal_sign_in(client, parties["supplier"])

    page = text(client.get("/invoices"))

    assert parties["confirmed_number"] in page and parties["disputed_number"] in page
    assert "Keel Motors" in page and "CN¥12,345.67" in page
    assert f'href="/invoices/{parties["others"]}"' not in page


def test_the_list_filters_by_status(client, parties):
    portal_sign_in(client, parties["supplier"])

    page = text(client.get("/invoices?status=disputed"))

    assert parties["disputed_number"] in page and parties["confirmed_number"] not in page
    assert '<option selected value="disputed">Disputed</option>' in page


def test_the_list_comes_a_page_at_a_time(app, client, parties):
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER)
        buyer = factories.organisation(Role.BUYER)
        for _ in range(PAGE_SIZE + 2):
            factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED)
        email = user_with_password(supplier).email
    portal_sign_in(client, email)

    first, second = text(client.get("/invoices?status=registered")), text(client.get("/invoices?status=registered&page=2"))

    assert first.count('<tr><td><a href="/invoices/') == PAGE_SIZE
    assert second.count('<tr><td><a href="/invoices/') == 2
    assert "Page 1 of 2" in first and 'href="/invoices?page=2&amp;status=registered"' in first
    # A page number beyond the database's integers is the first page, not an overflow.
    assert text(client.get("/invoices?status=registered&page=" + "9" * 30)).count('<tr><td><a href="/invoices/') \
        == PAGE_SIZE


def test_an_invoice_page_shows_its_ledger_timeline(client, parties):
    portal_sign_in(client, parties["supplier"])

    page = text(client.get(f"/invoices/{parties['confirmed']}"))

    assert page.index(REGISTRATION_HASH) < page.index(CONFIRMATION_HASH)
    assert "Confirmed by the buyer" in page and '<td class="number">107</td>' in page
    # An offer moved nothing: it is the financier's and the supplier's business, not the timeline's.
    assert "ef" * 32 not in page
    # The supplier has nothing to answer.
    assert "Your answer" not in page


def test_the_buyer_sees_the_timeline_of_its_payable(client, parties):
    portal_sign_in(client, parties["buyer"])

    assert REGISTRATION_HASH in text(client.get(f"/invoices/{parties['confirmed']}"))


def test_another_organisations_invoice_is_not_found(client, parties):
    portal_sign_in(client, parties["supplier"])

    assert client.get(f"/invoices/{parties['others']}").status_code == 404


def test_the_invoice_list_is_the_suppliers_only(client, parties):
    portal_sign_in(client, parties["buyer"])

    assert client.get("/invoices").status_code == 404
    assert 'href="/invoices"' not in text(client.get("/payables"))


def test_the_list_signs_in_first(client, parties):
    answer = client.get("/invoices")

    assert answer.status_code == 302 and answer.location.startswith("/sign-in")


def test_an_invoice_page_in_chinese(client, parties):
    client.set_cookie("anchorline_language", "zh_Hans_CN")
    portal_sign_in(client, parties["supplier"])

    page = text(client.get(f"/invoices/{parties['confirmed']}"))

    assert "账本记录" in page and "¥12,345.67" in page


# ---------------------------------------------------------------- registering an invoice


@pytest.fixture
def registering(app: Flask) -> dict[str, int | str]:
    """The supplier and buyer of the UBL test invoice (invoice-base.xml), by its legal identifiers."""
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER, name="Rheinkraft Armaturen")
        supplier.legal_identifier = "0088:4000001123452"
        buyer = factories.organisation(Role.BUYER, name="Fjordlys Energi")
        buyer.legal_identifier = "0192:987654325"
        db.session.commit()
        return {"supplier": user_with_password(supplier).email, "buyer": user_with_password(buyer).email,
                "buyer_id": buyer.id}


def invoice_terms(**terms: object) -> dict[str, object]:
    due = date.today() + timedelta(days=60)
    return {"file": (io.BytesIO(pdf_bytes()), "INV-77.pdf"), "invoice_number": "INV-77", "buyer": "0192:987654325",
            "amount": "1250.50", "currency": "CNY", "issue_date": date.today().isoformat(),
            "due_date": due.isoformat()} | terms


def test_the_supplier_registers_an_invoice_from_its_pdf(app, client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/new", "/invoices/new", **invoice_terms())

    assert answer.status_code == 302
    with app.app_context():
        invoice = db.session.scalars(db.select(Invoice)).one()
        assert (invoice.invoice_number, invoice.amount_minor, invoice.buyer_id, invoice.source, invoice.status) == (
            "INV-77", 1_250_50, registering["buyer_id"], InvoiceSource.PDF, InvoiceStatus.PENDING)
        assert [row.function for row in db.session.scalars(db.select(ChainTransaction))] == ["register"]
    assert answer.location == f"/invoices/{invoice.id}"
    page = text(client.get(answer.location))
    assert "The invoice is on its way to the ledger." in page and "Queued" in page


def test_the_services_refusals_are_shown_on_their_fields(app, client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/new", "/invoices/new",
                       **invoice_terms(buyer="0192:000000000", amount="12.345",
                                       file=(io.BytesIO(b"not a pdf"), "x.pdf")))

    assert answer.status_code == 400
    page = text(answer)
    assert 'id="amount-errors"' in page and 'id="file-errors"' in page
    with app.app_context():
        assert factories.count(Invoice) == 0


def test_a_duplicate_invoice_number_is_shown_on_its_field(app, client, registering):
    portal_sign_in(client, registering["supplier"])
    post_form(client, "/invoices/new", "/invoices/new", **invoice_terms())

    answer = post_form(client, "/invoices/new", "/invoices/new", **invoice_terms())

    assert answer.status_code == 400 and 'id="invoice_number-errors"' in text(answer)


def test_a_ubl_e_invoice_fills_in_the_form(app, client, registering):
    portal_sign_in(client, registering["supplier"])
    xml = (UBL_DIR / "invoice-base.xml").read_bytes()

    answer = post_form(client, "/invoices/new/from-ubl", "/invoices/new", ubl=(io.BytesIO(xml), "invoice-base.xml"))

    page = text(answer)
    assert answer.status_code == 200
    assert 'value="AL-2024-0117"' in page and 'value="15250.00"' in page and 'value="0192:987654325"' in page
    with app.app_context():
        assert factories.count(Invoice) == 0  # nothing registered until the PDF is added


def test_an_unreadable_e_invoice_is_shown_on_its_field(client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/new/from-ubl", "/invoices/new", ubl=(io.BytesIO(b"<x/>"), "x.xml"))

    assert answer.status_code == 400 and 'id="ubl-errors"' in text(answer)


def test_only_a_supplier_registers_and_only_with_the_csrf_token(app, client, registering):
    portal_sign_in(client, registering["buyer"])
    assert client.get("/invoices/new").status_code == 404

    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/payables")})
    portal_sign_in(client, registering["supplier"])
    assert client.post("/invoices/new", data=invoice_terms()).status_code == 400
    with app.app_context():
        assert factories.count(Invoice) == 0


# ---------------------------------------------------------------- a bulk CSV upload


def csv_file() -> tuple[io.BytesIO, str]:
    """Two good rows and, on row 3, an amount with too many decimals and an unknown buyer."""
    due = (date.today() + timedelta(days=60)).isoformat()
    today = date.today().isoformat()
    rows = ["invoice_number,buyer,amount,currency,issue_date,due_date",
            f"B-1,0192:987654325,100.00,CNY,{today},{due}",
            f"B-2,0192:000000000,1.005,CNY,{today},{due}",
            f"B-3,0192:987654325,300.00,CNY,{today},{due}"]
    return io.BytesIO("\n".join(rows).encode()), "invoices.csv"


def test_a_csv_upload_with_bad_rows_registers_nothing_by_default(app, client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/upload-csv", "/invoices/upload-csv", file=csv_file(), mode="all-or-nothing")

    assert answer.status_code == 400
    page = text(answer)
    assert '<td class="number">3</td><td>amount</td>' in page
    with app.app_context():
        assert factories.count(Invoice) == 0 and factories.count(ChainTransaction) == 0


def test_a_csv_upload_registers_the_good_rows_when_asked(app, client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/upload-csv", "/invoices/upload-csv", file=csv_file(), mode="valid-rows-only")

    assert answer.status_code == 200
    page = text(answer)
    assert "Invoices on their way to the ledger: 2." in page and ">B-1</a>" in page and ">B-3</a>" in page
    assert '<td class="number">3</td>' in page
    with app.app_context():
        assert sorted(db.session.scalars(db.select(Invoice.invoice_number))) == ["B-1", "B-3"]
        assert [row.function for row in db.session.scalars(db.select(ChainTransaction))] == ["registerBatch"]


def test_a_file_that_is_not_csv_is_shown_on_the_file_field(client, registering):
    portal_sign_in(client, registering["supplier"])

    answer = post_form(client, "/invoices/upload-csv", "/invoices/upload-csv",
                       file=(io.BytesIO(b"\xff\xfe\x00"), "x.csv"), mode="all-or-nothing")

    assert answer.status_code == 400 and 'id="file-errors"' in text(answer)


# ---------------------------------------------------------------- financing


@pytest.fixture
def financed(app: Flask) -> dict[str, int | str]:
    """A supplier's confirmed CN¥10,000.00 receivable due in 60 days, with an open financing
    request and two open offers on it (CN¥9,500.00 and CN¥9,800.00)."""
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        invoice = factories.invoice(supplier, buyer, amount_minor=10_000_00)
        request = factories.financing_request(invoice)
        factories.offer(request, factories.organisation(Role.FINANCIER, name="Pier Bank"), advance_minor=9_500_00)
        factories.offer(request, factories.organisation(Role.FINANCIER, name="Quay Trust"), advance_minor=9_800_00)
        unfinanced = factories.invoice(supplier, buyer)
        db.session.commit()
        return {"supplier": user_with_password(supplier).email, "buyer": user_with_password(buyer).email,
                "invoice": invoice.id, "request": request.id, "unfinanced": unfinanced.id}


def test_the_supplier_requests_financing_on_a_confirmed_receivable(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    path = f"/invoices/{financed['unfinanced']}"
    deadline = (date.today() + timedelta(days=20)).isoformat()

    answer = post_form(client, f"{path}/financing", path, asking_advance="9000.00", deadline=deadline, recourse="y")

    assert answer.status_code == 302
    with app.app_context():
        row = db.session.scalars(db.select(ChainTransaction)).one()
        assert (row.function, row.invoice_id, row.args[1], row.args[3]) == (
            "requestFinancing", financed["unfinanced"], 9_000_00, True)
    assert "The financing request is on its way to the ledger." in text(client.get(path))


def test_a_financing_request_past_the_due_date_is_shown_on_the_deadline(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    path = f"/invoices/{financed['unfinanced']}"

    answer = post_form(client, f"{path}/financing", path, asking_advance="9000.00",
                       deadline=(date.today() + timedelta(days=90)).isoformat())

    assert answer.status_code == 400 and 'id="deadline-errors"' in text(answer)
    with app.app_context():
        assert factories.count(ChainTransaction) == 0


def test_the_offers_side_by_side_with_their_implied_rates(client, financed):
    portal_sign_in(client, financed["supplier"])

    page = text(client.get(f"/financing-requests/{financed['request']}"))

    # 200/9800 × 365/60 and 500/9500 × 365/60, the largest advance first.
    assert page.index("Quay Trust") < page.index("Pier Bank")
    assert "CN¥200.00" in page and "12.41 %" in page and "CN¥500.00" in page and "32.02 %" in page


def test_the_supplier_accepts_an_offer(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    path = f"/financing-requests/{financed['request']}"
    with app.app_context():
        offer_id = db.session.scalars(db.select(Offer.id).where(Offer.advance_minor == 9_800_00)).one()

    answer = post_form(client, f"/offers/{offer_id}/accept", path, advance="9800.00")

    assert answer.status_code == 302 and answer.location == f"/invoices/{financed['invoice']}"
    with app.app_context():
        row = db.session.scalars(db.select(ChainTransaction)).one()
        assert (row.function, row.args[2]) == ("acceptOffer", 9_800_00)


def test_an_offer_revised_since_it_was_seen_is_not_accepted(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    with app.app_context():
        offer_id = db.session.scalars(db.select(Offer.id).where(Offer.advance_minor == 9_800_00)).one()

    answer = post_form(client, f"/offers/{offer_id}/accept", f"/financing-requests/{financed['request']}",
                       advance="9700.00")

    assert answer.status_code == 400 and "offer changed" in text(answer)
    with app.app_context():
        assert factories.count(ChainTransaction) == 0


def test_the_buyer_neither_sees_the_offers_nor_accepts_them(app, client, financed):
    portal_sign_in(client, financed["buyer"])

    page = text(client.get(f"/financing-requests/{financed['request']}"))
    assert "No open offers yet." in page and "Quay Trust" not in page
    assert "Request financing" not in text(client.get(f"/invoices/{financed['invoice']}"))


# ---------------------------------------------------------------- splitting


def test_the_supplier_splits_a_receivable_for_its_own_supplier(app, client, financed):
    with app.app_context():
        own_supplier = factories.organisation(Role.SUPPLIER)
        own_supplier.legal_identifier = "0088:7300010000001"
        db.session.commit()
    portal_sign_in(client, financed["supplier"])
    path = f"/invoices/{financed['unfinanced']}"

    answer = post_form(client, f"{path}/split", path, parts="6000.00, 0088:7300010000001\n\n4000.00, 0088:7300010000001")

    assert answer.status_code == 302
    with app.app_context():
        row = db.session.scalars(db.select(ChainTransaction)).one()
        assert (row.function, row.args[1]) == ("split", [6_000_00, 4_000_00])
        assert factories.count(Invoice) == 4  # the two receivables of the fixture and the two parts
        first_part = db.session.scalars(db.select(Invoice).where(Invoice.split_index == 0)).one()
    page = text(client.get(path))
    assert f'<a href="/invoices/{first_part.id}">Part 1</a>' in page and "CN¥6,000.00" in page
    assert f'href="/invoices/{financed["unfinanced"]}"' in text(client.get(f"/invoices/{first_part.id}"))  # split from


def test_a_split_that_does_not_add_up_is_shown_on_the_parts(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    path = f"/invoices/{financed['unfinanced']}"

    answer = post_form(client, f"{path}/split", path, parts="6000.00, 0088:0000\n4000.00")

    assert answer.status_code == 400
    assert "Line 2: write the amount, a comma, then the recipient." in text(answer)
    answer = post_form(client, f"{path}/split", path, parts="6000.00, 0088:0000\n4000.00, 0088:0000")
    assert answer.status_code == 400 and "Part 1: " in text(answer) and 'id="parts-errors"' in text(answer)
    with app.app_context():
        assert factories.count(ChainTransaction) == 0


# ---------------------------------------------------------------- withdrawing a financing request


def test_the_supplier_withdraws_its_open_request(app, client, financed):
    portal_sign_in(client, financed["supplier"])
    path = f"/financing-requests/{financed['request']}"
    assert "Withdraw the request" in text(client.get(path))

    answer = post_form(client, f"{path}/withdraw", path)

    assert answer.status_code == 302 and answer.location == path
    with app.app_context():
        row = db.session.scalars(db.select(ChainTransaction)).one()
        assert (row.function, row.subject_type, row.subject_id) == ("cancelRequest", "financing_request",
                                                                    financed["request"])
    page = text(client.get(path))
    assert "The withdrawal of the request is on its way to the ledger." in page
    # Once on its way, the request cannot be withdrawn twice.
    assert "Withdraw the request" not in page and "it closes the request once the ledger has it" in page
    assert post_form(client, f"{path}/withdraw", f"/invoices/{financed['invoice']}").status_code == 400


def test_only_the_seller_withdraws_a_request(app, client, financed):
    with app.app_context():
        stranger = user_with_password(factories.organisation(Role.SUPPLIER)).email
    path = f"/financing-requests/{financed['request']}"
    portal_sign_in(client, financed["buyer"])
    assert "Withdraw the request" not in text(client.get(path))
    assert post_form(client, f"{path}/withdraw", path).status_code == 403
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/payables")})

    portal_sign_in(client, stranger)

    # A stranger is not told the request exists.
    assert post_form(client, f"{path}/withdraw", "/invoices").status_code == 404
    assert client.post(f"{path}/withdraw").status_code == 400  # without the CSRF token
    with app.app_context():
        assert factories.count(ChainTransaction) == 0


def test_a_request_no_longer_open_is_not_withdrawn(app, client, financed):
    with app.app_context():
        db.session.get(FinancingRequest, financed["request"]).status = FinancingRequestStatus.FUNDED
        db.session.commit()
    portal_sign_in(client, financed["supplier"])
    path = f"/financing-requests/{financed['request']}"
    assert "Withdraw the request" not in text(client.get(path))

    answer = post_form(client, f"{path}/withdraw", f"/invoices/{financed['invoice']}")

    assert answer.status_code == 400 and "not open" in text(answer)


# ---------------------------------------------------------------- a CSV upload's progress and timeline


def test_the_csv_upload_form_shows_the_uploads_progress(client, registering):
    portal_sign_in(client, registering["supplier"])

    page = text(client.get("/invoices/upload-csv"))

    # Without JavaScript a plain multipart post; with it, htmx posts it and the script moves the bar.
    assert '<form method="post" action="/invoices/upload-csv" enctype="multipart/form-data"' in page
    assert 'hx-post="/invoices/upload-csv"' in page and 'data-upload-progress="csv-upload-progress"' in page
    assert '<label for="csv-upload-progress"' in page
    assert '<progress id="csv-upload-progress" max="100" value="0"></progress>' in page
    assert '<script defer src="/static/portal/upload_progress.js"></script>' in page
    script = client.get("/static/portal/upload_progress.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert "htmx:config:request" in text(script) and 'request.upload.addEventListener("progress"' in text(script)


def test_a_csv_invoices_timeline_shows_its_registration_in_the_batch(app, client, registering):
    portal_sign_in(client, registering["supplier"])
    post_form(client, "/invoices/upload-csv", "/invoices/upload-csv", file=csv_file(), mode="valid-rows-only")
    with app.app_context():
        batch = db.session.scalars(db.select(ChainTransaction)).one()
        batch.status, batch.nonce, batch.raw_tx, batch.tx_hash, batch.block_number = (
            ChainTransactionStatus.MINED, 0, "0x00", REGISTRATION_HASH, 123)
        invoice_id = db.session.scalars(db.select(Invoice.id).where(Invoice.invoice_number == "B-3")).one()
        db.session.commit()

    page = text(client.get(f"/invoices/{invoice_id}"))

    timeline = page[page.index('id="timeline"'):page.index("</table>", page.index('id="timeline"'))]
    assert "Registered<br><span class=\"hint\">sent in a batch of registrations</span>" in timeline
    assert REGISTRATION_HASH in timeline and '<td class="number">123</td>' in timeline and "Mined" in timeline
