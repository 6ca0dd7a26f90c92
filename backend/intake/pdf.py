"""Whether an uploaded PDF invoice is really a PDF the platform can read.

Cheap byte checks come first (size, header, end-of-file marker), so most impostors are refused
without parsing; then pypdf must open the file and find a page. Encrypted PDFs are refused even
when they open without a password: the platform anchors a document's hash and must be able to
show what that document says.

pypdf logs a warning for every irregularity it repairs or gives up on. For uploads those say
nothing the IntakeError does not, and anyone can send many of them, so its logger is set to
errors only (for the whole process: pypdf is used for nothing else).
"""
from __future__ import annotations

import io
import logging
import re

from pypdf import PdfReader

from backend.intake.errors import IntakeError

__all__ = ["check_pdf"]

logging.getLogger("pypdf").setLevel(logging.ERROR)

_HEADER = re.compile(rb"%PDF-(?:1\.\d|2\.0)")
_HEADER_WINDOW = 1024  # readers accept the header anywhere in the first kilobyte
_EOF_MARKER = b"%%EOF"
_EOF_WINDOW = 1024  # and the end-of-file marker anywhere in the last one


def check_pdf(data: bytes, max_bytes: int) -> None:
    """Refuse `data` with an IntakeError unless it is an unencrypted PDF of at least one page
    and at most `max_bytes` bytes."""
    if len(data) > max_bytes:
        raise IntakeError("too-large", f"the PDF is {len(data)} bytes; the limit is {max_bytes}")
    if not _HEADER.search(data[:_HEADER_WINDOW]):
        raise IntakeError("not-a-pdf", "no PDF header (%PDF-1.x or %PDF-2.0) in the first 1024 bytes")
    if _EOF_MARKER not in data[-_EOF_WINDOW:]:
        raise IntakeError("not-a-pdf", "no %%EOF marker in the last 1024 bytes: the file is truncated or not a PDF")
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        page_count = 0 if encrypted else len(reader.pages)
    # Broken and hostile files make pypdf raise far more than its own PdfReadError (KeyError,
    # TypeError, RecursionError, ...); every one of them means the same thing here.
    except Exception as exc:
        raise IntakeError("not-a-pdf", f"the PDF cannot be read: {exc}") from exc
    if encrypted:
        raise IntakeError("pdf-encrypted", "the PDF is encrypted; upload it without a password or restrictions")
    if page_count == 0:
        raise IntakeError("pdf-no-pages", "the PDF has no pages")
