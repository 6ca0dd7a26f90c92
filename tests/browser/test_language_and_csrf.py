"""The language switch puts the portal in Simplified Chinese and the choice outlives the page;
a form posted without its CSRF token is refused (400) and changes nothing."""
from __future__ import annotations

import re
from functools import cache

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

from backend.portal.i18n import SIMPLIFIED_CHINESE, TRANSLATIONS_DIR
from tests.browser.support import REGISTERED_STEP, Journey, column, fact, registered_invoice, table

pytestmark = [pytest.mark.browser, pytest.mark.anvil]


@cache
def chinese(message: str) -> str:
    """The catalogue's Simplified Chinese for an English message."""
    with (TRANSLATIONS_DIR / SIMPLIFIED_CHINESE / "LC_MESSAGES" / "messages.po").open("rb") as po:
        translation = read_po(po).get(message)
    assert translation is not None and translation.string, f"{message!r} has no Chinese translation"
    return translation.string


def test_the_language_switch_shows_the_portal_in_chinese_and_remembers_it(journey: Journey) -> None:
    supplier = journey.page_as("supplier")
    supplier.goto("/invoices")
    expect(supplier.get_by_role("heading", name="Your invoices")).to_be_visible()

    supplier.get_by_label("Language").select_option(label="简体中文")
    supplier.get_by_role("button", name="Change").click()

    expect(supplier.locator("html")).to_have_attribute("lang", re.compile(r"^zh"))
    expect(supplier.get_by_role("heading", name=chinese("Your invoices"))).to_be_visible()
    expect(supplier).to_have_url(re.compile(r"/invoices$"))  # back on the page it was switched on
    journey.screenshot(supplier, "invoices-in-chinese")

    # remembered: another page, reached by a link, then one opened afresh in a new tab
    supplier.get_by_role("link", name=chinese("Register an invoice"), exact=True).click()
    expect(supplier.get_by_role("heading", name=chinese("Register an invoice"))).to_be_visible()
    expect(supplier.get_by_label(chinese("Language"))).to_have_value(SIMPLIFIED_CHINESE)
    journey.screenshot(supplier, "upload-page-in-chinese")
    another_tab = supplier.context.new_page()
    another_tab.goto("/")
    expect(another_tab.get_by_role("button", name=chinese("Sign out"))).to_be_visible()
    expect(another_tab.get_by_role("link", name=chinese("Invoices"), exact=True)).to_be_visible()
    journey.screenshot(another_tab, "dashboard-in-chinese")


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(journey: Journey) -> None:
    invoice = registered_invoice(journey.stack, "CSRF")
    buyer = journey.page_as("buyer")
    buyer.goto(f"/invoices/{invoice['id']}")
    confirm = buyer.get_by_role("button", name="Confirm: we will pay it at maturity")
    # the confirmation form as a forged page would send it: the same fields, but no token
    buyer.locator("form", has=confirm).locator('input[name="csrf_token"]').evaluate("token => token.remove()")

    with buyer.expect_navigation() as refused:
        confirm.click()

    assert refused.value.status == 400
    expect(buyer.get_by_role("heading", name="The request could not be accepted")).to_be_visible()
    journey.screenshot(buyer, "refused")

    # nothing was queued: the invoice awaits the buyer's answer, its only ledger write the registration
    buyer.goto(f"/invoices/{invoice['id']}")
    expect(fact(buyer, "Status")).to_have_text("Registered")
    timeline = table(buyer, "The ledger writes about this invoice, oldest first")
    expect(column(timeline, "Step")).to_have_text([REGISTERED_STEP])
    expect(confirm).to_be_visible()
    answer = journey.stack.api("buyer").get(f"/invoices/{invoice['id']}")
    assert answer["status"] == "registered" and answer["pending_actions"] == [], answer
    journey.screenshot(buyer, "unchanged")
