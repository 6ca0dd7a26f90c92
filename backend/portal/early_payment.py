"""Early payment on the invoice's page (issue 6 §3): the buyer offers to pay a confirmed payable
early at an annual rate of discount, revises or withdraws the offer; the holder sees what it
would be paid now instead of at maturity and accepts. The routes are the invoice pages'
(backend/portal/invoices.py); this module holds their forms and what the page shows, read
through backend.services.early_payment as the API reads it.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, StringField
from wtforms.validators import DataRequired, Length

from backend.models import ChainTransaction, EarlyPaymentOffer, EarlyPaymentOfferStatus, Invoice, InvoiceStatus
from backend.money import from_minor_units
from backend.portal.forms import ConfirmForm
from backend.services import early_payment
from backend.services.actors import Actor
from backend.services.early_payment import EarlyPaymentQuote
from backend.services.errors import NotFound
from backend.services.financing import outstanding_minor

EARLY_PAYMENT_STATUS_LABELS: dict[EarlyPaymentOfferStatus, LazyString] = {
    EarlyPaymentOfferStatus.PENDING: _l("Awaiting the ledger"),
    EarlyPaymentOfferStatus.OPEN: _l("Open"),
    EarlyPaymentOfferStatus.WITHDRAWN: _l("Withdrawn"),
    EarlyPaymentOfferStatus.ACCEPTED: _l("Accepted: paid early"),
    EarlyPaymentOfferStatus.LAPSED: _l("Lapsed"),
}


class EarlyPaymentOfferForm(FlaskForm):
    # A percentage a year with at most two decimals ("12.5"); the service reads it exactly.
    annual_rate = StringField(_l("Annual rate of discount, in percent"), validators=[DataRequired(), Length(max=20)],
                              render_kw={"inputmode": "decimal", "autocomplete": "off"})
    # The offer stands until the end of this day (UTC), which must come before the due date.
    expiry = DateField(_l("Offer stands until (the end of the day, UTC; before the due date)"),
                       validators=[DataRequired()])


class AcceptEarlyPaymentForm(FlaskForm):
    # The discount the holder was shown: the most it accepts (it only shrinks as time passes).
    discount_seen = HiddenField(validators=[DataRequired()])


@dataclass(frozen=True)
class EarlyPaymentSection:
    """What the invoice's page shows of early payment to the buyer or the holder: the offer
    (None before the buyer makes one), its quote now, the writes on their way, and the forms."""

    offer: EarlyPaymentOffer | None
    quote: EarlyPaymentQuote | None
    pending: list[ChainTransaction]
    is_buyer: bool
    can_offer: bool
    can_withdraw: bool
    can_accept: bool
    offer_form: EarlyPaymentOfferForm
    accept_form: AcceptEarlyPaymentForm
    withdraw_form: ConfirmForm


def early_payment_section(actor: Actor, invoice: Invoice,
                          offer_form: EarlyPaymentOfferForm | None = None) -> EarlyPaymentSection | None:
    """The section for the invoice's buyer or holder; None for anyone else, or when there is
    nothing to show (no offer, and the payable is not one the buyer can offer on)."""
    is_buyer = invoice.buyer_id == actor.organisation.id
    is_holder = invoice.holder_id == actor.organisation.id
    if not (is_buyer or is_holder):
        return None
    try:
        offer = early_payment.early_payment_offer(actor, invoice.id)
    except NotFound:
        offer = None
    payable = invoice.status == InvoiceStatus.CONFIRMED and outstanding_minor(invoice) > 0
    can_offer = is_buyer and payable
    if offer is None and not can_offer:
        return None
    quote = early_payment.early_payment_quote(offer) if offer is not None else None
    pending = early_payment.pending_actions(offer) if offer is not None else []
    live = offer is not None and offer.status == EarlyPaymentOfferStatus.OPEN and not pending
    return EarlyPaymentSection(
        offer=offer, quote=quote, pending=pending, is_buyer=is_buyer,
        can_offer=can_offer and not pending,
        can_withdraw=is_buyer and live,
        can_accept=is_holder and live and payable and quote is not None and not quote.expired,
        offer_form=offer_form or EarlyPaymentOfferForm(formdata=None),
        accept_form=AcceptEarlyPaymentForm(
            formdata=None,
            discount_seen=None if quote is None else str(from_minor_units(quote.discount_minor, invoice.currency))),
        withdraw_form=ConfirmForm(formdata=None),
    )
