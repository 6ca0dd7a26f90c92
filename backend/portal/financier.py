"""The financier's pages (issue 5 §4), and every organisation's API keys and webhook endpoints.

The financier: the marketplace of open financing requests (filtered, with each supplier's
history), a request's page to make or revise an offer or to fund it outright at its asking
terms (after a confirmation stating the amounts), its offers and their withdrawal, its
portfolio with expected and realised yields (servicing.HoldingYield), and the receivables it
holds that are past their due date. API keys (every role) and webhook endpoints (financiers and
buyers) are managed here too: a key's token and an endpoint's signing secret are shown once,
on the page that answers their creation (or rotation), and never again.

Every read and write goes through backend/services (financing, servicing, accounts, webhooks),
as the API's do. Risk beside what the financier may fund (each organisation's profile and
score, the fraud signals, its exposure limits) is put into words by backend/portal/financier_risk.py;
the financier sets its limits on /account/exposure-limits. See docs/portal.md ("Pages").
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from backend.api.fields import ROW_ID
from backend.extensions import db
from backend.models import (
    ApiKey,
    Delinquency,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Role,
    Side,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from backend.models.types import MAX_ROW_ID
from backend.money import from_minor_units
from backend.portal import layout
from backend.portal.auth import current_actor, show_service_errors
from backend.portal.dashboards import INVOICE_STATUS_LABELS
from backend.portal.financier_risk import (
    FLAG_KIND_LABELS,
    SIDE_LABELS,
    SIDE_ROLES,
    exposure_checks,
    exposure_limit_form,
    factor_rows,
    flag_description,
    flagged_requests,
)
from backend.portal.forms import CheckboxesField, ConfirmForm, at_least_one
from backend.portal.invoices import require_role
from backend.portal.paging import PAGE_SIZE, page_number
from backend.security.api_keys import Scope
from backend.services import accounts, exposure, financing, fraud, organisations, risk, servicing, webhooks
from backend.services.accounts import MAX_KEY_NAME_LENGTH
from backend.services.actors import Actor
from backend.services.errors import InvalidInput
from backend.services.exposure import ExposureLimitExceeded
from backend.services.financing import FinanceableFilters, outstanding_minor
from backend.services.ledger import ledger_now, settlement_currency
from backend.services.permissions import ALL_ROLES, WEBHOOK_ROLES
from backend.services.webhooks import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH

blp = Blueprint("financier_pages", __name__)
layout.setup(blp)
layout.nav_link("financier_pages.market", _l("Marketplace"), Role.FINANCIER)
layout.nav_link("financier_pages.my_offers", _l("Your offers"), Role.FINANCIER)
layout.nav_link("financier_pages.portfolio", _l("Portfolio"), Role.FINANCIER)
layout.nav_link("financier_pages.overdue", _l("Overdue"), Role.FINANCIER)
layout.nav_link("financier_pages.exposure_limits", _l("Exposure limits"), Role.FINANCIER)
layout.nav_link("financier_pages.api_keys", _l("API keys"), ALL_ROLES)
layout.nav_link("financier_pages.webhook_endpoints", _l("Webhooks"), WEBHOOK_ROLES)

OFFER_STATUS_LABELS: dict[OfferStatus, LazyString] = {
    OfferStatus.PENDING: _l("Awaiting the ledger"),
    OfferStatus.OPEN: _l("Open"),
    OfferStatus.WITHDRAWN: _l("Withdrawn"),
    OfferStatus.ACCEPTED: _l("Accepted"),
    OfferStatus.LAPSED: _l("Lapsed"),
}
DELINQUENCY_LABELS: dict[Delinquency, LazyString] = {
    Delinquency.NONE: _l("Not marked yet"),
    Delinquency.OVERDUE: _l("Marked overdue"),
    Delinquency.DEFAULTED: _l("Marked defaulted"),
}
DELIVERY_STATUS_LABELS: dict[WebhookDeliveryStatus, LazyString] = {
    WebhookDeliveryStatus.PENDING: _l("Pending"),
    WebhookDeliveryStatus.DELIVERED: _l("Delivered"),
    WebhookDeliveryStatus.DEAD: _l("Failed: every attempt"),
}
SCOPE_LABELS: dict[Scope, LazyString] = {
    Scope.READ: _l("Read"),
    Scope.WRITE: _l("Write: change anything the organisation may change"),
}
# What each webhook event announces, in the user's language (webhooks.EVENT_TYPES says it in
# English for the API's documentation).
EVENT_TYPE_LABELS: dict[str, LazyString] = {
    "invoice.registered": _l("A receivable was registered on the ledger"),
    "invoice.confirmed": _l("The buyer confirmed a payable"),
    "invoice.disputed": _l("The buyer disputed a payable"),
    "invoice.cancelled": _l("The supplier cancelled a receivable"),
    "invoice.split": _l("A receivable was split into parts"),
    "invoice.transferred": _l("A receivable changed holder"),
    "invoice.repayment_recorded": _l("The buyer repaid (part of) a receivable"),
    "invoice.repaid": _l("A receivable was repaid in full"),
    "invoice.due": _l("A receivable reached its maturity date unpaid"),
    "invoice.overdue": _l("A receivable was marked overdue on the ledger"),
    "invoice.defaulted": _l("A receivable was marked defaulted on the ledger"),
    "invoice.maturity_reminder": _l("A payable matures soon"),
    "financing.requested": _l("A holder asked for financing"),
    "financing.cancelled": _l("A financing request was cancelled"),
    "financing.expired": _l("A financing request or offer expired"),
    "financing.offer_made": _l("A financier made or revised an offer"),
    "financing.offer_withdrawn": _l("A financier withdrew an offer"),
    "financing.funded": _l("A receivable was financed"),
    "token.minted": _l("Settlement tokens were minted against a deposit"),
    "token.burned": _l("Settlement tokens were burned against a withdrawal"),
    "transaction.reverted": _l("A ledger write was refused by the ledger"),
    "early_payment.offered": _l("A buyer offered to pay a payable early, or revised its offer"),
    "early_payment.withdrawn": _l("A buyer withdrew its offer to pay early"),
    "early_payment.lapsed": _l("A buyer's offer to pay early lapsed at its expiry"),
    "early_payment.settled": _l("A receivable was paid early at a discount"),
}
# How many of an endpoint's deliveries its page lists, the newest first.
RECENT_DELIVERIES = 25


def end_of_day(day: date) -> datetime:
    """The last instant of `day` (UTC): the ledger keeps it to the second."""
    return datetime.combine(day, time.max, UTC)


# ---------------------------------------------------------------- forms


class MarketFilterForm(FlaskForm):
    """The marketplace's filters: a GET form, so it has no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    # Their choices (the buyers and suppliers of the directory) are set by the view.
    buyer = SelectField(_l("Buyer"), validators=[Optional()], choices=[SelectChoice("", "")])
    supplier = SelectField(_l("Supplier"), validators=[Optional()], choices=[SelectChoice("", "")])
    due_from = DateField(_l("Due on or after"), validators=[Optional()])
    due_to = DateField(_l("Due on or before"), validators=[Optional()])
    # Face values in the settlement currency; the service reads them exactly.
    amount_min = StringField(_l("Face value at least"), validators=[Optional(), Length(max=40)],
                             render_kw={"inputmode": "decimal"})
    amount_max = StringField(_l("Face value at most"), validators=[Optional(), Length(max=40)],
                             render_kw={"inputmode": "decimal"})

    def filters(self) -> FinanceableFilters:
        return FinanceableFilters(
            buyer_id=int(self.buyer.data) if self.buyer.data else None,
            supplier_id=int(self.supplier.data) if self.supplier.data else None,
            due_from=self.due_from.data, due_to=self.due_to.data,
            amount_min=(self.amount_min.data or "").strip() or None,
            amount_max=(self.amount_max.data or "").strip() or None,
        )

    def arguments(self) -> dict[str, str]:
        """The filters as query arguments, for the pagination's links."""
        return {name: value for name in ("buyer", "supplier", "due_from", "due_to", "amount_min", "amount_max")
                if (value := request.args.get(name, ""))}


class StatusFilterForm(FlaskForm):
    """A list's status filter: a GET form, without a CSRF token."""

    class Meta:
        csrf = False

    # Its choices (the statuses with their labels) are set by the view, in the request's language.
    status = SelectField(_l("Status"), validators=[Optional()], choices=[SelectChoice("", "")])
    # Beyond the database's integers a page's OFFSET would overflow.
    page = IntegerField(_l("Page"), validators=[Optional(), NumberRange(min=1, max=MAX_ROW_ID)], default=1)

    @classmethod
    def of(cls, labels: dict[str, LazyString]) -> StatusFilterForm:
        """The form read from the query, offering `labels` after "every status"."""
        form = cls(formdata=request.args)
        form.status.choices = [SelectChoice("", _("Every status")),
                               *(SelectChoice(str(value), label) for value, label in labels.items())]
        if not form.validate():  # an unknown status or page: the whole list, from its start
            form.status.data, form.page.data = "", 1
        return form


class OfferForm(FlaskForm):
    # A decimal amount of the receivable's currency; at least the asking advance.
    advance = StringField(_l("Advance you offer"), validators=[DataRequired(), Length(max=40)],
                          render_kw={"inputmode": "decimal", "autocomplete": "off"})
    # The offer stands until the end of this day (UTC), or the request's deadline if sooner.
    expiry = DateField(_l("Your offer stands until (the end of the day UTC, at most the request's deadline)"),
                       validators=[DataRequired()])


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Name (which client uses the key)"),
                       validators=[DataRequired(), Length(max=MAX_KEY_NAME_LENGTH)])
    scopes = CheckboxesField(_l("What the key may do"), choices=[
        SelectChoice(str(scope), label) for scope, label in SCOPE_LABELS.items()],
        validators=[at_least_one], default=[str(Scope.READ)])
    expires_at = DateField(_l("Stops working after (the end of the day UTC; leave empty for never)"),
                           validators=[Optional()])


class WebhookEndpointForm(FlaskForm):
    url = URLField(_l("URL the events are posted to (https)"),
                   validators=[DataRequired(), Length(max=MAX_URL_LENGTH)])
    event_types = CheckboxesField(_l("Events to receive"), choices=[
        SelectChoice(name, label) for name, label in EVENT_TYPE_LABELS.items()],
        validators=[at_least_one])
    description = TextAreaField(_l("Description (optional)"),
                                validators=[Optional(), Length(max=MAX_DESCRIPTION_LENGTH)], render_kw={"rows": 2})


class WebhookEndpointChangeForm(WebhookEndpointForm):
    active = BooleanField(_l("Active: deliveries are sent (while inactive they wait)"))


# ---------------------------------------------------------------- the marketplace


@blp.route("/market")
@login_required
def market() -> ResponseReturnValue:
    """The open financing requests the financier may fund, the soonest deadline first, each with
    its supplier's history, the supplier's and the buyer's scores and a mark when its receivable
    has fraud flags; filtered by buyer, supplier, due date and face value."""
    require_role(Role.FINANCIER)
    actor = current_actor()
    form = MarketFilterForm(formdata=request.args)
    form.buyer.choices = organisation_choices(actor, Role.BUYER, _("Every buyer"))
    form.supplier.choices = organisation_choices(actor, Role.SUPPLIER, _("Every supplier"))
    entries, page, scores, flagged = [], None, {}, set()
    status = 200
    if form.validate():
        try:
            statement = financing.financeable(actor, form.filters())
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
            status = 400
        else:
            page = db.paginate(statement.order_by(FinancingRequest.deadline, FinancingRequest.id),
                               page=page_number(), per_page=PAGE_SIZE, error_out=False)
            entries = financing.describe_financeable(actor, page.items)
            scores = risk.profiles_of_parties(actor, [entry.invoice for entry in entries])
            flagged = flagged_requests(actor, page.items)
    else:
        status = 400
    return render_template("portal/financier_market.html", form=form, page=page, entries=entries,
                           scores=scores, flagged=flagged, arguments=form.arguments()), status


def organisation_choices(actor: Actor, role: Role, empty_choice: str) -> list[SelectChoice]:
    """The directory's organisations of `role`, by name, after an empty choice (all of them, in
    a filter) labelled `empty_choice`."""
    statement = organisations.organisation_directory(actor, role=role).order_by(Organisation.name)
    return [SelectChoice("", empty_choice), *(SelectChoice(str(organisation.id), organisation.name)
                                              for organisation in db.session.scalars(statement))]


@blp.route(f"/market/<{ROW_ID}:request_id>")
@login_required
def market_request(request_id: int) -> ResponseReturnValue:
    """One financing request: the receivable, its supplier's history, both parties' risk
    profiles, the fraud flags on it, the financier's exposure to them against its limits, its
    own offer, and the forms to offer or to fund it outright."""
    return render_market_request(request_id)


def render_market_request(request_id: int, offer_form: OfferForm | None = None, status: int = 200,
                          refusal: ExposureLimitExceeded | None = None) -> ResponseReturnValue:
    require_role(Role.FINANCIER)
    actor = current_actor()
    financing_request = financing.get_financing_request(actor, request_id)
    (entry,) = financing.describe_financeable(actor, [financing_request])
    invoice = entry.invoice
    own_offer = db.session.scalar(financing.offers(actor, financing_request_id=request_id,
                                                   financier_id=actor.organisation.id))
    today = ledger_now().date()
    if offer_form is None:
        offer_form = OfferForm(formdata=None, expiry=financing_request.deadline.date())
        if own_offer is not None:
            offer_form.advance.data = str(from_minor_units(own_offer.advance_minor, entry.invoice.currency))
    return render_template(
        "portal/financier_request.html", entry=entry, financing_request=financing_request,
        own_offer=own_offer, own_terms=financing.offer_terms(own_offer, today) if own_offer else None,
        open_to_offers=is_open_to_offers(financing_request, actor), closing=is_closing(financing_request),
        offer_form=offer_form, refusal=refusal,
        asking=asking_terms(financing_request), offer_status_labels=OFFER_STATUS_LABELS,
        profiles=[risk.risk_profile(actor, invoice.supplier_id, Side.SUPPLIER),
                  risk.risk_profile(actor, invoice.buyer_id, Side.BUYER)],
        flags=fraud.flags_on_invoice(actor, invoice.id), exposure_checks=exposure_checks(actor, invoice),
        **risk_wording()), status


def risk_wording() -> dict[str, object]:
    """What the request's and the fund's pages need to put risk into words."""
    return {"factor_rows": factor_rows, "flag_description": flag_description, "flag_kind_labels": FLAG_KIND_LABELS,
            "side_labels": SIDE_LABELS, "organisation_name": organisation_name}


def organisation_name(organisation_id: int) -> str:
    """A counterparty's name (the directory is open to every participant)."""
    return organisations.get_organisation(current_actor(), organisation_id).name


def is_open_to_offers(financing_request: FinancingRequest, actor: Actor) -> bool:
    """Whether the page offers its forms (the services judge each write again)."""
    return (financing_request.status == FinancingRequestStatus.OPEN
            and financing_request.deadline >= ledger_now()
            and financing_request.seller_id != actor.organisation.id
            and not is_closing(financing_request))


def is_closing(financing_request: FinancingRequest) -> bool:
    """Whether a funding, an acceptance or a cancellation that will close the request is on its
    way to the ledger (its status moves on only once it is mined)."""
    return any(write.function in financing.CLOSING_FUNCTIONS for write in financing.pending_actions(financing_request))


def asking_terms(financing_request: FinancingRequest) -> dict[str, int | Decimal | None]:
    """What funding the request outright at its asking advance pays and returns: the advance
    now, the outstanding amount at maturity, the discount between them and its implied annual
    rate (financing.annualised_rate_percent, as an offer's)."""
    invoice = financing_request.invoice
    advance, collected = financing_request.asking_advance_minor, outstanding_minor(invoice)
    days = (invoice.due_date - ledger_now().date()).days
    return {"advance_minor": advance, "collected_minor": collected, "discount_minor": collected - advance,
            "days": days, "rate": financing.annualised_rate_percent(collected - advance, advance, days)}


@blp.route(f"/market/<{ROW_ID}:request_id>/offer", methods=["POST"])
@login_required
def make_offer(request_id: int) -> ResponseReturnValue:
    """Makes (or revises) the financier's offer on the request (financing.make_offer)."""
    require_role(Role.FINANCIER)
    form = OfferForm()
    if form.validate_on_submit():
        actor = current_actor()
        financing_request = financing.get_financing_request(actor, request_id)
        try:
            financing.make_offer(actor, request_id, advance=form.advance.data.strip(),
                                 currency=financing_request.invoice.currency,
                                 expiry=min(end_of_day(form.expiry.data), financing_request.deadline))
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        except ExposureLimitExceeded as refusal:
            return render_market_request(request_id, offer_form=form, status=400, refusal=refusal)
        else:
            flash(_("Your offer is on its way to the ledger."), "success")
            return redirect(url_for("financier_pages.market_request", request_id=request_id))
    return render_market_request(request_id, offer_form=form, status=400)


@blp.route(f"/market/<{ROW_ID}:request_id>/fund", methods=["GET", "POST"])
@login_required
def fund_request(request_id: int) -> ResponseReturnValue:
    """Funding a request outright at its asking advance: first the amounts to confirm (and the
    financier's limits on the buyer and the supplier), then the write (financing.fund_request)."""
    require_role(Role.FINANCIER)
    actor = current_actor()
    financing_request = financing.get_financing_request(actor, request_id)
    form = ConfirmForm()
    refusal = None
    if form.validate_on_submit():
        try:
            financing.fund_request(actor, request_id)
        except ExposureLimitExceeded as exceeded:
            refusal = exceeded
        else:
            flash(_("The funding is on its way to the ledger."), "success")
            return redirect(url_for("financier_pages.market_request", request_id=request_id))
    return render_template("portal/financier_fund.html", financing_request=financing_request, form=form,
                           asking=asking_terms(financing_request), refusal=refusal,
                           exposure_checks=exposure_checks(actor, financing_request.invoice),
                           side_labels=SIDE_LABELS, open_to_offers=is_open_to_offers(financing_request, actor)), \
        400 if form.is_submitted() else 200


# ---------------------------------------------------------------- offers


@blp.route("/offers")
@login_required
def my_offers() -> ResponseReturnValue:
    """The financier's own offers, the newest first, by status; an open one may be withdrawn."""
    require_role(Role.FINANCIER)
    actor = current_actor()
    form = StatusFilterForm.of(OFFER_STATUS_LABELS)
    offer_status = OfferStatus(form.status.data) if form.status.data else None
    statement = financing.offers(actor, status=offer_status, financier_id=actor.organisation.id)
    page = db.paginate(statement.order_by(Offer.updated_at.desc(), Offer.id.desc()), page=form.page.data or 1,
                       per_page=PAGE_SIZE, error_out=False)
    today = ledger_now().date()
    return render_template("portal/financier_offers.html", page=page, filter_form=form, status=offer_status,
                           # The rate at today's terms means something only while the offer stands.
                           terms={offer.id: financing.offer_terms(offer, today) for offer in page.items
                                  if offer.status in (OfferStatus.PENDING, OfferStatus.OPEN)},
                           withdrawing={offer.id for offer in page.items
                                        if any(write.function == "withdrawOffer"
                                               for write in financing.pending_actions(offer))},
                           offer_status_labels=OFFER_STATUS_LABELS, form=ConfirmForm())


@blp.route(f"/offers/<{ROW_ID}:offer_id>/withdraw", methods=["POST"])
@login_required
def withdraw_offer(offer_id: int) -> ResponseReturnValue:
    """The financier withdraws its open offer (financing.withdraw_offer)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    financing.withdraw_offer(current_actor(), offer_id)
    flash(_("The withdrawal is on its way to the ledger."), "success")
    return redirect(url_for("financier_pages.my_offers"))


# ---------------------------------------------------------------- portfolio


@blp.route("/portfolio")
@login_required
def portfolio() -> ResponseReturnValue:
    """The receivables the financier holds, the soonest due first, with their yields and the
    totals per currency."""
    require_role(Role.FINANCIER)
    actor = current_actor()
    form = StatusFilterForm.of({status: INVOICE_STATUS_LABELS[status] for status in servicing.HELD_STATUSES})
    held_status = InvoiceStatus(form.status.data) if form.status.data else None
    held = servicing.portfolio(actor, status=held_status)
    page = db.paginate(held.holdings.order_by(Invoice.due_date, Invoice.id), page=form.page.data or 1,
                       per_page=PAGE_SIZE, error_out=False)
    return render_template("portal/financier_portfolio.html", page=page, totals=held.totals, filter_form=form,
                           status=held_status, yields=servicing.holding_yields(actor, page.items),
                           delinquency_labels=DELINQUENCY_LABELS)


@blp.route("/portfolio/overdue")
@login_required
def overdue() -> ResponseReturnValue:
    """The receivables the financier holds past their due date and unpaid, the longest late
    first: how many days late, what is outstanding, and whether the ledger has marked them."""
    require_role(Role.FINANCIER)
    page = db.paginate(servicing.overdue_holdings(current_actor()), page=page_number(), per_page=PAGE_SIZE,
                       error_out=False)
    return render_template("portal/financier_overdue.html", page=page, days_late=servicing.days_late,
                           delinquency_labels=DELINQUENCY_LABELS)


# ---------------------------------------------------------------- exposure limits


@blp.route("/account/exposure-limits", methods=["GET", "POST"])
@login_required
def exposure_limits() -> ResponseReturnValue:
    """The financier's limits per buyer and per supplier, each with what is at stake under it
    and the headroom left; setting (or changing) one on a buyer or a supplier of the directory,
    one form per side (exposure.set_exposure_limit)."""
    require_role(Role.FINANCIER)
    actor = current_actor()
    submitted_side = None
    if request.method == "POST":
        try:  # which of the page's two forms was sent
            submitted_side = Side(request.form.get("side", ""))
        except ValueError:
            abort(400)
    forms = {side: exposure_limit_form(side, organisation_choices(actor, SIDE_ROLES[side], _("Choose…")),
                                       submitted=side == submitted_side)
             for side in (Side.BUYER, Side.SUPPLIER)}
    status = 200
    if submitted_side is not None:
        form = forms[submitted_side]
        if form.validate_on_submit():
            try:
                limit = exposure.set_exposure_limit(actor, int(form.counterparty_id.data), submitted_side,
                                                    limit=form.limit.data.strip(), currency=settlement_currency())
            except InvalidInput as refusal:
                show_service_errors(form, refusal)
            else:
                flash(_("Your limit on %(name)s is saved.", name=limit.counterparty.name), "success")
                return redirect(url_for("financier_pages.exposure_limits"))
        status = 400
    return render_template("portal/financier_exposure_limits.html", exposures=exposure.exposures(actor),
                           forms=forms, remove_form=ConfirmForm(), side_labels=SIDE_LABELS,
                           currency=settlement_currency()), status


@blp.route(f"/account/exposure-limits/<any(buyer, supplier):side>/<{ROW_ID}:counterparty_id>/remove",
           methods=["POST"])
@login_required
def remove_exposure_limit(side: str, counterparty_id: int) -> ResponseReturnValue:
    """Removes the financier's limit on one buyer or one supplier."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    exposure.remove_exposure_limit(current_actor(), counterparty_id, Side(side))
    flash(_("The limit is removed."), "success")
    return redirect(url_for("financier_pages.exposure_limits"))


# ---------------------------------------------------------------- API keys


@blp.route("/account/api-keys", methods=["GET", "POST"])
@login_required
def api_keys() -> ResponseReturnValue:
    """The organisation's API keys (revoked and expired ones too), and issuing one: its token is
    shown on the answer page, once."""
    actor = current_actor()
    keys = db.session.scalars(accounts.api_keys_of_own_organisation(actor)
                              .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())).all()
    form = ApiKeyForm()
    status = 200
    if form.validate_on_submit():
        expires_at = end_of_day(form.expires_at.data) if form.expires_at.data else None
        try:
            key, token = accounts.issue_api_key(actor, name=form.name.data, scopes=form.scopes.data,
                                                expires_at=expires_at)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            return render_template("portal/financier_api_key_issued.html", key=key, token=token,
                                   scope_labels=SCOPE_LABELS)
    if form.is_submitted():
        status = 400
    return render_template("portal/financier_api_keys.html", keys=keys, form=form, revoke_form=ConfirmForm(),
                           scope_labels=SCOPE_LABELS, now=ledger_now()), status


@blp.route(f"/account/api-keys/<{ROW_ID}:key_id>/revoke", methods=["POST"])
@login_required
def revoke_api_key(key_id: int) -> ResponseReturnValue:
    """Revokes one of the organisation's keys: it authenticates nothing from now on."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    actor = current_actor()
    key = accounts.revoke_api_key(actor, accounts.get_api_key(actor, key_id))
    flash(_("The API key %(prefix)s is revoked.", prefix=key.prefix), "success")
    return redirect(url_for("financier_pages.api_keys"))


# ---------------------------------------------------------------- webhooks


@blp.route("/account/webhooks", methods=["GET", "POST"])
@login_required
def webhook_endpoints() -> ResponseReturnValue:
    """The organisation's webhook endpoints (the readers of everything: every organisation's),
    and registering one: its signing secret is shown on the answer page, once."""
    actor = current_actor()
    endpoints = db.session.scalars(webhooks.endpoints(actor).order_by(WebhookEndpoint.id)).all()
    form = WebhookEndpointForm()
    status = 200
    if form.validate_on_submit():
        try:
            endpoint, secret = webhooks.create_endpoint(actor, url=form.url.data, event_types=form.event_types.data,
                                                        description=form.description.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            return render_template("portal/financier_webhook_secret.html", endpoint=endpoint, secret=secret)
    if form.is_submitted():
        status = 400
    return render_template("portal/financier_webhooks.html", endpoints=endpoints, form=form,
                           can_manage=actor.has_any(WEBHOOK_ROLES), event_type_labels=EVENT_TYPE_LABELS), status


@blp.route(f"/account/webhooks/<{ROW_ID}:endpoint_id>", methods=["GET", "POST"])
@login_required
def webhook_endpoint(endpoint_id: int) -> ResponseReturnValue:
    """One endpoint: changing its URL, events, description or whether it is active; rotating its
    secret; deleting it; its recent deliveries, a failed one sent again."""
    actor = current_actor()
    endpoint = webhooks.get_endpoint(actor, endpoint_id)
    form = WebhookEndpointChangeForm(obj=endpoint)
    status = 200
    if form.validate_on_submit():
        try:
            webhooks.update_endpoint(actor, endpoint_id, url=form.url.data, event_types=form.event_types.data,
                                     description=form.description.data, active=form.active.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            flash(_("The endpoint is saved."), "success")
            return redirect(url_for("financier_pages.webhook_endpoint", endpoint_id=endpoint_id))
    if form.is_submitted():
        status = 400
    deliveries = db.session.scalars(webhooks.deliveries(actor, endpoint_id)
                                    .order_by(WebhookDelivery.id.desc()).limit(RECENT_DELIVERIES)).all()
    own = endpoint.organisation_id == actor.organisation.id
    return render_template("portal/financier_webhook.html", endpoint=endpoint, form=form, deliveries=deliveries,
                           can_manage=own and actor.has_any(WEBHOOK_ROLES), button_form=ConfirmForm(), delivery_status_labels=DELIVERY_STATUS_LABELS,
                           event_type_labels=EVENT_TYPE_LABELS), status


@blp.route(f"/account/webhooks/<{ROW_ID}:endpoint_id>/rotate-secret", methods=["POST"])
@login_required
def rotate_webhook_secret(endpoint_id: int) -> ResponseReturnValue:
    """A new signing secret, shown on the answer page once; the old one signs nothing more."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    endpoint, secret = webhooks.rotate_secret(current_actor(), endpoint_id)
    return render_template("portal/financier_webhook_secret.html", endpoint=endpoint, secret=secret)


@blp.route(f"/account/webhooks/<{ROW_ID}:endpoint_id>/delete", methods=["POST"])
@login_required
def delete_webhook_endpoint(endpoint_id: int) -> ResponseReturnValue:
    """Removes the endpoint and its deliveries."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    webhooks.delete_endpoint(current_actor(), endpoint_id)
    flash(_("The endpoint is deleted."), "success")
    return redirect(url_for("financier_pages.webhook_endpoints"))


@blp.route(f"/account/webhooks/<{ROW_ID}:endpoint_id>/deliveries/<{ROW_ID}:delivery_id>/redeliver", methods=["POST"])
@login_required
def redeliver(endpoint_id: int, delivery_id: int) -> ResponseReturnValue:
    """Sends a failed (or delivered) event again, as a fresh series of attempts."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    webhooks.redeliver(current_actor(), endpoint_id, delivery_id)
    flash(_("The event will be sent again."), "success")
    return redirect(url_for("financier_pages.webhook_endpoint", endpoint_id=endpoint_id))
