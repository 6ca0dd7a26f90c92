"""The authorisation table: which roles may do what, to objects they stand in which relation to.

Every service calls `authorize(actor, action, subject)` before it changes or returns anything,
and every list is filtered by the `visible_*` clauses; nothing else decides who may do what.
Order of the checks, and why:
1. A suspended organisation, or one whose KYC is not approved, can do nothing at all.
2. An object the actor may not see is `NotFound`, never `PermissionDenied`: the answer must not
   tell a stranger that it exists (the API answers 404).
3. The actor's roles must include one of the action's roles.
4. A read-only API key may not write.
5. The actor must stand in the action's relation to the object (its buyer, its holder, ...).
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, exists, or_, select, true

from backend.extensions import db
from backend.models import (
    ApiKey,
    ChainTransaction,
    EarlyPaymentOffer,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    KycStatus,
    Offer,
    Organisation,
    Repayment,
    Role,
    ScreeningHit,
    TokenOperation,
    WebhookEndpoint,
)
from backend.security.api_keys import Scope
from backend.services.actors import Actor
from backend.services.errors import NotFound, OrganisationInactive, PermissionDenied

# Who may hold a receivable (the ledger's Roles.HOLDER).
HOLDER_ROLES = Role.SUPPLIER | Role.FINANCIER
# Who reads everything: the auditor, and the operator's staff who run the platform.
READ_ALL_ROLES = Role.AUDITOR | Role.OPERATOR
ALL_ROLES = Role.SUPPLIER | Role.BUYER | Role.FINANCIER | Role.AUDITOR | Role.OPERATOR
# Who registers webhook endpoints.
WEBHOOK_ROLES = Role.FINANCIER | Role.BUYER

M = TypeVar("M")


class Action(enum.StrEnum):
    REGISTER_INVOICE = "invoice.register"
    CANCEL_INVOICE = "invoice.cancel"
    CONFIRM_PAYABLE = "invoice.confirm"
    DISPUTE_PAYABLE = "invoice.dispute"
    SPLIT_RECEIVABLE = "invoice.split"
    TRANSFER_RECEIVABLE = "invoice.transfer"
    REPAY = "invoice.repay"
    MARK_OVERDUE = "invoice.mark_overdue"
    MARK_DEFAULTED = "invoice.mark_defaulted"
    VIEW_INVOICE = "invoice.view"
    REQUEST_FINANCING = "financing.request"
    CANCEL_FINANCING_REQUEST = "financing.cancel"
    FUND_REQUEST = "financing.fund"
    VIEW_FINANCING_REQUEST = "financing.view"
    MAKE_OFFER = "offer.make"
    WITHDRAW_OFFER = "offer.withdraw"
    ACCEPT_OFFER = "offer.accept"
    VIEW_OFFER = "offer.view"
    OFFER_EARLY_PAYMENT = "early_payment.offer"
    WITHDRAW_EARLY_PAYMENT = "early_payment.withdraw"
    ACCEPT_EARLY_PAYMENT = "early_payment.accept"
    VIEW_EARLY_PAYMENT = "early_payment.view"
    VIEW_FINANCEABLE = "financing.view_financeable"
    VIEW_PORTFOLIO = "portfolio.view"
    VIEW_RISK_PROFILE = "risk.view_profile"
    MANAGE_EXPOSURE_LIMITS = "exposure_limit.manage"
    VIEW_EXPOSURE_LIMITS = "exposure_limit.view"
    VIEW_FRAUD_FLAGS = "fraud.view_flags"
    VIEW_REPORTS = "report.view"
    MANAGE_WATCH_LISTS = "watch_list.manage"
    VIEW_SCREENING_HITS = "screening.view"
    RESOLVE_SCREENING_HIT = "screening.resolve"
    VIEW_AML_ALERTS = "aml.view_alerts"
    REVIEW_AML_ALERT = "aml.review_alert"
    VIEW_REPAYMENT = "repayment.view"
    VIEW_ORGANISATION = "organisation.view"
    CREATE_ORGANISATION = "organisation.create"
    DECIDE_KYC = "organisation.decide_kyc"
    SUSPEND_ORGANISATION = "organisation.suspend"
    REINSTATE_ORGANISATION = "organisation.reinstate"
    CREATE_USER = "user.create"
    RESET_PASSWORD = "user.reset_password"
    MINT_TOKENS = "token.mint"
    BURN_TOKENS = "token.burn"
    VIEW_TOKEN_OPERATION = "token.view"
    MANAGE_API_KEYS = "api_key.manage"
    VIEW_API_KEYS = "api_key.view"
    READ_AUDIT_LOG = "audit.read"
    EXPLORE_LEDGER = "ledger.explore"
    VIEW_TRANSACTION = "transaction.view"
    MANAGE_WEBHOOKS = "webhook.manage"
    VIEW_WEBHOOKS = "webhook.view"


class Relation(enum.StrEnum):
    """How the actor must stand to the action's object."""

    ANY = "any"  # no object, or any object it can see
    SUPPLIER = "supplier"  # the invoice's issuer
    BUYER = "buyer"  # the invoice's buyer
    HOLDER = "holder"  # the receivable's current holder
    SELLER = "seller"  # who asked for the financing (of a request, or of an offer's request)
    FINANCIER = "financier"  # who made the offer
    OWN_ORGANISATION = "own-organisation"  # the actor's own organisation (or its API key)


@dataclass(frozen=True)
class Rule:
    roles: Role
    relation: Relation
    writes: bool


RULES: dict[Action, Rule] = {
    Action.REGISTER_INVOICE: Rule(Role.SUPPLIER, Relation.ANY, writes=True),
    Action.CANCEL_INVOICE: Rule(Role.SUPPLIER, Relation.SUPPLIER, writes=True),
    Action.CONFIRM_PAYABLE: Rule(Role.BUYER, Relation.BUYER, writes=True),
    Action.DISPUTE_PAYABLE: Rule(Role.BUYER, Relation.BUYER, writes=True),
    Action.SPLIT_RECEIVABLE: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.TRANSFER_RECEIVABLE: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.REPAY: Rule(Role.BUYER, Relation.BUYER, writes=True),
    Action.MARK_OVERDUE: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.MARK_DEFAULTED: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.VIEW_INVOICE: Rule(ALL_ROLES, Relation.ANY, writes=False),
    Action.REQUEST_FINANCING: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.CANCEL_FINANCING_REQUEST: Rule(HOLDER_ROLES, Relation.SELLER, writes=True),
    Action.FUND_REQUEST: Rule(Role.FINANCIER, Relation.ANY, writes=True),
    Action.VIEW_FINANCING_REQUEST: Rule(ALL_ROLES, Relation.ANY, writes=False),
    Action.MAKE_OFFER: Rule(Role.FINANCIER, Relation.ANY, writes=True),
    Action.WITHDRAW_OFFER: Rule(Role.FINANCIER, Relation.FINANCIER, writes=True),
    Action.ACCEPT_OFFER: Rule(HOLDER_ROLES, Relation.SELLER, writes=True),
    Action.VIEW_OFFER: Rule(ALL_ROLES, Relation.ANY, writes=False),
    # Early payment (early_payment.py): the buyer offers to pay its payable early at a discount,
    # the holder accepts; both are judged against the invoice.
    Action.OFFER_EARLY_PAYMENT: Rule(Role.BUYER, Relation.BUYER, writes=True),
    Action.WITHDRAW_EARLY_PAYMENT: Rule(Role.BUYER, Relation.BUYER, writes=True),
    Action.ACCEPT_EARLY_PAYMENT: Rule(HOLDER_ROLES, Relation.HOLDER, writes=True),
    Action.VIEW_EARLY_PAYMENT: Rule(ALL_ROLES, Relation.ANY, writes=False),
    # The market of open requests, and what a financier holds: for financiers only.
    Action.VIEW_FINANCEABLE: Rule(Role.FINANCIER, Relation.ANY, writes=False),
    Action.VIEW_PORTFOLIO: Rule(Role.FINANCIER, Relation.ANY, writes=False),
    # Financiers read every profile, any other organisation its own (risk.risk_profiles).
    Action.VIEW_RISK_PROFILE: Rule(ALL_ROLES, Relation.ANY, writes=False),
    # A financier's own limits on what it puts at stake per buyer and per supplier (exposure.py).
    Action.MANAGE_EXPOSURE_LIMITS: Rule(Role.FINANCIER, Relation.ANY, writes=True),
    Action.VIEW_EXPOSURE_LIMITS: Rule(Role.FINANCIER, Relation.ANY, writes=False),
    # Every fraud signal, with the evidence naming everyone's invoices (fraud.fraud_flags); a
    # financier sees those on an invoice it may see (fraud.flags_on_invoice).
    Action.VIEW_FRAUD_FLAGS: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    # The platform-wide financing report, for monitoring and the regulator (reports.py).
    Action.VIEW_REPORTS: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    # Sanctions and watch lists, and the hits they raise (screening.py): the operator loads and
    # resolves, the auditor reads.
    Action.MANAGE_WATCH_LISTS: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.VIEW_SCREENING_HITS: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    Action.RESOLVE_SCREENING_HIT: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    # Alerts on settlement-token movements (aml.py): the operator reviews, the auditor reads.
    Action.VIEW_AML_ALERTS: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    Action.REVIEW_AML_ALERT: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.VIEW_REPAYMENT: Rule(ALL_ROLES, Relation.ANY, writes=False),
    Action.VIEW_ORGANISATION: Rule(ALL_ROLES, Relation.ANY, writes=False),
    Action.CREATE_ORGANISATION: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.DECIDE_KYC: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.SUSPEND_ORGANISATION: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.REINSTATE_ORGANISATION: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.CREATE_USER: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    # The operator's staff set a temporary password for a user of any organisation who lost theirs.
    Action.RESET_PASSWORD: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.MINT_TOKENS: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    Action.BURN_TOKENS: Rule(Role.OPERATOR, Relation.ANY, writes=True),
    # Participants see the mints and burns for their own account (visible_token_operations).
    Action.VIEW_TOKEN_OPERATION: Rule(ALL_ROLES, Relation.ANY, writes=False),
    # Every active organisation manages its own machine clients' keys (auditors' are read-only).
    Action.MANAGE_API_KEYS: Rule(ALL_ROLES, Relation.OWN_ORGANISATION, writes=True),
    Action.VIEW_API_KEYS: Rule(ALL_ROLES, Relation.OWN_ORGANISATION, writes=False),
    Action.READ_AUDIT_LOG: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    # The ledger explorer: every receivable's events, lineage and document check, and the exports.
    Action.EXPLORE_LEDGER: Rule(READ_ALL_ROLES, Relation.ANY, writes=False),
    # The ledger writes an organisation's key signed (visible_transactions).
    Action.VIEW_TRANSACTION: Rule(ALL_ROLES, Relation.ANY, writes=False),
    # Financiers and buyers subscribe to the ledger's events; the readers of everything see
    # every endpoint (visible_webhook_endpoints), never a secret.
    Action.MANAGE_WEBHOOKS: Rule(WEBHOOK_ROLES, Relation.OWN_ORGANISATION, writes=True),
    Action.VIEW_WEBHOOKS: Rule(WEBHOOK_ROLES | READ_ALL_ROLES, Relation.ANY, writes=False),
}


# ---------------------------------------------------------------- visibility (lists and lookups)


def reads_everything(actor: Actor) -> bool:
    return actor.has_any(READ_ALL_ROLES)


def visible_invoices(actor: Actor) -> ColumnElement[bool]:
    """Invoices the actor may see: a supplier its own and those it holds, a buyer the payables
    addressed to it, a financier those it holds and those open for financing."""
    if reads_everything(actor):
        return true()
    org_id = actor.organisation.id
    clauses: list[ColumnElement[bool]] = [
        Invoice.supplier_id == org_id,
        Invoice.buyer_id == org_id,
        Invoice.holder_id == org_id,
    ]
    if actor.has_any(Role.FINANCIER):
        clauses.append(
            exists().where(
                FinancingRequest.invoice_id == Invoice.id, FinancingRequest.status == FinancingRequestStatus.OPEN
            )
        )
    return or_(*clauses)


def visible_offers(actor: Actor) -> ColumnElement[bool]:
    """Offers the actor may see: a financier only its own, a seller those on its requests."""
    if reads_everything(actor):
        return true()
    org_id = actor.organisation.id
    return or_(
        Offer.financier_id == org_id,
        exists().where(FinancingRequest.id == Offer.financing_request_id, FinancingRequest.seller_id == org_id),
    )


def visible_token_operations(actor: Actor) -> ColumnElement[bool]:
    """Token operations the actor may see: a participant those for its own account."""
    if reads_everything(actor):
        return true()
    return TokenOperation.organisation_id == actor.organisation.id


def visible_webhook_endpoints(actor: Actor) -> ColumnElement[bool]:
    """Webhook endpoints the actor may see: its own organisation's; the readers of everything
    see every one."""
    if reads_everything(actor):
        return true()
    return WebhookEndpoint.organisation_id == actor.organisation.id


def visible_transactions(actor: Actor) -> ColumnElement[bool]:
    """Outbox rows (ledger writes) the actor may see: those its organisation's key signs; the
    readers of everything see every one, the operator's own included."""
    if reads_everything(actor):
        return true()
    return ChainTransaction.signer_id == actor.organisation.id


def can_see(actor: Actor, subject: Any) -> bool:
    """The same rules as the `visible_*` clauses, for one object (asked of the database, so the
    two can never disagree)."""
    if isinstance(subject, Invoice):
        return _matches(Invoice, subject.id, visible_invoices(actor))
    if isinstance(subject, FinancingRequest | Repayment | EarlyPaymentOffer):
        return can_see(actor, subject.invoice)
    if isinstance(subject, Offer):
        return _matches(Offer, subject.id, visible_offers(actor))
    if isinstance(subject, Organisation):
        return True  # the participant directory is open to every active participant
    if isinstance(subject, ApiKey):
        return subject.organisation_id == actor.organisation.id
    if isinstance(subject, TokenOperation):
        return _matches(TokenOperation, subject.id, visible_token_operations(actor))
    if isinstance(subject, ChainTransaction):
        return _matches(ChainTransaction, subject.id, visible_transactions(actor))
    if isinstance(subject, WebhookEndpoint):
        return _matches(WebhookEndpoint, subject.id, visible_webhook_endpoints(actor))
    if isinstance(subject, ScreeningHit):
        return reads_everything(actor)  # they name organisations on sanctions lists
    raise TypeError(f"no visibility rule for {type(subject).__name__}")


def _matches(model: Any, object_id: int, clause: ColumnElement[bool]) -> bool:
    return db.session.scalar(select(exists().where(model.id == object_id, clause))) is True


# ---------------------------------------------------------------- relations


def _seller_id(subject: Any) -> int | None:
    if isinstance(subject, FinancingRequest):
        return subject.seller_id
    if isinstance(subject, Offer):
        return subject.financing_request.seller_id
    return None


RELATIONS: dict[Relation, Callable[[Actor, Any], bool]] = {
    Relation.ANY: lambda actor, subject: True,
    Relation.SUPPLIER: lambda actor, subject: isinstance(subject, Invoice)
    and subject.supplier_id == actor.organisation.id,
    Relation.BUYER: lambda actor, subject: isinstance(subject, Invoice) and subject.buyer_id == actor.organisation.id,
    Relation.HOLDER: lambda actor, subject: isinstance(subject, Invoice) and subject.holder_id == actor.organisation.id,
    Relation.SELLER: lambda actor, subject: _seller_id(subject) == actor.organisation.id,
    Relation.FINANCIER: lambda actor, subject: isinstance(subject, Offer)
    and subject.financier_id == actor.organisation.id,
    Relation.OWN_ORGANISATION: lambda actor, subject: (
        subject.id if isinstance(subject, Organisation) else getattr(subject, "organisation_id", None)
    )
    == actor.organisation.id,
}


# ---------------------------------------------------------------- the check


def require_active(organisation: Organisation) -> None:
    """A suspended organisation, or one not (yet) through KYC, can do nothing."""
    if organisation.suspended:
        raise OrganisationInactive(f"{organisation.name} is suspended")
    if organisation.kyc_status != KycStatus.APPROVED:
        raise OrganisationInactive(f"{organisation.name} has not been approved (KYC {organisation.kyc_status})")


def authorize(actor: Actor, action: Action, subject: Any = None) -> None:
    """Raises unless `actor` may do `action` (to `subject`, when the action has one)."""
    require_active(actor.organisation)
    rule = RULES[action]
    if subject is not None and not can_see(actor, subject):
        raise NotFound(f"no such {_kind(subject)}")
    if not actor.has_any(rule.roles):
        raise PermissionDenied(f"{action} needs the role {_role_names(rule.roles)}")
    if rule.writes and actor.api_key is not None and Scope.WRITE not in actor.api_key.scopes:
        raise PermissionDenied("this API key may only read")
    if subject is not None and not RELATIONS[rule.relation](actor, subject):
        raise PermissionDenied(f"only the {rule.relation} may {action} this {_kind(subject)}")


def get_authorized(actor: Actor, action: Action, model: type[M], object_id: int) -> M:
    """The `model` row with id `object_id`, once `actor` may do `action` to it; NotFound when
    there is none, exactly as when there is one the actor may not see."""
    subject = db.session.get(model, object_id)
    if subject is None:
        require_active(actor.organisation)  # an inactive organisation learns nothing, not even this
        raise NotFound(f"no such {_kind(model)}")
    authorize(actor, action, subject)
    return subject


def _kind(subject: Any) -> str:
    name = subject.__name__ if isinstance(subject, type) else type(subject).__name__
    return {"FinancingRequest": "financing request", "ApiKey": "API key", "TokenOperation": "token operation",
            "WebhookEndpoint": "webhook endpoint", "ChainTransaction": "transaction"}.get(name, name.lower())


def _role_names(roles: Role) -> str:
    return " or ".join(role.name.lower() for role in Role if role & roles)
