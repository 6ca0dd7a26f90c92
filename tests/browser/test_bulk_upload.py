"""A bulk CSV upload with bad rows, in the mode that registers the good ones: the report names
each bad row and its problem, and the good rows reach the ledger."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    Journey,
    BUYER_IDENTIFIER,
    column,
    flash,
    invoice_number,
    iso_day,
    reload_until_fact,
    table,
)

pytestmark = [pytest.mark.browser, pytest.mark.anvil]


def test_a_csv_with_bad_rows_registers_the_good_ones_and_names_the_bad(journey: Journey) -> None:
    currency = journey.stack.currency
    good = [invoice_number("CSV"), invoice_number("CSV")]
    issued, due = iso_day(0), iso_day(45)
    rows = ["invoice_number,buyer,amount,currency,issue_date,due_date",
            f"{good[0]},{BUYER_IDENTIFIER},250.00,{currency},{issued},{due}",
            f"{invoice_number('CSV')},{BUYER_IDENTIFIER},1.005,{currency},{issued},{due}",  # row 3: three decimals
            f"{good[1]},{BUYER_IDENTIFIER},750.00,{currency},{issued},{due}",
            f"{invoice_number('CSV')},{BUYER_IDENTIFIER},90.00,{currency},{issued},not-a-date"]  # row 5
    supplier = journey.page_as("supplier")

    supplier.goto("/invoices")
    supplier.get_by_role("link", name="Register invoices from a CSV file").click()
    supplier.get_by_label("CSV file").set_input_files(
        {"name": "invoices.csv", "mimeType": "text/csv", "buffer": "\r\n".join(rows).encode()})
    supplier.get_by_label("When some rows have errors").select_option(
        label="Register the good rows, and list the errors")
    journey.screenshot(supplier, "csv-chosen")
    supplier.get_by_role("button", name="Upload").click()

    expect(flash(supplier)).to_have_text("Invoices on their way to the ledger: 2.")
    report = table(supplier, "Each problem, by row (the header is row 1)")
    expect(column(report, "Row")).to_have_text(["3", "5"])
    expect(column(report, "Column")).to_have_text(["amount", "due_date"])
    registered = supplier.get_by_role("region", name="Registered")
    expect(registered.get_by_role("link")).to_have_text(good)
    journey.screenshot(supplier, "bad-rows-reported")

    # the good rows reach the ledger, in the batch registered with the upload
    pages = {number: registered.get_by_role("link", name=number).get_attribute("href") for number in good}
    for number, path in pages.items():
        supplier.goto(path)
        reload_until_fact(supplier, "Status", "Registered")
        journey.screenshot(supplier, f"{number}-registered")
