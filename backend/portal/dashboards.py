"""Each role's dashboard: its title in the navigation and the figures it opens with (from
backend/services/overview.py). An organisation holding several roles gets each one's."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from babel.dates import format_skeleton
from flask_babel import LazyString, get_locale
from flask_babel import lazy_gettext as _l

from backend.models import InvoiceStatus, KycStatus, Role
from backend.services import overview
from backend.services.actors import Actor
from backend.services.invoices import Perspective
from backend.services.ledger import settlement_currency


@dataclass(frozen=True)
class Dashboard:
    role: Role
    title: LazyString
    figures: Callable[[Actor], dict[str, Any]]


def supplier_figures(actor: Actor) -> dict[str, Any]:
    """The supplier's receivables by status, its settlement tokens, its days from invoice to
    cash by month (with each month's name), and its next maturities."""
    days_to_cash = overview.days_to_cash(actor)
    return {"invoices": overview.invoice_totals(actor, Perspective.SUPPLIER),
            "balance_minor": overview.settlement_balance(actor), "settlement_currency": settlement_currency(),
            "days_to_cash": days_to_cash, "cash_months": [month_name(entry.month, "yMMM") for entry in days_to_cash],
            "cash_window_months": overview.DAYS_TO_CASH_MONTHS,
            "maturities": overview.upcoming_maturities(actor, Perspective.SUPPLIER)}


def buyer_figures(actor: Actor) -> dict[str, Any]:
    """The buyer's payables by status and its next maturities."""
    return {"invoices": overview.invoice_totals(actor, Perspective.BUYER),
            "maturities": overview.upcoming_maturities(actor, Perspective.BUYER)}


def month_name(month: date, skeleton: str = "yMMMM") -> str:
    """A month as the user's language names it: "December 2026" ("Dec 2026" with the skeleton
    "yMMM"), "2026年12月"."""
    return format_skeleton(skeleton, month, locale=get_locale())


# In the order the navigation lists them; the URL (/dashboard/<name>) and the template
# (portal/dashboard_<name>.html) are named after the role.
DASHBOARDS: dict[str, Dashboard] = {
    "supplier": Dashboard(Role.SUPPLIER, _l("Receivables"), supplier_figures),
    "buyer": Dashboard(Role.BUYER, _l("Payables"), buyer_figures),
    "financier": Dashboard(Role.FINANCIER, _l("Portfolio"),
                           lambda actor: {"invoices": overview.invoice_totals(actor, Perspective.HOLDER),
                                          "open_requests": overview.financeable_count(actor)}),
    "operator": Dashboard(Role.OPERATOR, _l("Operations"),
                          lambda actor: {"organisations": overview.kyc_totals(actor),
                                         "invoices": overview.invoice_totals(actor)}),
    "auditor": Dashboard(Role.AUDITOR, _l("Audit"), lambda actor: {"invoices": overview.invoice_totals(actor)}),
}


def dashboards_of(actor: Actor) -> list[tuple[str, Dashboard]]:
    """The dashboards of the actor's organisation's roles, in navigation order."""
    return [(name, board) for name, board in DASHBOARDS.items() if actor.has_any(board.role)]


# How the dashboards name the ledger's invoice states and the KYC states, in the user's language.
INVOICE_STATUS_LABELS: dict[InvoiceStatus, LazyString] = {
    InvoiceStatus.PENDING: _l("Awaiting the ledger"),
    InvoiceStatus.REGISTERED: _l("Registered"),
    InvoiceStatus.CONFIRMED: _l("Confirmed"),
    InvoiceStatus.DISPUTED: _l("Disputed"),
    InvoiceStatus.CANCELLED: _l("Cancelled"),
    InvoiceStatus.SPLIT: _l("Split"),
    InvoiceStatus.REPAID: _l("Repaid"),
}
KYC_STATUS_LABELS: dict[KycStatus, LazyString] = {
    KycStatus.PENDING: _l("Awaiting review"),
    KycStatus.APPROVED: _l("Approved"),
    KycStatus.REJECTED: _l("Rejected"),
}
