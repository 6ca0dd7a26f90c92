"""The compliance pages (backend/portal/compliance.py), for the operator and the auditor: the
fraud flags with their evidence, the watch lists and screening hits (the operator's upload and
resolutions, refused to the auditor), and the financing report with its CSV and PDF downloads;
nobody else's."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import Role, ScreeningHit, ScreeningHitStatus, WatchListEntry
from backend.services import screening
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text

PAGES = ("/compliance/flags", "/compliance/screening", "/compliance/alerts", "/compliance/reports",
         "/compliance/reports.csv", "/compliance/reports.pdf")
DIGEST = "ab" * 32
LIST = b"reference,name,address\r\nSDN-1,Blackwater Trading Co. Ltd,\r\nSDN-2,Nobody We Know Of,\r\n"
NOVEMBER = "start=2026-11-01&end=2026-11-30&period=month"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def platform(app: Flask) -> dict[str, object]:
    """A user of each role; two invoices anchoring one document (a duplicate-document flag); a
    small supplier's 10,000.00 receivable issued 1 November, due 31 December, funded on
    11 November for 9,800.00; an organisation a watch list will name."""
    with app.app_context():
        supplier = factories.organisation(Role.SUPPLIER, name="Harbour Textiles")
        other_supplier = factories.organisation(Role.SUPPLIER, name="Loom Works")
        buyer = factories.organisation(Role.BUYER, name="Keel Motors")
        financier = factories.organisation(Role.FINANCIER, name="Tidewater Capital")
        factories.organisation(Role.SUPPLIER, name="Blackwater Trading Company Limited")
        first = factories.with_document(factories.invoice(supplier, buyer), DIGEST)
        second = factories.with_document(factories.invoice(other_supplier, buyer), DIGEST)
        financed = factories.receivable(supplier, buyer, 10_000_00, issued=date(2026, 11, 1), due=date(2026, 12, 31))
        factories.funded(financed, supplier, financier, 9_800_00, datetime(2026, 11, 11, 10, tzinfo=UTC))
        users = {role: user_with_password(org).email for role, org in (
            ("supplier", supplier), ("buyer", buyer), ("financier", financier),
            ("auditor", factories.organisation(Role.AUDITOR, name="Ledger Audit LLP", onboarded=False)),
            ("operator", factories.organisation(Role.OPERATOR, onboarded=False)))}
        db.session.commit()
        return {**users, "first": first.id, "second": second.id, "first_number": first.invoice_number}


def signed_in(app: Flask, platform: dict[str, object], role: str) -> FlaskClient:
    client = app.test_client()
    portal_sign_in(client, platform[role])
    return client


def plant_hits(app: Flask) -> list[int]:
    """Loads LIST through the service: one open hit (on Blackwater); its id."""
    with app.app_context():
        screening.load_watch_list(factories.operator(), "OFAC SDN", LIST)
        return list(db.session.scalars(select(ScreeningHit.id)))


def hit_status(app: Flask, hit_id: int) -> tuple[ScreeningHitStatus, str | None]:
    with app.app_context():
        hit = db.session.get(ScreeningHit, hit_id)
        return hit.status, hit.resolution_note


def upload(client: FlaskClient, data: bytes, *, list_name: str = "OFAC SDN", **extra: str):
    return client.post("/compliance/screening/watch-lists", data={
        "csrf_token": csrf_token(client, "/compliance/screening"), "list_name": list_name,
        "file": (io.BytesIO(data), "list.csv"), **extra}, content_type="multipart/form-data")


# ---------------------------------------------------------------- who may


@pytest.mark.parametrize("reader", ["auditor", "operator"])
def test_the_operator_and_the_auditor_read_every_page(app, platform, reader):
    client = signed_in(app, platform, reader)

    flags = text(client.get("/compliance/flags"))
    assert all(f'href="{path}"' in flags for path in PAGES[:3])  # in the navigation
    screening_page = text(client.get("/compliance/screening"))
    assert client.get("/compliance/reports").status_code == 200
    # Only the operator is offered the upload form.
    assert ('action="/compliance/screening/watch-lists"' in screening_page) is (reader == "operator")


def test_participants_are_told_the_pages_do_not_exist(app, platform):
    hit_id, = plant_hits(app)
    for participant in ("supplier", "buyer", "financier"):
        client = signed_in(app, platform, participant)
        for path in PAGES:
            assert client.get(path).status_code == 404, (participant, path)
        assert post_form(client, f"/compliance/screening/hits/{hit_id}/resolution", "/account/password",
                         **{f"hit-{hit_id}-note": "checked", f"hit-{hit_id}-clear": "1"}).status_code == 404
        assert 'href="/compliance/flags"' not in text(client.get("/", follow_redirects=True))
    assert hit_status(app, hit_id)[0] == ScreeningHitStatus.OPEN


# ---------------------------------------------------------------- flags


def test_the_flags_page_shows_a_duplicate_document_with_its_evidence(app, platform):
    client = signed_in(app, platform, "auditor")

    page = text(client.get("/compliance/flags"))

    assert re.search(r'<h2 id="flag-1">One document under several invoices</h2>', page)
    assert "one document is anchored under 2 invoices" in page
    assert f'href="/explorer/receivables/{platform["first"]}">{platform["first_number"]}</a>' in page
    assert f'href="/explorer/receivables/{platform["second"]}"' in page
    assert "<dd>Harbour Textiles, Loom Works, Keel Motors</dd>" in page
    assert f'<code class="hash">{DIGEST}</code>' in page

    assert DIGEST not in text(client.get("/compliance/flags?kind=amount_outlier"))
    assert DIGEST in text(client.get("/compliance/flags?kind=duplicate_document"))
    assert client.get("/compliance/flags?kind=no_such_kind").status_code == 400


def test_the_report_in_chinese(app, platform):
    client = signed_in(app, platform, "operator")
    client.post("/language", data={"csrf_token": csrf_token(client, "/compliance/reports"), "language": "zh_Hans_CN"})

    page = text(client.get("/compliance/reports?start=2026-10-01&end=2026-12-31&period=quarter"))

    quarter = re.search(r'<th scope="row">2026年第4季度</th>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="number">(.*?)</td>', quarter)[1:3] == ["¥9,800.00", "¥10,000.00"]


# ---------------------------------------------------------------- screening


def test_an_upload_through_the_page_loads_the_list_and_raises_hits(app, platform):
    client = signed_in(app, platform, "operator")

    answer = upload(client, LIST)

    assert answer.status_code == 302
    page = text(client.get(answer.location))
    assert "OFAC SDN is loaded: 2 entries (replacing 0); new hits: 1." in page
    assert re.search(r"<td>OFAC SDN</td><td class=\"number\">2</td>", page)
    assert "Blackwater Trading Company Limited" in page and "SDN-1" in page
    assert 'name="hit-' in page  # the open hit's resolution form
    with app.app_context():
        [hit] = db.session.scalars(select(ScreeningHit)).all()
        assert (hit.entry_reference, hit.status) == ("SDN-1", ScreeningHitStatus.OPEN)


def test_a_bad_file_loads_nothing_and_lists_each_rows_problems(app, platform):
    client = signed_in(app, platform, "operator")

    answer = upload(client, b"reference,name\r\nA-1,Someone\r\nA-1,Someone Else\r\nA-2,\r\n")

    assert answer.status_code == 400
    page = text(answer)
    assert "Nothing was loaded" in page
    assert re.search(r'<td class="number">3</td><td>reference</td><td>also on row 2</td>', page)
    assert re.search(r'<td class="number">4</td><td></td><td>a name or an address is needed</td>', page)
    without_file = client.post("/compliance/screening/watch-lists", data={
        "csrf_token": csrf_token(client, "/compliance/screening"), "list_name": "OFAC SDN"})
    assert without_file.status_code == 400 and 'id="file-errors"' in text(without_file)
    with app.app_context():
        assert db.session.scalars(select(WatchListEntry)).all() == []


def test_the_operator_clears_and_confirms_hits_with_a_note(app, platform):
    hit_id, = plant_hits(app)
    with app.app_context():  # a second hit, by name, on another list
        screening.load_watch_list(factories.operator(), "UN", b"reference,name\r\nUN-7,Blackwater Trading\r\n")
        other_id = db.session.scalar(select(ScreeningHit.id).where(ScreeningHit.list_name == "UN"))
    client = signed_in(app, platform, "operator")
    resolution = f"/compliance/screening/hits/{hit_id}/resolution"

    without_note = post_form(client, resolution, "/compliance/screening", **{f"hit-{hit_id}-clear": "1"})
    assert without_note.status_code == 400 and f'id="hit-{hit_id}-note-errors"' in text(without_note)
    assert hit_status(app, hit_id)[0] == ScreeningHitStatus.OPEN

    cleared = post_form(client, resolution, "/compliance/screening",
                        **{f"hit-{hit_id}-note": "Different registry number", f"hit-{hit_id}-clear": "1"})
    confirmed = post_form(client, f"/compliance/screening/hits/{other_id}/resolution", "/compliance/screening",
                          **{f"hit-{other_id}-note": "Same owners", f"hit-{other_id}-confirm": "1"})

    assert cleared.status_code == confirmed.status_code == 302
    assert hit_status(app, hit_id) == (ScreeningHitStatus.CLEARED, "Different registry number")
    assert hit_status(app, other_id) == (ScreeningHitStatus.CONFIRMED, "Same owners")
    page = text(client.get("/compliance/screening?status=confirmed"))
    assert "Same owners" in page and "Different registry number" not in page
    again = post_form(client, resolution, "/compliance/screening",
                      **{f"hit-{hit_id}-note": "again", f"hit-{hit_id}-confirm": "1"})
    assert again.status_code == 400  # resolved already
    assert hit_status(app, hit_id)[0] == ScreeningHitStatus.CLEARED


def test_the_auditor_may_not_load_lists_or_resolve_hits(app, platform):
    hit_id, = plant_hits(app)
    client = signed_in(app, platform, "auditor")

    assert 'name="hit-' not in text(client.get("/compliance/screening"))
    refused = post_form(client, f"/compliance/screening/hits/{hit_id}/resolution", "/compliance/screening",
                        **{f"hit-{hit_id}-note": "looked", f"hit-{hit_id}-clear": "1"})
    assert refused.status_code == 403
    assert hit_status(app, hit_id)[0] == ScreeningHitStatus.OPEN
    assert upload(client, LIST, list_name="Auditor's").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(WatchListEntry).where(WatchListEntry.list_name == "Auditor's")) is None


def test_the_forms_need_the_csrf_token(app, platform):
    hit_id, = plant_hits(app)
    client = signed_in(app, platform, "operator")

    assert client.post("/compliance/screening/watch-lists", data={
        "list_name": "Other", "file": (io.BytesIO(LIST), "list.csv")},
        content_type="multipart/form-data").status_code == 400
    assert client.post(f"/compliance/screening/hits/{hit_id}/resolution", data={
        f"hit-{hit_id}-note": "checked", f"hit-{hit_id}-clear": "1"}).status_code == 400

    assert hit_status(app, hit_id)[0] == ScreeningHitStatus.OPEN
    with app.app_context():
        assert db.session.scalar(select(WatchListEntry).where(WatchListEntry.list_name == "Other")) is None


# ---------------------------------------------------------------- the financing report


def test_the_report_shows_a_fundings_figures_and_charts(app, platform):
    client = signed_in(app, platform, "auditor")

    page = text(client.get(f"/compliance/reports?{NOVEMBER}"))

    november = re.search(r'<th scope="row">Nov 2026</th>(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="number">(.*?)</td>', november)
    # 1 funding, 9,800.00 for 10,000.00, 1 small supplier, 10 days to cash,
    # 200.00 × 365 ÷ 50 days ÷ 9,800.00 = 14.90 % a year; nothing fell due in November.
    assert cells == ["1", "CN¥9,800.00", "CN¥10,000.00", "1", "10.0", "14.90%", "CN¥0.00", "–", "–"]
    assert 'data-chart-values="[9800.0]"' in page
    assert "data-chart-series=" in page and "14.9" in page
    assert 'href="/compliance/reports.csv?start=2026-11-01&amp;end=2026-11-30&amp;period=month"' in page


def test_the_report_by_default_covers_the_last_twelve_months(app, platform):
    client = signed_in(app, platform, "operator")

    page = text(client.get("/compliance/reports"))

    assert len(re.findall(r'<th scope="row">', page)) == 12


def test_the_report_downloads_as_csv_and_pdf(app, platform):
    client = signed_in(app, platform, "operator")

    as_csv = client.get(f"/compliance/reports.csv?{NOVEMBER}")
    as_pdf = client.get(f"/compliance/reports.pdf?{NOVEMBER}")

    assert as_csv.headers["Content-Disposition"] == \
        'attachment; filename="anchorline-financing-2026-11-01-2026-12-01.csv"'
    rows = list(csv.DictReader(io.StringIO(text(as_csv))))
    assert [(row["period"], row["fundings"], row["volume"], row["average_annual_rate_percent"]) for row in rows] == \
        [("2026-11", "1", "9800.00", "14.90")]
    assert as_pdf.mimetype == "application/pdf" and as_pdf.data.startswith(b"%PDF")
    assert as_pdf.headers["Content-Disposition"].startswith("attachment; ")


@pytest.mark.parametrize(("query", "field"), [
    ("start=2026-11-01&end=2026-10-01", "end"),  # the service's refusal
    ("start=2000-01-01&end=2026-11-30", "start"),  # more than 60 periods
    ("start=someday&end=2026-11-30", "start"),
    ("start=2026-11-01&end=9999-12-31", "end"),
])
def test_a_bad_range_is_shown_beside_its_field(app, platform, query, field):
    client = signed_in(app, platform, "auditor")

    for path in ("/compliance/reports", "/compliance/reports.csv", "/compliance/reports.pdf"):
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, path
        assert answer.mimetype == "text/html"
        assert f'id="{field}-errors"' in text(answer), path


# ---------------------------------------------------------------- alerts on token movements


def plant_large_movement(app: Flask) -> None:
    with app.app_context():
        payer, payee = factories.organisation(Role.BUYER, name="Big Payer"), factories.organisation(Role.SUPPLIER)
        factories.token_movement(payer.chain_address, payee.chain_address, 250_000_000,
                                 datetime(2026, 11, 2, 9, tzinfo=UTC))
        db.session.commit()


def test_the_operator_clears_a_token_alert_with_a_note_and_the_auditor_reads_it(app, platform):
    plant_large_movement(app)
    operator = signed_in(app, platform, "operator")
    page = text(operator.get("/compliance/alerts"))
    assert "Large movement: Big Payer" in page and "CN¥2,500,000.00" in page
    key = re.search(r'name="alert-0-key" type="hidden" value="([^"]+)"', page).group(1)

    without_note = post_form(operator, "/compliance/alerts/review/0", "/compliance/alerts",
                             **{"alert-0-key": key, "alert-0-clear": "1"})
    assert without_note.status_code == 400
    answer = post_form(operator, "/compliance/alerts/review/0", "/compliance/alerts",
                       **{"alert-0-key": key, "alert-0-note": "the buyer's quarterly settlement", "alert-0-clear": "1"})

    assert answer.status_code == 302
    auditor = signed_in(app, platform, "auditor")
    reviewed = text(auditor.get("/compliance/alerts?status=cleared"))
    assert "Cleared (an ordinary payment)" in reviewed and "the buyer&#39;s quarterly settlement" in reviewed
    assert "alert-0-note" not in reviewed  # the auditor has no review form
    assert "No alert." in text(auditor.get("/compliance/alerts?status=open"))
    refused = post_form(auditor, "/compliance/alerts/review/0", "/compliance/alerts",
                        **{"alert-0-key": key, "alert-0-note": "x", "alert-0-report": "1"})
    assert refused.status_code == 403
