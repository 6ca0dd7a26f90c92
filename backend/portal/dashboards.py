"""Each role's dashboard: its title in the navigation and the figures it opens with (from
backend/services/overview.py). An organisation holding several roles gets each one's."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from backend.models import InvoiceStatus, KycStatus, Role
from backend.services import overview
from backend.services.actors import Actor
from backend.services.invoices import Perspective


@dataclass(frozen=True)
class Dashboard:
    role: Role
    title: LazyString
    figures: Callable[[Actor], dict[str, Any]]


# In the order the navigation lists them; the URL (/dashboard/<name>) and the template
# (portal/dashboard_<name>.html) are named after the role.
DASHBOARDS: dict[str, Dashboard] = {
    "supplier": Dashboard(Role.SUPPLIER, _l("Receivables"),
                          lambda actor: {"invoices": overview.invoice_totals(actor, Perspective.SUPPLIER)}),
    "buyer": Dashboard(Role.BUYER, _l("Payables"),
                       lambda actor: {"invoices": overview.invoice_totals(actor, Perspective.BUYER)}),
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
