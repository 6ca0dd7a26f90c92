"""One receivable from its PDF to its repayment, in the portal, with the financier's offer made
through the REST API: the supplier uploads, the buyer confirms, the supplier asks for financing,
the financier offers, the supplier compares and accepts, the buyer repays; the invoice ends
Repaid with every ledger write's transaction hash in its timeline."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect

from backend.api.idempotency import IDEMPOTENCY_KEY_HEADER
from tests.browser.support import (
    Journey,
    BUYER_IDENTIFIER,
    FINANCIER_NAME,
    LOOK_MS,
    REGISTERED_STEP,
    TX_HASH,
    column,
    flash,
    invoice_number,
    iso_day,
    now,
    reload_until,
    reload_until_fact,
    table,
)
from tests.test_invoice_intake_services import pdf_bytes

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMELINE = "The ledger writes about this invoice, oldest first"


def test_an_invoice_is_uploaded_confirmed_financed_through_an_offer_and_repaid(journey: Journey) -> None:
    stack = journey.stack
    number = invoice_number("FIN")
    supplier = journey.page_as("supplier")

    # the supplier registers the invoice: its PDF and its terms
    supplier.goto("/")
    supplier.get_by_role("link", name="Invoices", exact=True).click()
    supplier.get_by_role("link", name="Register an invoice").click()
    supplier.get_by_label("Invoice PDF").set_input_files(
        {"name": f"{number}.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes(f"Invoice {number}")})
    supplier.get_by_label("Invoice number").fill(number)
    supplier.get_by_label("Buyer (legal identifier").fill(BUYER_IDENTIFIER)
    supplier.get_by_label("Amount", exact=True).fill("1000.00")
    expect(supplier.get_by_label("Currency")).to_have_value(stack.currency)
    supplier.get_by_label("Issue date").fill(iso_day(0))
    supplier.get_by_label("Due date").fill(iso_day(60))
    journey.screenshot(supplier, "supplier-fills-in-the-invoice")
    supplier.get_by_role("button", name="Register the invoice").click()
    expect(flash(supplier)).to_have_text("The invoice is on its way to the ledger.")
    invoice_path = re.sub(r"^https?://[^/]+", "", supplier.url)
    assert re.fullmatch(r"/invoices/\d+", invoice_path), supplier.url
    journey.screenshot(supplier, "invoice-on-its-way")
    reload_until_fact(supplier, "Status", "Registered")
    journey.screenshot(supplier, "invoice-registered")

    # the buyer finds it in its inbox and confirms it
    buyer = journey.page_as("buyer")
    buyer.goto("/")
    buyer.get_by_role("link", name="Payables inbox").click()
    buyer.get_by_role("link", name=number).click()
    buyer.get_by_role("button", name="Confirm: we will pay it at maturity").click()
    expect(flash(buyer)).to_have_text("The confirmation is on its way to the ledger.")
    reload_until_fact(buyer, "Status", "Confirmed")
    journey.screenshot(buyer, "buyer-confirmed")

    # the supplier asks for an advance of at least 950.00
    supplier.reload()
    supplier.get_by_label("Smallest advance you accept").fill("950.00")
    supplier.get_by_label("Open to offers until").fill(iso_day(7))
    supplier.get_by_role("button", name="Request financing").click()
    expect(flash(supplier)).to_have_text("The financing request is on its way to the ledger.")
    requests_table = table(supplier, "Your financing requests on this receivable")
    reload_until(supplier,
                 lambda: expect(column(requests_table, "Status")).to_have_text(["Open to offers"], timeout=LOOK_MS))
    journey.screenshot(supplier, "financing-request-open")
    supplier.get_by_role("link", name="Compare the offers").click()
    request_id = int(re.search(r"/financing-requests/(\d+)$", supplier.url).group(1))
    expect(supplier.get_by_text("No open offers yet.")).to_be_visible()

    # the financier offers 960.00 through the API, with its key
    answer = requests.post(
        f"{stack.api_url}/financing-requests/{request_id}/offers", timeout=10,
        headers={"Authorization": f"Bearer {stack.credentials.logins['financier'].api_key}",
                 IDEMPOTENCY_KEY_HEADER: uuid.uuid4().hex},
        json={"advance": "960.00", "currency": stack.currency, "expiry": (now() + timedelta(days=6)).isoformat()})
    assert answer.status_code == 202, answer.text

    # the supplier sees it beside its terms, and accepts it
    offers = table(supplier, "Open offers, the largest advance first")
    reload_until(supplier, lambda: expect(column(offers, "Financier")).to_have_text([FINANCIER_NAME], timeout=LOOK_MS))
    expect(column(offers, "Advance paid now")).to_have_text(["CN¥960.00"])
    expect(column(offers, "Discount")).to_have_text(["CN¥40.00"])  # the discount: 1000.00 less the advance
    journey.screenshot(supplier, "offers-side-by-side")
    supplier.get_by_role("button", name=f"Accept the offer of {FINANCIER_NAME}").click()
    expect(flash(supplier)).to_have_text("The acceptance is on its way to the ledger.")
    reload_until_fact(supplier, "Held by", FINANCIER_NAME)
    journey.screenshot(supplier, "financed")

    # the buyer repays the holder in full
    buyer.reload()
    expect(buyer.get_by_label("Amount to pay")).to_have_value("1000.00")
    journey.screenshot(buyer, "buyer-repays")
    buyer.get_by_role("button", name="Repay", exact=True).click()
    expect(flash(buyer)).to_have_text("The repayment is on its way to the ledger.")
    reload_until_fact(buyer, "Status", "Repaid")

    # every write that moved it, mined, with its transaction hash
    timeline = table(buyer, TIMELINE)
    reload_until(buyer, lambda: expect(column(timeline, "State")).to_have_text(["Mined"] * 4, timeout=LOOK_MS))
    expect(column(timeline, "Step")).to_have_text(
        [REGISTERED_STEP, "Confirmed by the buyer", "Financed (offer accepted)", "Repayment"])
    expect(column(timeline, "Transaction")).to_have_text([TX_HASH] * 4)
    journey.screenshot(buyer, "repaid-with-its-timeline")
