"""The auditor's pages (backend/portal/auditor.py), for the auditor and the operator: the ledger
explorer (search, a receivable's history, lineage and document check), the audit-log search and
both CSV exports; read-only, and nobody else's."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    Document,
    InvoiceStatus,
    Organisation,
    Role,
)
from backend.models.types import MAX_ROW_ID
from backend.portal.paging import PAGE_SIZE
from backend.services import audit, invoices
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, text

PDF = b"%PDF-1.7 the invoice Harbour Textiles uploaded"
ZERO_ADDRESS = "0x" + "00" * 20
REGISTRATION_TX, CONFIRMATION_TX = "0x" + "a1" * 32, "0x" + "c2" * 32
PAGES = ("/explorer", "/explorer/export.csv", "/audit-log", "/audit-log/export.csv")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def ledger_away(app: Flask, unused_port) -> None:
    """No node answers at the app's ETH_RPC_URL: the document check reads the indexed event."""
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{unused_port()}"


@pytest.fixture
def platform(app: Flask, ledger_away) -> dict[str, object]:
    """A receivable registered (its document stored), confirmed, split, and one part split again;
    the indexed events of its registration and confirmation (stored out of chain order) and a
    repayment still queued; a user of each role."""
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER, name="Harbour Textiles")
        buyer = factories.organisation(Role.BUYER, name="Keel Motors")
        sub_supplier = factories.organisation(Role.SUPPLIER, name="Loom Works")
        financier = factories.organisation(Role.FINANCIER, name="Tidewater Capital")
        origin = factories.invoice(supplier, buyer, status=InvoiceStatus.SPLIT, amount_minor=1_000_000)
        digest = invoices.document_store().put(PDF)
        db.session.add(Document(sha256=digest, media_type="application/pdf", size_bytes=len(PDF),
                                uploaded_by_id=supplier.id))
        origin.document_sha256 = digest
        part = factories.split_part(origin, 0, amount_minor=700_000, status=InvoiceStatus.SPLIT)
        kept = factories.split_part(origin, 1, amount_minor=300_000)
        grandchild = factories.split_part(part, 0, amount_minor=650_000, holder=sub_supplier)
        financed = factories.split_part(part, 1, amount_minor=50_000, holder=financier)
        key = str(int(origin.receivable_id, 16))
        factories.chain_event("ReceivableConfirmed", {"id": key}, block_number=108, tx_hash=CONFIRMATION_TX)
        factories.chain_event("ReceivableRegistered", {
            "id": key, "supplier": supplier.chain_address, "buyer": buyer.chain_address, "amount": 1_000_000,
            "currency": "0x434e59", "issueDate": 1_767_225_600, "dueDate": 1_772_323_200,
            "invoiceNumberHash": origin.invoice_number_hash, "documentHash": "0x" + digest}, block_number=101,
            tx_hash=REGISTRATION_TX)
        db.session.add(ChainTransaction(intent_key=f"invoice:{kept.id}:repay:1", signer=buyer, invoice=kept,
                                        contract=ContractName.FINANCING, function="repay", args=[]))
        users = {role: user_with_password(org).email for role, org in (
            ("supplier", supplier), ("buyer", buyer), ("financier", financier),
            ("auditor", factories.organisation(Role.AUDITOR, name="Ledger Audit LLP", onboarded=False)),
            ("operator", factories.organisation(Role.OPERATOR, onboarded=False)))}
        db.session.commit()
        return {**users, "origin": origin.id, "origin_number": origin.invoice_number, "part": part.id,
                "kept": kept.id, "grandchild": grandchild.id, "financed": financed.id, "digest": digest,
                "supplier_id": supplier.id,
                "origin_receivable": origin.receivable_id}


def rows(page: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", page, re.S)


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text(response))))


# ---------------------------------------------------------------- who may


@pytest.mark.parametrize("reader", ["auditor", "operator"])
def test_the_auditor_and_the_operator_explore_the_ledger(client, platform, reader):
    portal_sign_in(client, platform[reader])

    page = text(client.get("/explorer"))

    assert 'href="/explorer"' in page and 'href="/audit-log"' in page  # in the navigation
    assert f'href="/explorer/receivables/{platform["origin"]}"' in page
    assert "Part 1 of a split" in page and "Loom Works" in page
    assert client.get(f"/explorer/receivables/{platform['grandchild']}").status_code == 200
    assert client.get("/audit-log").status_code == 200


def test_participants_are_told_the_pages_do_not_exist(app, platform):
    for participant in ("supplier", "buyer", "financier"):
        client = app.test_client()
        portal_sign_in(client, platform[participant])
        for path in (*PAGES, f"/explorer/receivables/{platform['origin']}"):
            assert client.get(path).status_code == 404, (participant, path)
        assert 'href="/explorer"' not in text(client.get("/", follow_redirects=True))


def test_the_pages_change_nothing_and_take_no_post(client, platform):
    portal_sign_in(client, platform["auditor"])
    token = csrf_token(client, "/explorer")  # the language switch's, good for the session

    for path in (*PAGES, f"/explorer/receivables/{platform['origin']}"):
        page = text(client.get(path))
        if not path.endswith(".csv"):
            assert 'method="post"' not in page.split("<main", 1)[1]  # the sign-out form is the header's
        for method in (client.post, client.put, client.patch, client.delete):
            assert method(path, headers={"X-CSRFToken": token}).status_code == 405, (method, path)


# ---------------------------------------------------------------- the explorer


def test_the_explorer_searches_and_pages(app, client, platform):
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER, name="Rare Buyer")
        for _ in range(PAGE_SIZE + 1):
            factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED)
        db.session.commit()
    portal_sign_in(client, platform["auditor"])

    first = text(client.get("/explorer?buyer=rare&status=registered"))
    second = text(client.get("/explorer?buyer=rare&status=registered&page=2"))
    by_number = text(client.get(f"/explorer?invoice_number={platform['origin_number']}"))

    assert len(rows(first)) == PAGE_SIZE + 1 and len(rows(second)) == 2  # a header row each
    assert 'href="/explorer?page=2&amp;buyer=rare&amp;status=registered"' in first
    assert 'href="/explorer/export.csv?buyer=rare&amp;status=registered"' in first
    assert "Keel Motors" not in first
    assert len(rows(by_number)) == 2 and platform["origin_receivable"] in by_number


def test_a_malformed_receivable_id_is_shown_beside_its_field(client, platform):
    portal_sign_in(client, platform["auditor"])

    response = client.get("/explorer?receivable_id=0xzz")

    assert response.status_code == 400
    assert 'id="receivable_id-errors"' in text(response) and "hex digits" in text(response)
    assert client.get("/explorer/export.csv?receivable_id=0xzz").status_code == 400


def test_the_receivable_page_shows_its_history_in_chain_order(client, platform):
    portal_sign_in(client, platform["auditor"])

    page = text(client.get(f"/explorer/receivables/{platform['origin']}"))

    assert page.index(REGISTRATION_TX) < page.index(CONFIRMATION_TX)
    assert '<td class="number">101</td>' in page and '<td class="number">108</td>' in page
    assert "<code>ReceivableRegistered</code>" in page
    assert "Registered by Harbour Textiles for Keel Motors: CN¥10,000.00, issued Jan 1, 2026" in page


def test_a_receivable_id_beyond_the_database_s_integers_is_not_found(client, platform):
    portal_sign_in(client, platform["auditor"])

    assert client.get(f"/explorer/receivables/{MAX_ROW_ID + 1}").status_code == 404


def test_a_queued_write_is_marked_as_not_yet_mined(client, platform):
    portal_sign_in(client, platform["auditor"])

    page = text(client.get(f"/explorer/receivables/{platform['kept']}"))

    assert "<code>repay</code>" in page and "Queued (not yet mined)" in page and "not sent yet" in page


def test_the_lineage_of_a_split_of_a_split(client, platform):
    portal_sign_in(client, platform["auditor"])

    grandchild = text(client.get(f"/explorer/receivables/{platform['grandchild']}"))
    origin = text(client.get(f"/explorer/receivables/{platform['origin']}"))

    split_from = grandchild.split("Split from", 1)[1]
    assert (split_from.index(f'href="/explorer/receivables/{platform["origin"]}"')
            < split_from.index(f'href="/explorer/receivables/{platform["part"]}"')
            < split_from.index('aria-current="page"'))
    assert "CN¥6,500.00, held by Loom Works" in split_from
    tree = origin.split("Split into", 1)[1]
    # The part split again holds its own parts, nested under it.
    assert re.search(rf'receivables/{platform["part"]}".*?<ul>.*?held by Loom Works.*?held by Tidewater Capital.*?</ul>'
                     rf'.*?receivables/{platform["kept"]}"', tree, re.S)


def test_the_document_check_compares_with_the_indexed_registration_when_the_ledger_is_away(client, platform):
    portal_sign_in(client, platform["auditor"])

    page = text(client.get(f"/explorer/receivables/{platform['grandchild']}"))

    assert "MATCH: the stored document is the one the ledger anchors" in page
    assert page.count(platform["digest"]) >= 3  # computed, anchored, recorded
    assert "the indexed registration event (the ledger did not answer)" in page
    assert "the invoice this part was split from" in page


def test_the_document_check_shows_a_tampered_or_missing_document(app, client, platform):
    portal_sign_in(client, platform["auditor"])
    with app.app_context():
        stored = invoices.document_store().path_for(platform["digest"])
    stored.write_bytes(b"%PDF-1.7 changed after the fact")

    tampered = text(client.get(f"/explorer/receivables/{platform['origin']}"))
    stored.unlink()
    missing = text(client.get(f"/explorer/receivables/{platform['origin']}"))

    assert "MISMATCH" in tampered and hashlib.sha256(b"%PDF-1.7 changed after the fact").hexdigest() in tampered
    assert "Document missing" in missing and "no document stored" in missing


def test_the_receivables_export_is_filtered_like_the_list(client, platform):
    portal_sign_in(client, platform["operator"])

    response = client.get("/explorer/export.csv?supplier=harbour&status=confirmed")

    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    header, *lines = read_csv(response)
    assert header[:3] == ["invoice_id", "receivable_id", "invoice_number"]
    assert sorted(int(line[0]) for line in lines) == sorted((platform["kept"], platform["grandchild"],
                                                             platform["financed"]))
    record = next(dict(zip(header, line)) for line in lines if line[0] == str(platform["kept"]))
    assert (record["amount"], record["currency"], record["status"]) == ("3000.00", "CNY", "confirmed")


# ---------------------------------------------------------------- the audit log


@pytest.fixture
def entries(app: Flask, platform) -> dict[str, object]:
    """Four entries a day apart: three by two users of the supplier, one by the platform."""
    with app.app_context():
        supplier = db.session.get(Organisation, platform["supplier_id"])
        alice, bob = factories.actor(supplier), factories.actor(supplier)
        # A request id is the client's to choose: it might be made to look like a formula.
        alice = dataclasses.replace(alice, request_id="@SUM(1+1)")
        start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        for day, (actor, action, subject, after) in enumerate((
            (alice, "invoice.register", platform["origin"], {"invoice_number": "=HYPERLINK(\"x\")"}),
            (bob, "invoice.cancel", 999, {"note": "wrong buyer"}),
            (None, "invoice.confirm", platform["origin"], None),
            (alice, "invoice.split", platform["origin"], {"children": [platform["part"], platform["kept"]]}),
        )):
            audit.record(actor, action, "invoice", subject, after=after).occurred_at = start + timedelta(days=day)
        db.session.commit()
        return {"alice": alice.user.email, "bob": bob.user.email}


def actions_listed(page: str) -> list[str]:
    return re.findall(r"<td><code>(invoice\.\w+)</code></td>", page)


def test_the_audit_log_is_searched_newest_first(client, platform, entries):
    portal_sign_in(client, platform["auditor"])

    def search(query: str = "") -> list[str]:
        response = client.get(f"/audit-log?{query}")
        assert response.status_code == 200, text(response)
        return actions_listed(text(response))

    assert search() == ["invoice.split", "invoice.confirm", "invoice.cancel", "invoice.register"]
    assert search(f"organisation={platform['supplier_id']}") == ["invoice.split", "invoice.cancel", "invoice.register"]
    assert search(f"user={entries['alice'].upper()}") == ["invoice.split", "invoice.register"]
    assert search("action=invoice.cancel") == ["invoice.cancel"]
    assert search(f"subject_type=invoice&subject_id={platform['origin']}") == [
        "invoice.split", "invoice.confirm", "invoice.register"]
    assert search("date_from=2026-03-02&date_to=2026-03-03") == ["invoice.confirm", "invoice.cancel"]
    assert search("text=WRONG+BUYER") == ["invoice.cancel"]


def test_the_audit_log_names_who_acted_and_links_the_receivable(client, platform, entries):
    portal_sign_in(client, platform["auditor"])

    page = text(client.get("/audit-log?action=invoice.register"))

    assert "Harbour Textiles" in page and entries["alice"] in page
    assert f'href="/explorer/receivables/{platform["origin"]}"' in page
    assert '<option value="invoice.cancel">invoice.cancel</option>' in page


def test_the_last_day_a_date_can_name_ends_a_search(client, platform, entries):
    portal_sign_in(client, platform["auditor"])

    export = client.get("/audit-log/export.csv?date_from=2026-03-04&date_to=9999-12-31")
    exported = read_csv(export)
    page = client.get("/audit-log?date_from=2026-03-03&date_to=9999-12-31")

    assert export.status_code == 200 and [row[2] for row in exported[1:]] == ["invoice.split"]
    assert page.status_code == 200 and actions_listed(text(page)) == ["invoice.split", "invoice.confirm"]


def test_bad_filters_are_refused_beside_their_fields(client, platform, entries):
    portal_sign_in(client, platform["auditor"])

    response = client.get("/audit-log?date_from=2026-03-03&date_to=2026-03-01")

    assert response.status_code == 400 and 'id="date_to-errors"' in text(response)
    assert client.get("/audit-log?date_from=yesterday").status_code == 400
    assert 'id="organisation-errors"' in text(client.get("/audit-log?organisation=99999999999999999999"))
    # A page past any there can be is the first.
    assert actions_listed(text(client.get(f"/audit-log?page={10**30}")))[0] == "invoice.split"
    assert client.get("/audit-log/export.csv?date_from=2026-03-03&date_to=2026-03-01").status_code == 400


def test_the_audit_export_is_filtered_and_cannot_carry_a_formula(client, platform, entries):
    portal_sign_in(client, platform["auditor"])

    response = client.get(f"/audit-log/export.csv?user={entries['alice']}")

    header, *lines = read_csv(response)
    assert header[:3] == ["id", "occurred_at", "action"]
    assert [line[2] for line in lines] == ["invoice.split", "invoice.register"]
    assert lines[1][1] == "2026-03-01T09:00:00+00:00"
    assert lines[1][12] == '{"invoice_number": "=HYPERLINK(\\"x\\")"}'  # JSON, starting with a brace
    assert lines[1][10] == "'@SUM(1+1)"
