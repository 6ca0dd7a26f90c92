"""PDF uploads: only readable, unencrypted PDFs with a page and within the size limit pass."""
from __future__ import annotations

import io
import logging
import re

import pytest
from pypdf import PdfWriter
from pypdf.errors import PdfReadError

from backend.intake import IntakeError, check_pdf
from backend.intake import pdf as pdf_module

LIMIT = 10 * 1024 * 1024


def make_pdf(pages: int = 1, **encryption) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if encryption:
        writer.encrypt(**encryption)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def refusal(data: bytes, max_bytes: int = LIMIT) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        check_pdf(data, max_bytes)
    return caught.value


def test_a_real_pdf_passes():
    assert check_pdf(make_pdf(), LIMIT) is None
    assert check_pdf(make_pdf(pages=3), LIMIT) is None


def test_a_pdf_2_0_header_passes():
    data = make_pdf()
    assert data.startswith(b"%PDF-1.")
    check_pdf(b"%PDF-2.0" + data[len(b"%PDF-1.x"):], LIMIT)


def test_the_size_limit_is_inclusive():
    data = make_pdf()
    check_pdf(data, len(data))
    error = refusal(data, len(data) - 1)
    assert error.code == "too-large"
    assert str(len(data)) in error.detail


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"Invoice 2024-117\nTotal: 1656.25 EUR\n%%EOF", id="text"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 200 + b"%%EOF", id="png"),
        pytest.param(b"%PDF-3.0\n%%EOF\n", id="unknown-version"),
        pytest.param(b" " * 1024 + make_pdf(), id="header-after-first-kilobyte"),
    ],
)
def test_no_pdf_header_is_not_a_pdf(data):
    error = refusal(data)
    assert error.code == "not-a-pdf"
    assert "header" in error.detail


def test_a_truncated_pdf_is_refused_by_its_missing_eof_marker():
    data = make_pdf()
    error = refusal(data[: len(data) // 2])
    assert error.code == "not-a-pdf"
    assert "%%EOF" in error.detail


def test_an_eof_marker_before_the_last_kilobyte_does_not_count():
    error = refusal(make_pdf() + b"\n" * 1024)
    assert error.code == "not-a-pdf"
    assert "%%EOF" in error.detail


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"%PDF-1.7\n" + b"junk\n" * 100 + b"%%EOF\n", id="fake-header"),
        pytest.param(make_pdf()[:100] + make_pdf()[-60:], id="middle-cut-out"),
    ],
)
def test_a_pdf_that_pypdf_cannot_read_is_not_a_pdf(data):
    error = refusal(data)
    assert error.code == "not-a-pdf"
    assert "cannot be read" in error.detail


@pytest.mark.parametrize("raised", [PdfReadError("broken xref"), KeyError("/Root"), RecursionError("nested too deep")])
def test_every_exception_pypdf_raises_becomes_an_intake_error(monkeypatch, raised):
    def failing_reader(stream):
        raise raised

    monkeypatch.setattr(pdf_module, "PdfReader", failing_reader)
    error = refusal(make_pdf())
    assert type(error) is IntakeError
    assert error.code == "not-a-pdf"
    assert error.__cause__ is raised


@pytest.mark.parametrize(
    "encryption",
    [
        pytest.param({"user_password": "secret", "algorithm": "AES-128"}, id="password"),
        pytest.param({"user_password": "", "owner_password": "owner", "algorithm": "RC4-128"}, id="owner-restrictions-only"),
    ],
)
def test_encrypted_pdfs_are_refused(encryption):
    error = refusal(make_pdf(**encryption))
    assert error.code == "pdf-encrypted"


def test_a_pdf_without_pages_is_refused():
    error = refusal(make_pdf(pages=0))
    assert error.code == "pdf-no-pages"


def test_pypdf_warnings_about_malformed_input_are_silenced(caplog):
    # A wrong startxref offset: pypdf repairs it and would log a warning saying so.
    data = re.sub(rb"startxref\n\d+", b"startxref\n9999", make_pdf())
    check_pdf(data, LIMIT)
    assert [record for record in caplog.records if record.name.startswith("pypdf")] == []
    assert logging.getLogger("pypdf").getEffectiveLevel() >= logging.ERROR
