"""The financing report (backend/services/reports.py, backend/api/reports.py): each figure on a
worked example over two months, quarters, the CSV and PDF exports, bad ranges, and who may
read it."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from pypdf import PdfReader
from sqlalchemy.event import listen, remove
from sqlalchemy.orm import Session

from backend.extensions import db
from backend.models import (
    ChainEvent,
    Delinquency,
    InvoiceStatus,
    Role,
)
from backend.services import reports
from backend.services.errors import InvalidInput, PermissionDenied
from backend.services.reports import Period
from tests import domain_factories as factories
from tests.api_support import caller
from tests.domain_factories import assert_refused

NOVEMBER, DECEMBER = date(2026, 11, 1), date(2026, 12, 31)


@pytest.fixture
def book(db_session: Any) -> None:
    """The worked example of docs/risk.md ("Reports")."""
    small = factories.organisation(Role.SUPPLIER)
    core = factories.organisation(Role.SUPPLIER | Role.BUYER)
    buyer, financier = factories.organisation(Role.BUYER), factories.organisation(Role.FINANCIER)
    first = factories.receivable(small, buyer, 10_000_00, issued=date(2026, 11, 1), due=date(2026, 12, 31))
    factories.funded(first, small, financier, 9_800_00, datetime(2026, 11, 11, 10, tzinfo=UTC))
    second = factories.receivable(core, buyer, 5_000_00, issued=date(2026, 11, 5), due=date(2027, 1, 4))
    factories.funded(second, core, financier, 4_900_00, datetime(2026, 11, 25, 23, 59, tzinfo=UTC))
    third = factories.receivable(small, buyer, 1_000_00, issued=date(2026, 11, 20), due=date(2026, 12, 12))
    factories.funded(third, small, financier, 990_00, datetime(2026, 12, 2, 8, tzinfo=UTC))
    october = factories.receivable(small, buyer, 2_000_00, issued=date(2026, 10, 1), due=date(2026, 12, 1))
    factories.funded(october, small, financier, 1_900_00, None, indexed_at=datetime(2026, 10, 15, tzinfo=UTC))
    # Falling due in November: 5,000.00 of which 1,000.00 overdue and 1,000.00 defaulted.
    factories.receivable(small, buyer, 1_000_00, issued=date(2026, 10, 1), due=date(2026, 11, 15), delinquency=Delinquency.OVERDUE)
    factories.receivable(small, buyer, 3_000_00, issued=date(2026, 10, 1), due=date(2026, 11, 20), status=InvoiceStatus.REPAID)
    factories.receivable(small, buyer, 1_000_00, issued=date(2026, 10, 1), due=date(2026, 11, 28),
               delinquency=Delinquency.DEFAULTED)
    factories.receivable(small, buyer, 7_000_00, issued=date(2026, 10, 1), due=date(2026, 11, 10), status=InvoiceStatus.SPLIT)


@pytest.fixture
def auditor(db_session: Any) -> Any:
    return factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))


def test_the_worked_example_by_month(book: None, auditor: Any) -> None:
    report = reports.financing_report(auditor, start=NOVEMBER, end=DECEMBER)

    assert (report.currency, report.start, report.end) == ("CNY", NOVEMBER, date(2027, 1, 1))
    november, december = report.periods
    assert (november.label, november.fundings, november.volume_minor, november.face_minor) == \
        ("2026-11", 2, 14_700_00, 15_000_00)
    assert november.small_suppliers == 1  # the core enterprise's own funding does not count
    assert november.average_days_to_cash == 15.0  # (10 + 20) / 2
    # (200.00 x 365 / 50 + 100.00 x 365 / 40) / 14,700.00
    assert november.average_annual_rate == pytest.approx((200_00 * 365 / 50 + 100_00 * 365 / 40) / 14_700_00)
    assert (november.due_minor, november.overdue_ratio, november.default_ratio) == (5_000_00, 0.2, 0.2)

    assert (december.label, december.fundings, december.volume_minor, december.small_suppliers) == \
        ("2026-12", 1, 990_00, 1)
    assert december.average_annual_rate == pytest.approx(365 / 990)
    assert (december.due_minor, december.overdue_ratio) == (13_000_00, 0.0)  # the first, the third and October's


def test_only_the_fundings_of_the_reports_periods_are_read(book: None, auditor: Any) -> None:
    """Not every funding ever, with its invoice, for a report on two months."""
    db.session.expunge_all()
    loaded: list[Any] = []

    def record(_session: Any, row: Any) -> None:
        loaded.append(row)

    listen(Session, "loaded_as_persistent", record)
    try:
        reports.financing_report(auditor, start=NOVEMBER, end=DECEMBER)
    finally:
        remove(Session, "loaded_as_persistent", record)
    assert len([row for row in loaded if isinstance(row, ChainEvent)]) == 3  # not October's


def test_by_quarter_and_a_period_without_fundings(book: None, auditor: Any) -> None:
    [q4] = reports.financing_report(auditor, start=date(2026, 10, 1), end=DECEMBER, period=Period.QUARTER).periods
    assert (q4.label, q4.fundings, q4.volume_minor) == ("2026-Q4", 4, 17_590_00)  # October's counts from its indexing

    [empty] = reports.financing_report(auditor, start=date(2026, 6, 3), end=date(2026, 6, 30)).periods
    assert (empty.label, empty.fundings, empty.average_annual_rate, empty.overdue_ratio) == ("2026-06", 0, None, None)


def test_the_csv_and_pdf_exports(book: None, auditor: Any) -> None:
    report = reports.financing_report(auditor, start=NOVEMBER, end=DECEMBER)

    lines = reports.report_csv(report).splitlines()
    assert lines[0].split(",") == list(reports.CSV_COLUMNS)
    assert lines[1] == "2026-11,2026-11-01,2026-12-01,CNY,2,14700.00,15000.00,1,15.00,16.14,5000.00,1000.00,1000.00,20.00,20.00"

    pdf = reports.report_pdf(report)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "supply-chain financing report" in text and "2026-11" in text and "14700.00" in text


def test_a_bad_range_is_refused(auditor: Any) -> None:
    refusal = assert_refused(InvalidInput, reports.financing_report, auditor, start=DECEMBER, end=NOVEMBER)
    assert "end" in refusal.value.errors
    assert_refused(InvalidInput, reports.financing_report, auditor, start=date(2020, 1, 1), end=DECEMBER)
    assert "end" in assert_refused(InvalidInput, reports.financing_report, auditor, start=date(9999, 9, 1),
                                   end=date(9999, 12, 31)).value.errors


def test_participants_cannot_read_the_report(db_session: Any) -> None:
    financier = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    assert_refused(PermissionDenied, reports.financing_report, financier, start=NOVEMBER, end=DECEMBER)


def test_the_api_serves_json_csv_and_pdf(app: Flask) -> None:
    operator, supplier = caller(app, Role.OPERATOR, onboarded=False), caller(app, Role.SUPPLIER)
    client = app.test_client()
    query = "start=2026-11-01&end=2026-12-31&period=quarter"

    answer = client.get(f"/api/v1/reports/financing?{query}", headers=operator.headers)
    assert answer.status_code == 200
    assert [(p["label"], p["fundings"], p["volume"]) for p in answer.json["periods"]] == [("2026-Q4", 0, "0.00")]

    exported = client.get(f"/api/v1/reports/financing.csv?{query}", headers=operator.headers)
    assert exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"] == 'attachment; filename="anchorline-financing-2026-10-01-2027-01-01.csv"'
    assert exported.get_data(as_text=True).startswith("period,start,end")
    pdf = client.get(f"/api/v1/reports/financing.pdf?{query}", headers=operator.headers)
    assert (pdf.mimetype, pdf.data[:5]) == ("application/pdf", b"%PDF-")

    assert client.get(f"/api/v1/reports/financing?{query}", headers=supplier.headers).status_code == 403
    assert client.get("/api/v1/reports/financing?start=2026-12-31&end=2026-11-01",
                      headers=operator.headers).status_code == 422
