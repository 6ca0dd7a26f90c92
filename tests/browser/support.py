"""Helpers of the browser journeys: the stack and the browser as a test sees them (signed-in
roles, a `Journey`'s pages and screenshots), waiting for the ledger, reading an invoice's page,
and invoices made through the API for the journeys that start further along.

A write answers at once ("on its way to the ledger"); the workers send it and the indexer
applies it a block or two later (the devnet mines a block a second). The journeys wait for
that by reloading the page until it shows the new state, bounded by LEDGER_TIMEOUT_SECONDS.
"""
from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from backend.commands.demo import ApiClient, DemoCredentials

# The language the browser asks for (Accept-Language): the portal answers in English.
LOCALE = "en-GB"
LEDGER_TIMEOUT_SECONDS = 30.0
# Playwright's wait for a single action or page (its default is 30 s).
ACTION_TIMEOUT_MS = 15_000
# How long each look at a reloaded page waits for the text to appear, before the next reload.
LOOK_MS = 500
# Between two reads of the API while waiting for the ledger.
API_POLL_SECONDS = 0.2
TX_HASH = re.compile(r"^0x[0-9a-f]{64}$")
# A registration's step in a timeline; one that went out in a batch says so beneath.
REGISTERED_STEP = re.compile(r"^Registered\b")
# The demo participants' legal identifiers (backend/commands/demo.py).
SUPPLIER_IDENTIFIER = "0088:5790000000017"
BUYER_IDENTIFIER = "0088:5790000000024"
FINANCIER_NAME = "Meridian Trade Finance"

Found = TypeVar("Found")


@dataclass(frozen=True)
class RunningStack:
    """The stack `anchorline up` runs for the session."""

    base_url: str  # the portal, http://127.0.0.1:<port>
    api_url: str  # its REST API, <base_url>/api/v1
    credentials: DemoCredentials  # the demo roles' logins: passwords and API keys

    def api(self, role: str) -> ApiClient:
        """The API as `role` (operator, supplier, buyer, financier, auditor), with its key."""
        return ApiClient(self.api_url, self.credentials.logins[role], role)

    def organisation_id(self, role: str) -> int:
        return self.credentials.logins[role].organisation_id

    @property
    def currency(self) -> str:
        return self.credentials.currency


@dataclass
class SignIns:
    """Each role's signed-in browser state (its session cookie), made the first time a test
    needs it by signing in through the form: once per role, well inside the login rate limits."""

    browser: Browser
    stack: RunningStack
    states: dict[str, Any] = field(default_factory=dict)

    def state(self, role: str) -> Any:
        if role not in self.states:
            login = self.stack.credentials.logins[role]
            context = self.browser.new_context(base_url=self.stack.base_url, locale=LOCALE)
            try:
                page = context.new_page()
                page.goto("/sign-in")
                page.get_by_label("E-mail address").fill(login.email)
                page.get_by_label("Password").fill(login.password)
                page.get_by_role("button", name="Sign in").click()
                expect(page).to_have_url(re.compile(r"/dashboard/"))
                self.states[role] = context.storage_state()
            finally:
                context.close()
        return self.states[role]


class Journey:
    """One test's pages, each in a browser context of its own signed in as a role, and its
    screenshots, numbered in the order taken: artifacts/screenshots/<test>/<nn>-<step>.png."""

    def __init__(self, browser: Browser, stack: RunningStack, sign_ins: SignIns, folder: Path) -> None:
        self.browser = browser
        self.stack = stack
        self.sign_ins = sign_ins
        self.folder = folder
        self.pages: dict[str, Page] = {}
        self.taken = 0

    def page_as(self, role: str) -> Page:
        """A new page signed in as `role`, in English (the browser asks for en-GB)."""
        context = self.browser.new_context(base_url=self.stack.base_url, locale=LOCALE,
                                           storage_state=self.sign_ins.state(role))
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        page = context.new_page()
        self.pages[role] = page
        return page

    def screenshot(self, page: Page, step: str) -> None:
        self.taken += 1
        page.screenshot(path=self.folder / f"{self.taken:02d}-{step}.png", full_page=True)

    def close(self, failed: bool) -> None:
        for role, page in self.pages.items():
            if failed and not page.is_closed():
                self.screenshot(page, f"failed-{role}")
            page.context.close()


def invoice_number(kind: str) -> str:
    """An invoice number no other run uses (the ledger keys invoices by number and buyer)."""
    return f"BR-{kind}-{datetime.now(UTC):%H%M%S}-{secrets.token_hex(3)}"


def now() -> datetime:
    return datetime.now(UTC)


def iso_day(days_from_today: int) -> str:
    """A day (UTC) as the forms and the API take it: 2026-12-05."""
    return (now() + timedelta(days=days_from_today)).date().isoformat()


def reload_until(page: Page, shows: Callable[[], None], timeout: float = LEDGER_TIMEOUT_SECONDS) -> None:
    """Reloads `page` until `shows` (Playwright expectations with a timeout of LOOK_MS)
    passes; its last failure when it has not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            shows()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        page.reload()


def fact(page: Page, name: str) -> Locator:
    """The value of an invoice page's fact (Status, Held by, ...), beside its name."""
    return page.locator(f'dl.facts dt:text-is("{name}") + dd')


def reload_until_fact(page: Page, name: str, value: str | re.Pattern[str]) -> None:
    reload_until(page, lambda: expect(fact(page, name)).to_have_text(value, timeout=LOOK_MS))


def flash(page: Page) -> Locator:
    """The page's messages (after a redirect: what the last form did)."""
    return page.get_by_role("status")


def table(page: Page, caption: str) -> Locator:
    """A table by its caption (its accessible name)."""
    return page.get_by_role("table", name=caption)


def column(table_: Locator, heading: str) -> Locator:
    """The cells of a table's body under the column heading `heading`."""
    headings = [text.strip() for text in table_.locator("thead th").all_inner_texts()]
    assert heading in headings, f"no column {heading!r} among {headings}"
    return table_.locator(f"tbody tr > td:nth-child({headings.index(heading) + 1})")


def wait_for(what: str, read: Callable[[], Found], done: Callable[[Found], bool],
             timeout: float = LEDGER_TIMEOUT_SECONDS) -> Found:
    """Reads the API until `done` holds for what `read` returns; a failure naming `what` and
    the last answer when it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if done(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not done within {timeout:.0f}s; the API shows {found}", pytrace=False)
        time.sleep(API_POLL_SECONDS)


def registered_invoice(stack: RunningStack, kind: str, amount: str = "1000.00") -> dict[str, Any]:
    """An invoice of the supplier to the buyer, registered on the ledger through the API."""
    supplier = stack.api("supplier")
    invoice = supplier.post("/invoices", {
        "invoice_number": invoice_number(kind), "buyer": stack.organisation_id("buyer"), "amount": amount,
        "currency": stack.currency, "issue_date": iso_day(0), "due_date": iso_day(60)})
    return wait_for(f"invoice {invoice['id']}'s registration", lambda: supplier.get(f"/invoices/{invoice['id']}"),
                    lambda found: found["status"] == "registered")


def confirmed_invoice(stack: RunningStack, kind: str, amount: str = "1000.00") -> dict[str, Any]:
    """A registered invoice the buyer confirmed through the API, the confirmation on the ledger."""
    invoice = registered_invoice(stack, kind, amount)
    buyer = stack.api("buyer")
    buyer.post(f"/invoices/{invoice['id']}/confirm")
    return wait_for(f"invoice {invoice['id']}'s confirmation", lambda: buyer.get(f"/invoices/{invoice['id']}"),
                    lambda found: found["status"] == "confirmed")
