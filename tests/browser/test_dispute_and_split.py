"""The buyer disputes an invoice with a reason; the supplier splits a confirmed receivable into
parts. The invoices start registered (or confirmed) through the API; the answers are the portal's."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    Journey,
    LOOK_MS,
    REGISTERED_STEP,
    SUPPLIER_IDENTIFIER,
    TX_HASH,
    column,
    confirmed_invoice,
    fact,
    flash,
    registered_invoice,
    reload_until,
    reload_until_fact,
    table,
)

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMELINE = "The ledger writes about this invoice, oldest first"


def test_the_buyer_disputes_an_invoice_for_a_reason(journey: Journey) -> None:
    invoice = registered_invoice(journey.stack, "DSP")
    buyer = journey.page_as("buyer")

    buyer.goto(f"/invoices/{invoice['id']}")
    expect(fact(buyer, "Status")).to_have_text("Registered")
    buyer.get_by_label("Reason").select_option(label="Goods defective")
    buyer.get_by_label("Note (stays off the ledger)").fill("Two of the five pallets arrived crushed.")
    journey.screenshot(buyer, "dispute-filled-in")
    buyer.get_by_role("button", name="Dispute", exact=True).click()

    expect(flash(buyer)).to_have_text("The dispute is on its way to the ledger.")
    reload_until_fact(buyer, "Status", "Disputed")
    expect(buyer.get_by_role("button", name="Confirm: we will pay it at maturity")).to_have_count(0)
    timeline = table(buyer, TIMELINE)
    reload_until(buyer, lambda: expect(column(timeline, "State")).to_have_text(["Mined", "Mined"], timeout=LOOK_MS))
    expect(column(timeline, "Step")).to_have_text([REGISTERED_STEP, "Disputed by the buyer"])
    expect(column(timeline, "Transaction")).to_have_text([TX_HASH, TX_HASH])
    journey.screenshot(buyer, "disputed")


def test_the_supplier_splits_a_confirmed_receivable_into_parts(journey: Journey) -> None:
    invoice = confirmed_invoice(journey.stack, "SPL", amount="1000.00")
    supplier = journey.page_as("supplier")

    supplier.goto(f"/invoices/{invoice['id']}")
    supplier.get_by_label("Parts, one a line: amount, recipient").fill(
        f"612.34, {SUPPLIER_IDENTIFIER}\n387.66, {SUPPLIER_IDENTIFIER}")
    journey.screenshot(supplier, "split-filled-in")
    supplier.get_by_role("button", name="Split", exact=True).click()

    expect(flash(supplier)).to_have_text("The split is on its way to the ledger.")
    reload_until_fact(supplier, "Status", "Split")
    journey.screenshot(supplier, "split")

    # the parts are invoices of their own, confirmed like their parent, held by the supplier
    supplier.get_by_role("link", name="Invoices", exact=True).click()
    rows = table(supplier, "Invoices you issued, newest first").locator("tbody tr")
    parts = [rows.filter(has_text=face_value) for face_value in ("CN¥612.34", "CN¥387.66")]

    def parts_confirmed() -> None:
        for part in parts:
            expect(part).to_contain_text("Confirmed", timeout=LOOK_MS)

    reload_until(supplier, parts_confirmed)
    for part in parts:
        expect(part).to_have_count(1)
        expect(part).to_contain_text("Harbour Components Ltd")
    journey.screenshot(supplier, "parts-listed")
