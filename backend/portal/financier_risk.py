"""Risk in the financier's pages (issue 6 §1, §2): risk profiles beside the receivables it may
fund, the fraud signals on them, and its exposure limits.

What the services return (backend/services/risk.py, exposure.py, fraud.py) in the user's
language: each score factor's name, measured value, points and rule (the services state the
rules in English, for the API, as risk.SCORE_RULES; the numbers in them come from the same
constants here), each fraud flag's kind and evidence, and each exposure limit with what is at
stake under it. The views are in backend/portal/financier.py; see docs/risk.md for the rules.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from flask_babel import LazyString, format_date, format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from backend.models import FinancingRequest, Invoice, Role, Side
from backend.portal.i18n import format_amount
from backend.services import exposure, fraud, risk
from backend.services.actors import Actor
from backend.services.exposure import Exposure
from backend.services.financing import outstanding_minor
from backend.services.fraud import Flag, FlagKind
from backend.services.risk import Contribution, RiskProfile

SIDE_LABELS: dict[Side, LazyString] = {Side.BUYER: _l("Buyer"), Side.SUPPLIER: _l("Supplier")}
# Whom a limit on each side is set on: the directory's organisations of this role.
SIDE_ROLES: dict[Side, Role] = {Side.BUYER: Role.BUYER, Side.SUPPLIER: Role.SUPPLIER}

FACTOR_LABELS: dict[str, LazyString] = {
    "base": _l("Starting points"),
    "on_time": _l("Repaid on time"),
    "lateness": _l("Days late"),
    "disputes": _l("Disputes"),
    "concentration": _l("Concentration on one counterparty"),
    "tenure": _l("Time on Anchorline"),
    "track_record": _l("Track record"),
}
# risk.SCORE_RULES in the user's language; the numbers are filled in from RULE_NUMBERS.
SCORE_RULE_TEXTS: dict[str, LazyString] = {
    "base": _l("Every profile starts at %(base)s."),
    "on_time": _l("(on-time rate − 0.5) × %(on_time)s; 0 before any receivable matured"),
    "lateness": _l("−%(lateness)s × min(average days late, %(lateness_cap)s) ÷ %(lateness_cap)s"),
    "disputes": _l("−%(disputes)s × dispute rate; 0 before any invoice was answered"),
    "concentration": _l("−%(concentration)s × (the largest counterparty's share − %(free_share)s), when above it"),
    "tenure": _l("+%(tenure)s × min(days on Anchorline, %(tenure_full)s) ÷ %(tenure_full)s"),
    "track_record": _l("+%(track_record)s × min(confirmed receivables, %(track_full)s) ÷ %(track_full)s"),
}
RULE_NUMBERS: dict[str, float | int] = {
    "base": risk.BASE_POINTS,
    "on_time": 2 * risk.ON_TIME_POINTS,
    "lateness": risk.LATENESS_POINTS,
    "lateness_cap": risk.LATENESS_CAP_DAYS,
    "disputes": risk.DISPUTE_POINTS,
    "concentration": risk.CONCENTRATION_POINTS,
    "free_share": risk.CONCENTRATION_FREE_SHARE,
    "tenure": risk.TENURE_POINTS,
    "tenure_full": risk.TENURE_FULL_DAYS,
    "track_record": risk.TRACK_RECORD_POINTS,
    "track_full": risk.TRACK_RECORD_FULL_RECEIVABLES,
}

FLAG_KIND_LABELS: dict[FlagKind, LazyString] = {
    FlagKind.DUPLICATE_DOCUMENT: _l("Document anchored twice"),
    FlagKind.AMOUNT_OUTLIER: _l("Unusually large amount"),
    FlagKind.COUNT_SPIKE: _l("Sudden burst of invoices"),
    FlagKind.CIRCULAR_FLOW: _l("Circular invoicing"),
    FlagKind.SPLIT_RETURNED_TO_ORIGIN: _l("Split part back with its supplier"),
    FlagKind.FAST_CONFIRMATION: _l("Confirmed too fast to be checked"),
}


def rate(value: float) -> str:
    """A share (0 to 1) as a percentage to a tenth."""
    return format_percent(value, "#,##0.0%")


def decimal(value: float) -> str:
    """A measured figure to at most two decimals."""
    return format_decimal(value, "#,##0.##")


# ---------------------------------------------------------------- risk profiles


@dataclass(frozen=True)
class FactorRow:
    """One line of a score's breakdown, as the page shows it."""

    label: str
    measured: str
    points: str
    rule: str


def measured_text(contribution: Contribution) -> str:
    """What the factor measured, in words: a rate, a number of days, a count; a dash when it
    measures nothing (the base) or nothing could be measured yet (a rate before anything
    matured or was answered: the factor then adds nothing)."""
    value = contribution.measured
    if value is None:
        return "–"
    describe: dict[str, Callable[[float], str]] = {
        "on_time": rate,
        "lateness": lambda days: _("%(days)s days on average", days=decimal(days)),
        "disputes": rate,
        "concentration": rate,
        "tenure": lambda days: _("%(days)s days", days=decimal(days)),
        "track_record": lambda count: _("%(count)s confirmed receivables", count=decimal(count)),
    }
    return describe[contribution.factor](value)


def factor_rows(profile: RiskProfile) -> list[FactorRow]:
    """The score's contributions, each with its rule, in the user's language."""
    numbers = {name: decimal(value) for name, value in RULE_NUMBERS.items()}
    return [FactorRow(label=str(FACTOR_LABELS[part.factor]), measured=measured_text(part),
                      points=format_decimal(part.points, "+#,##0.0;−#,##0.0"),
                      rule=str(SCORE_RULE_TEXTS[part.factor]) % numbers)
            for part in profile.contributions]


# ---------------------------------------------------------------- fraud signals


def flag_description(flag: Flag) -> str:
    """What the flag found, from its evidence, in the user's language."""
    evidence = flag.evidence
    if flag.kind is FlagKind.DUPLICATE_DOCUMENT:
        return _("The same document (SHA-256 %(digest)s) is anchored under %(count)s invoices.",
                 digest=evidence["document_sha256"], count=decimal(evidence["invoices"]))
    if flag.kind is FlagKind.AMOUNT_OUTLIER:
        currency = evidence["currency"]
        return _("%(amount)s is %(times)s times the median, %(median)s, of the supplier's %(count)s earlier "
                 "invoices.", amount=format_amount(evidence["amount_minor"], currency),
                 times=format_decimal(evidence["amount_minor"] / evidence["median_minor"], "#,##0.0"),
                 median=format_amount(round(evidence["median_minor"]), currency),
                 count=decimal(evidence["earlier_invoices"]))
    if flag.kind is FlagKind.COUNT_SPIKE:
        return _("The supplier registered %(count)s invoices on %(date)s, against %(average)s a day over the "
                 "%(days)s days before.", count=decimal(evidence["invoices"]),
                 date=format_date(date.fromisoformat(evidence["date"])), average=decimal(evidence["daily_average"]),
                 days=decimal(fraud.COUNT_SPIKE_BASELINE_DAYS))
    if flag.kind is FlagKind.CIRCULAR_FLOW:
        return _("The supplier and the buyer invoiced each other, %(days)s days apart.",
                 days=decimal(evidence["days_apart"]))
    if flag.kind is FlagKind.SPLIT_RETURNED_TO_ORIGIN:
        return _("A part split from this receivable was transferred back to the supplier that issued it "
                 "(transaction %(tx_hash)s, block %(block)s).", tx_hash=evidence["tx_hash"],
                 block=evidence["block_number"])
    return _("The buyer asked to confirm it %(seconds)s seconds after its registration was mined.",
             seconds=decimal(evidence["seconds"]))


def flagged_requests(actor: Actor, requests: Sequence[FinancingRequest]) -> set[int]:
    """The ids of the requests whose receivable has fraud flags (fraud.flags_on_invoice)."""
    return {request.id for request in requests if fraud.flags_on_invoice(actor, request.invoice_id)}


# ---------------------------------------------------------------- exposure limits


@dataclass(frozen=True)
class ExposureCheck:
    """A limit that applies to a receivable: what is at stake under it now, and what taking the
    receivable on would bring it to (the receivable counted once, as exposure.require_within_limits
    counts it)."""

    exposure: Exposure
    would_reach_minor: int

    @property
    def within(self) -> bool:
        return self.would_reach_minor <= self.exposure.limit.limit_minor


def exposure_checks(actor: Actor, invoice: Invoice) -> list[ExposureCheck]:
    """The financier's limits on the receivable's buyer and supplier, buyer first."""
    applying = {(Side.BUYER, invoice.buyer_id), (Side.SUPPLIER, invoice.supplier_id)}
    relevant = [held for held in exposure.exposures(actor)
                if (held.limit.side, held.limit.counterparty_id) in applying]
    adding = outstanding_minor(invoice)
    return [ExposureCheck(held, adding + exposure.at_stake_minor(
                actor.organisation.id, held.limit.counterparty_id, held.limit.side, excluding_invoice_id=invoice.id))
            for held in sorted(relevant, key=lambda held: held.limit.side != Side.BUYER)]


class ExposureLimitForm(FlaskForm):
    """A limit on one counterparty of one side (the page holds one form per side, each with its
    prefix; the counterparty's label and choices are set by the view)."""

    counterparty_id = SelectField(_l("Counterparty"), validators=[DataRequired()], choices=[])
    limit = StringField(_l("Limit"), validators=[DataRequired(), Length(max=40)],
                        render_kw={"inputmode": "decimal", "autocomplete": "off"})


def exposure_limit_form(side: Side, choices: list[SelectChoice], *, submitted: bool) -> ExposureLimitForm:
    """The form for limits on `side`, offering `choices` (the directory's organisations of the
    side's role, after an empty choice), read from the request when it was the one submitted."""
    form = ExposureLimitForm(prefix=str(side)) if submitted else ExposureLimitForm(prefix=str(side), formdata=None)
    form.counterparty_id.label.text = str(SIDE_LABELS[side])
    form.counterparty_id.choices = choices
    return form
