"""The operator's pages (issue 5 §5): the onboarding queue (registering an organisation,
approving or rejecting its KYC review), the participants (suspending and reinstating them, with
their ledger writes), the settlement token (minting against deposits, burning against
withdrawals, the operations and the balances) and the system's health.

Every read and write goes through backend/services (organisations, tokens, transactions), as
the API's do, and the health page shows workers/monitoring.py's reading, the one behind
GET /api/v1/health and `anchorline status`. Another role's user is told these pages do not
exist (404); a write the services refuse is their error page or a message on the form. See
docs/portal.md ("Pages").
"""
from __future__ import annotations

import functools
import operator as operators
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from backend.api.fields import ROW_ID
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    KycDocument,
    KycStatus,
    Organisation,
    Role,
    TokenOperation,
    TokenOperationKind,
    TokenOperationStatus,
)
from backend.portal import layout
from backend.portal.auth import current_actor, show_service_errors
from backend.portal.forms import CheckboxesField, at_least_one
from backend.portal.i18n import format_amount
from backend.portal.invoices import TRANSACTION_STATUS_LABELS, require_role
from backend.portal.paging import PAGE_SIZE, page_number
from backend.security.keystore import load_master_secret
from backend.services import organisations, tokens, transactions
from backend.services.errors import Duplicate, InvalidInput, InvalidState
from backend.services.ledger import settlement_currency
from backend.services.organisations import LEDGER_ROLES, MAX_LEGAL_IDENTIFIER_LENGTH, MAX_NAME_LENGTH, MAX_NOTE_LENGTH
from backend.services.tokens import MAX_REFERENCE_LENGTH
from workers import monitoring

blp = Blueprint("operator_pages", __name__)
layout.setup(blp)
layout.nav_link("operator_pages.onboarding", _l("Onboarding"), Role.OPERATOR)
layout.nav_link("operator_pages.participants", _l("Participants"), Role.OPERATOR)
layout.nav_link("operator_pages.settlement_token", _l("Settlement token"), Role.OPERATOR)
layout.nav_link("operator_pages.system_health", _l("System health"), Role.OPERATOR)

KYC_DOCUMENT_LABELS: dict[KycDocument, LazyString] = {
    KycDocument.BUSINESS_LICENCE: _l("Business licence"),
    KycDocument.ARTICLES_OF_ASSOCIATION: _l("Articles of association"),
    KycDocument.REPRESENTATIVE_ID: _l("Legal representative's identity document"),
    KycDocument.BENEFICIAL_OWNERS: _l("Beneficial owners"),
    KycDocument.BANK_ACCOUNT: _l("Bank account"),
    KycDocument.TAX_REGISTRATION: _l("Tax registration"),
}
ROLE_LABELS: dict[Role, LazyString] = {
    Role.SUPPLIER: _l("Supplier"),
    Role.BUYER: _l("Buyer"),
    Role.FINANCIER: _l("Financier"),
    Role.AUDITOR: _l("Auditor"),
    Role.OPERATOR: _l("Operator"),
}
# The ledger writes these pages show, by the contract function they call.
LEDGER_WRITE_LABELS: dict[str, LazyString] = {
    "onboard": _l("Onboarding"),
    "suspend": _l("Suspension"),
    "reinstate": _l("Reinstatement"),
    "mint": _l("Mint"),
    "burn": _l("Burn"),
}
TOKEN_OPERATION_KIND_LABELS: dict[TokenOperationKind, LazyString] = {
    TokenOperationKind.MINT: _l("Mint"),
    TokenOperationKind.BURN: _l("Burn"),
}
TOKEN_OPERATION_STATUS_LABELS: dict[TokenOperationStatus, LazyString] = {
    TokenOperationStatus.PENDING: _l("Awaiting the ledger"),
    TokenOperationStatus.DONE: _l("Done"),
    TokenOperationStatus.FAILED: _l("Failed"),
}
# The parts of the stack the health reading judges (monitoring.PARTS), as the page names them.
HEALTH_PART_LABELS: dict[str, LazyString] = {
    "database": _l("Database"),
    "chain": _l("Chain"),
    "queue": _l("Task queue (Redis)"),
    "worker": _l("Workers"),
}
# An outbox row in one of these has not reached the ledger yet.
UNDER_WAY = (ChainTransactionStatus.QUEUED, ChainTransactionStatus.SIGNED, ChainTransactionStatus.SENT)


def role_labels_of(roles: Role) -> list[LazyString]:
    """The names of `roles` (a combination), in bit order."""
    return [label for role, label in ROLE_LABELS.items() if role & roles]


# ---------------------------------------------------------------- forms


def chosen_id(value: str | int | None) -> int | None:
    """A select's value as a row id; None for its "choose one" option (value "")."""
    if value is None or value == "":
        return None
    return int(value)


class OrganisationForm(FlaskForm):
    """A new participant (organisations.create_organisation): its KYC review starts pending."""

    name = StringField(_l("Organisation name"), validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])
    legal_identifier = StringField(_l("Legal identifier (scheme:value, or an LEI)"),
                                   validators=[DataRequired(), Length(max=MAX_LEGAL_IDENTIFIER_LENGTH)])
    roles = CheckboxesField(_l("Roles"), coerce=int, validators=[at_least_one],
                            choices=[SelectChoice(int(role), ROLE_LABELS[role]) for role in Role if role & LEDGER_ROLES])

    def chosen_roles(self) -> Role:
        return functools.reduce(operators.or_, (Role(bit) for bit in self.roles.data), Role(0))


class KycDecisionForm(FlaskForm):
    """One organisation's KYC decision; each organisation's form has its own prefix. An approval
    names the documents checked (the service refuses one that names none)."""

    documents_checked = CheckboxesField(_l("Documents checked"), choices=[
        SelectChoice(str(document), label) for document, label in KYC_DOCUMENT_LABELS.items()])

    note = TextAreaField(_l("Note (kept in the audit log)"), validators=[Optional(), Length(max=MAX_NOTE_LENGTH)],
                         render_kw={"rows": 2})
    approve = SubmitField(_l("Approve"))
    reject = SubmitField(_l("Reject"))


class SuspensionForm(FlaskForm):
    reason = TextAreaField(_l("Reason (kept here; the ledger gets its SHA-256)"),
                           validators=[DataRequired(), Length(max=MAX_NOTE_LENGTH)], render_kw={"rows": 3})


class ConfirmationForm(FlaskForm):
    """A confirmation page's button: the CSRF token is its content."""


class ParticipantFilterForm(FlaskForm):
    """The participants' list: a GET form, so it has no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    name = StringField(_l("Name contains"), validators=[Optional(), Length(max=MAX_NAME_LENGTH)])


class TokenOperationForm(FlaskForm):
    """What a mint and a burn both name; the page carries one of each, told apart by their
    prefixes."""

    # Its choices are the active participants on the ledger (set by the view).
    organisation = SelectField(_l("Participant"), coerce=chosen_id, validators=[DataRequired()])
    # A decimal amount of the settlement currency ("1250.50"); the service reads it exactly.
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=40)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})


class MintForm(TokenOperationForm):
    reference = StringField(_l("Deposit reference (the bank transfer's id)"),
                            validators=[DataRequired(), Length(max=MAX_REFERENCE_LENGTH)],
                            render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Mint"))


class BurnForm(TokenOperationForm):
    reference = StringField(_l("Withdrawal reference (the bank transfer's id)"),
                            validators=[DataRequired(), Length(max=MAX_REFERENCE_LENGTH)],
                            render_kw={"autocomplete": "off"})
    submit = SubmitField(_l("Burn"))


# ---------------------------------------------------------------- onboarding


@blp.route("/operator/onboarding")
@login_required
def onboarding() -> ResponseReturnValue:
    """Organisations awaiting their KYC review, oldest first, each with its decision form."""
    return render_onboarding()


def render_onboarding(decided: tuple[int, KycDecisionForm] | None = None, status: int = 200) -> ResponseReturnValue:
    """The onboarding queue; `decided`: an organisation's submitted form, shown with its errors."""
    require_role(Role.OPERATOR)
    statement = organisations.organisation_directory(current_actor(), kyc_status=KycStatus.PENDING)
    page = db.paginate(statement.order_by(Organisation.created_at, Organisation.id), page=page_number(),
                       per_page=PAGE_SIZE, error_out=False)
    forms = {organisation.id: KycDecisionForm(formdata=None, prefix=kyc_prefix(organisation.id))
             for organisation in page.items}
    if decided is not None:
        forms[decided[0]] = decided[1]
    return render_template("portal/operator_onboarding.html", page=page, forms=forms,
                           roles_of=role_labels_of), status


def kyc_prefix(organisation_id: int) -> str:
    return f"organisation-{organisation_id}"


@blp.route(f"/operator/onboarding/<{ROW_ID}:organisation_id>/kyc", methods=["POST"])
@login_required
def decide_kyc(organisation_id: int) -> ResponseReturnValue:
    """Approves (queuing the organisation's onboarding on the ledger) or rejects its KYC review."""
    require_role(Role.OPERATOR)
    actor = current_actor()
    organisation = organisations.get_organisation(actor, organisation_id)
    form = KycDecisionForm(prefix=kyc_prefix(organisation_id))
    if form.validate_on_submit():
        if not (form.approve.data or form.reject.data):
            abort(400)
        try:
            organisations.decide_kyc(actor, organisation, approve=form.approve.data, note=form.note.data,
                                     documents_checked=form.documents_checked.data or [])
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            if form.approve.data:
                flash(_("%(name)s is approved; its onboarding is on its way to the ledger.", name=organisation.name),
                      "success")
            else:
                flash(_("%(name)s is rejected.", name=organisation.name), "success")
            return redirect(url_for("operator_pages.onboarding"))
    return render_onboarding((organisation_id, form), status=400)


@blp.route("/operator/organisations/new", methods=["GET", "POST"])
@login_required
def new_organisation() -> ResponseReturnValue:
    """Registers an organisation, with its ledger signing key; its KYC review starts pending."""
    require_role(Role.OPERATOR)
    form = OrganisationForm()
    status = 200
    if form.validate_on_submit():
        try:
            organisation = organisations.create_organisation(
                current_actor(), name=form.name.data, legal_identifier=form.legal_identifier.data,
                roles=form.chosen_roles(), master_secret=load_master_secret(Path(current_app.instance_path)))
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        except Duplicate as refusal:
            form.legal_identifier.errors = [*form.legal_identifier.errors, refusal.detail]
        else:
            flash(_("%(name)s is registered and awaits its KYC review.", name=organisation.name), "success")
            return redirect(url_for("operator_pages.onboarding"))
    if form.is_submitted():
        status = 400
    return render_template("portal/operator_new_organisation.html", form=form), status


# ---------------------------------------------------------------- participants


@blp.route("/operator/participants")
@login_required
def participants() -> ResponseReturnValue:
    """Every organisation by name: roles, KYC, suspension, and how it stands on the ledger."""
    require_role(Role.OPERATOR)
    actor = current_actor()
    form = ParticipantFilterForm(formdata=request.args)
    valid = form.validate()
    statement = organisations.organisation_directory(actor, name=form.name.data if valid else None)
    page = db.paginate(statement.order_by(Organisation.name, Organisation.id), page=page_number(), per_page=PAGE_SIZE,
                       error_out=False)
    return render_template("portal/operator_participants.html", form=form, page=page, roles_of=role_labels_of,
                           writes=ledger_writes(organisations.SUBJECT, (org.id for org in page.items)),
                           write_labels=LEDGER_WRITE_LABELS, transaction_status_labels=TRANSACTION_STATUS_LABELS,
                           under_way=UNDER_WAY, filters={"name": form.name.data} if valid and form.name.data else {})


def ledger_writes(subject_type: str, subject_ids: Iterable[int]) -> dict[int, list[ChainTransaction]]:
    """The outbox rows about these subjects (organisations, token operations), oldest first, by
    subject id: one query for a page of them."""
    ids = list(subject_ids)
    if not ids:
        return {}
    statement = (transactions.transactions(current_actor(), subject_type=subject_type)
                 .where(ChainTransaction.subject_id.in_(ids)).order_by(ChainTransaction.id))
    writes: dict[int, list[ChainTransaction]] = defaultdict(list)
    for row in db.session.scalars(statement):
        writes[row.subject_id].append(row)
    return writes


@blp.route(f"/operator/participants/<{ROW_ID}:organisation_id>/suspension", methods=["GET", "POST"])
@login_required
def suspend_participant(organisation_id: int) -> ResponseReturnValue:
    """Asks for a reason and a confirmation, then suspends: at once here, on the ledger once
    its suspension is mined."""
    require_role(Role.OPERATOR)
    actor = current_actor()
    organisation = organisations.get_organisation(actor, organisation_id)
    form = SuspensionForm()
    status = 200
    if form.validate_on_submit():
        try:
            organisations.suspend(actor, organisation, reason=form.reason.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            flash(_("%(name)s is suspended; the suspension is on its way to the ledger.", name=organisation.name),
                  "success")
            return redirect(url_for("operator_pages.participants"))
    if form.is_submitted():
        status = 400
    return render_template("portal/operator_suspend.html", organisation=organisation, form=form), status


@blp.route(f"/operator/participants/<{ROW_ID}:organisation_id>/reinstatement", methods=["GET", "POST"])
@login_required
def reinstate_participant(organisation_id: int) -> ResponseReturnValue:
    """Asks for a confirmation, then lifts the suspension: at once here, on the ledger once its
    reinstatement is mined."""
    require_role(Role.OPERATOR)
    actor = current_actor()
    organisation = organisations.get_organisation(actor, organisation_id)
    form = ConfirmationForm()
    if form.validate_on_submit():
        organisations.reinstate(actor, organisation)
        flash(_("%(name)s is reinstated; the reinstatement is on its way to the ledger.", name=organisation.name),
              "success")
        return redirect(url_for("operator_pages.participants"))
    status = 400 if form.is_submitted() else 200
    return render_template("portal/operator_reinstate.html", organisation=organisation, form=form), status


# ---------------------------------------------------------------- the settlement token


@blp.route("/operator/tokens", methods=["GET", "POST"])
@login_required
def settlement_token() -> ResponseReturnValue:
    """Mints against deposits and burns against withdrawals; the operations, newest first, with
    their ledger writes; and each participant's balance as indexed."""
    require_role(Role.OPERATOR)
    actor = current_actor()
    mint_form, burn_form = MintForm(prefix="mint"), BurnForm(prefix="burn")
    recipients = [SelectChoice(organisation.id, f"{organisation.name} ({organisation.legal_identifier})")
                  for organisation in db.session.scalars(
                      organisations.organisation_directory(actor, role=LEDGER_ROLES, kyc_status=KycStatus.APPROVED,
                                                           suspended=False)
                      .where(Organisation.participant_id.is_not(None)).order_by(Organisation.name))]
    for form in (mint_form, burn_form):
        form.organisation.choices = [SelectChoice("", _("Choose a participant")), *recipients]
    status = 200
    submitted: MintForm | BurnForm | None = next((form for form in (mint_form, burn_form) if form.submit.data), None)
    if submitted is not None:
        if submitted.validate_on_submit() and queue_token_operation(submitted):
            return redirect(url_for("operator_pages.settlement_token"))
        status = 400
    elif request.method == "POST":
        status = 400
    page = db.paginate(tokens.token_operations(actor).order_by(TokenOperation.created_at.desc(),
                                                                TokenOperation.id.desc()),
                       page=page_number(), per_page=PAGE_SIZE, error_out=False)
    return render_template(
        "portal/operator_tokens.html", mint_form=mint_form, burn_form=burn_form, page=page,
        writes=ledger_writes(tokens.SUBJECT, (operation.id for operation in page.items)),
        balances=tokens.balances(actor), currency=settlement_currency(),
        kind_labels=TOKEN_OPERATION_KIND_LABELS, operation_status_labels=TOKEN_OPERATION_STATUS_LABELS,
        transaction_status_labels=TRANSACTION_STATUS_LABELS), status


def queue_token_operation(form: MintForm | BurnForm) -> bool:
    """Mints or burns what the form says (tokens.mint, tokens.burn); False with the refusal
    shown on the form's fields (a reused reference, an amount the currency cannot hold, a
    participant the ledger would refuse)."""
    actor = current_actor()
    operate = tokens.mint if isinstance(form, MintForm) else tokens.burn
    try:
        organisation = organisations.get_organisation(actor, form.organisation.data)
        operation = operate(actor, organisation,
                            amount_minor=tokens.settlement_amount(form.amount.data.strip(), settlement_currency()),
                            reference=form.reference.data)
    except InvalidInput as refusal:
        show_service_errors(form, refusal)
    except Duplicate as refusal:
        form.reference.errors = [*form.reference.errors, refusal.detail]
    except InvalidState as refusal:
        form.organisation.errors = [*form.organisation.errors, refusal.detail]
    else:
        amount = format_amount(operation.amount_minor, settlement_currency())
        if operation.kind == TokenOperationKind.MINT:
            flash(_("Minting %(amount)s for %(name)s is on its way to the ledger.", amount=amount,
                    name=organisation.name), "success")
        else:
            flash(_("Burning %(amount)s of %(name)s is on its way to the ledger.", amount=amount,
                    name=organisation.name), "success")
        return True
    return False


# ---------------------------------------------------------------- health


@blp.route("/operator/health")
@login_required
def system_health() -> ResponseReturnValue:
    """The stack's health now: monitoring.collect, the reading behind GET /api/v1/health (each
    part that cannot be read within its probe's timeout is marked unavailable)."""
    require_role(Role.OPERATOR)
    reading = monitoring.collect(current_app._get_current_object())  # type: ignore[attr-defined]
    return render_template("portal/operator_health.html", reading=reading, parts=monitoring.PARTS,
                           part_labels=HEALTH_PART_LABELS, transaction_status_labels=TRANSACTION_STATUS_LABELS,
                           outbox_states=list(ChainTransactionStatus))
