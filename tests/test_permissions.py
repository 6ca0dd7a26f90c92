"""The authorisation table (backend/services/permissions.py), exhaustively.

For every action in RULES, every role alone, every way of standing to an object (its supplier,
buyer, holder, seller, financier, the own organisation, or none of them), and for read-only API
keys and suspended or unapproved organisations, `authorize` must answer what the table says.
The expected answer is worked out here from the rule and from how each object was built (who
may see it, in what relation the actor stands to it), never by asking the code under test, so a
new Action is covered as soon as it is in RULES. Spot checks of the rules' sentences follow.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    FinancingRequestStatus,
    Invoice,
    KycStatus,
    Offer,
    Organisation,
    Repayment,
    Role,
    TokenOperation,
    TokenOperationKind,
    WebhookEndpoint,
)
from backend.services.actors import Actor
from backend.services.errors import NotFound, OrganisationInactive, PermissionDenied, ServiceError
from backend.services.permissions import RULES, Action, Relation, authorize, visible_invoices, visible_offers
from tests import domain_factories as factories

SINGLE_ROLES = [Role.SUPPLIER, Role.BUYER, Role.FINANCIER, Role.AUDITOR, Role.OPERATOR]
READ_ALL = Role.AUDITOR | Role.OPERATOR


@dataclass
class World:
    """The acting organisation `me` and the strangers around it."""

    me: Organisation
    supplier: Organisation
    buyer: Organisation
    financier: Organisation

    @classmethod
    def around(cls, me: Organisation) -> World:
        return cls(me, factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER),
                   factories.organisation(Role.FINANCIER))

    def strangers_invoice(self, **kwargs: Any) -> Invoice:
        return factories.invoice(self.supplier, self.buyer, **kwargs)


def _everyone(role: Role) -> bool:
    return True


def _readers_of_everything(role: Role) -> bool:
    return bool(role & READ_ALL)


def _financiers_and_readers(role: Role) -> bool:
    """Who sees an invoice open for financing: every financier, besides the readers of everything."""
    return bool(role & (READ_ALL | Role.FINANCIER))


def _nobody(role: Role) -> bool:
    return False


@dataclass(frozen=True)
class Scenario:
    """An object built around `me`, the relations `me` holds to it, and who may see it."""

    name: str
    build: Callable[[World], Any]
    relations: frozenset[Relation]
    visible_to: Callable[[Role], bool]


def scenario(name: str, build: Callable[[World], Any], relations: set[Relation],
             visible_to: Callable[[Role], bool] = _everyone) -> Scenario:
    return Scenario(name, build, frozenset(relations | {Relation.ANY}), visible_to)


def _open_request_held_by(holder: Organisation, w: World):
    return factories.financing_request(w.strangers_invoice(holder=holder))


def _token_operation(org: Organisation, w: World) -> TokenOperation:
    operation = TokenOperation(kind=TokenOperationKind.MINT, organisation=org, amount_minor=1,
                               reference="0x" + factories.secrets.token_hex(32), created_by=factories.user(w.supplier))
    db.session.add(operation)
    db.session.flush()
    return operation


def _repayment(invoice: Invoice) -> Repayment:
    repayment = Repayment(invoice=invoice, payer=invoice.buyer, amount_minor=1)
    db.session.add(repayment)
    db.session.flush()
    return repayment


def _transaction(signer: Organisation) -> ChainTransaction:
    row = ChainTransaction(intent_key=f"test:{factories.secrets.token_hex(8)}", signer=signer,
                           contract=ContractName.FINANCING, function="makeOffer", args=[])
    db.session.add(row)
    db.session.flush()
    return row


def _webhook_endpoint(org: Organisation) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(organisation=org, url="https://receiver.example.com/", event_types=["invoice.due"],
                               secret="0" * 64)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


SCENARIOS = [
    scenario("no object", lambda w: None, set()),
    scenario("an invoice it issued and holds", lambda w: factories.invoice(w.me, w.buyer),
             {Relation.SUPPLIER, Relation.HOLDER}),
    scenario("an invoice it issued and sold", lambda w: factories.invoice(w.me, w.buyer, holder=w.financier),
             {Relation.SUPPLIER}),
    scenario("a payable addressed to it", lambda w: factories.invoice(w.supplier, w.me), {Relation.BUYER}),
    scenario("a receivable it bought", lambda w: w.strangers_invoice(holder=w.me), {Relation.HOLDER}),
    scenario("strangers' invoice", lambda w: w.strangers_invoice(), set(), _readers_of_everything),
    scenario("strangers' invoice open for financing",
             lambda w: factories.financing_request(w.strangers_invoice()).invoice, set(), _financiers_and_readers),
    scenario("its own financing request", lambda w: _open_request_held_by(w.me, w), {Relation.SELLER}),
    scenario("strangers' open financing request", lambda w: _open_request_held_by(w.supplier, w), set(),
             _financiers_and_readers),
    scenario("strangers' funded financing request",
             lambda w: factories.financing_request(w.strangers_invoice(), status=FinancingRequestStatus.FUNDED),
             set(), _readers_of_everything),
    scenario("its own offer", lambda w: factories.offer(_open_request_held_by(w.supplier, w), w.me),
             {Relation.FINANCIER}),
    scenario("an offer on its request", lambda w: factories.offer(_open_request_held_by(w.me, w), w.financier),
             {Relation.SELLER}),
    scenario("another financier's offer to strangers",
             lambda w: factories.offer(_open_request_held_by(w.supplier, w), w.financier), set(),
             _readers_of_everything),
    scenario("a repayment of its payable", lambda w: _repayment(factories.invoice(w.supplier, w.me)), set()),
    scenario("strangers' repayment", lambda w: _repayment(w.strangers_invoice()), set(), _readers_of_everything),
    scenario("its own organisation", lambda w: w.me, {Relation.OWN_ORGANISATION}),
    scenario("another organisation", lambda w: w.supplier, set()),
    scenario("its own API key", lambda w: factories.actor(w.me, scopes=("read",)).api_key,
             {Relation.OWN_ORGANISATION}),
    # Keys are private to their organisation: not even the auditor sees another's.
    scenario("another organisation's API key", lambda w: factories.actor(w.supplier, scopes=("read",)).api_key,
             set(), _nobody),
    scenario("a token operation for its account", lambda w: _token_operation(w.me, w), {Relation.OWN_ORGANISATION}),
    scenario("a token operation for another", lambda w: _token_operation(w.supplier, w), set(),
             _readers_of_everything),
    scenario("a ledger write its key signs", lambda w: _transaction(w.me), set()),
    scenario("another organisation's ledger write", lambda w: _transaction(w.supplier), set(),
             _readers_of_everything),
    scenario("its own webhook endpoint", lambda w: _webhook_endpoint(w.me), {Relation.OWN_ORGANISATION}),
    scenario("another organisation's webhook endpoint", lambda w: _webhook_endpoint(w.supplier), set(),
             _readers_of_everything),
]


@dataclass(frozen=True)
class Standing:
    """How the actor's organisation stands and how it is signed in."""

    name: str
    kyc: KycStatus = KycStatus.APPROVED
    suspended: bool = False
    scopes: tuple[str, ...] | None = None  # None: a portal user

    @property
    def inactive(self) -> bool:
        return self.suspended or self.kyc != KycStatus.APPROVED

    @property
    def read_only(self) -> bool:
        return self.scopes is not None and "write" not in self.scopes


STANDINGS = [
    Standing("a user"),
    Standing("a read-write API key", scopes=("read", "write")),
    Standing("a read-only API key", scopes=("read",)),
    Standing("a suspended organisation", suspended=True),
    Standing("an organisation awaiting KYC", kyc=KycStatus.PENDING),
    Standing("a rejected organisation", kyc=KycStatus.REJECTED),
]


def expected(role: Role, standing: Standing, action: Action, case: Scenario) -> type[ServiceError] | None:
    """What the table says, in the order of permissions.py's docstring."""
    rule = RULES[action]
    if standing.inactive:
        return OrganisationInactive
    if not case.visible_to(role):
        return NotFound
    if not role & rule.roles:
        return PermissionDenied
    if rule.writes and standing.read_only:
        return PermissionDenied
    if rule.relation not in case.relations:
        return PermissionDenied
    return None


def outcome(actor: Actor, action: Action, subject: Any) -> type[ServiceError] | None:
    try:
        authorize(actor, action, subject)
    except ServiceError as exc:
        return type(exc)
    return None


def applies(action: Action, case: Scenario, subject: Any) -> bool:
    """An action whose rule names a relation is always asked about an object: without one, only
    roles and scope could be checked, and no service asks that."""
    return subject is not None or RULES[action].relation == Relation.ANY


@pytest.mark.parametrize("standing", STANDINGS, ids=lambda standing: standing.name)
@pytest.mark.parametrize("role", SINGLE_ROLES, ids=lambda role: role.name.lower())
def test_authorize_answers_what_the_table_says(db_session, role: Role, standing: Standing):
    me = factories.organisation(role, kyc=standing.kyc, suspended=standing.suspended)
    actor = factories.actor(me, scopes=standing.scopes)
    world = World.around(me)
    subjects = [(case, case.build(world)) for case in SCENARIOS]

    mismatches = [
        f"{action} on {case.name}: expected {_name(want)}, got {_name(got)}"
        for action in RULES
        for case, subject in subjects
        if applies(action, case, subject)
        and (want := expected(role, standing, action, case)) is not (got := outcome(actor, action, subject))
    ]

    assert not mismatches, "\n".join(mismatches)


def test_every_relation_is_tried_where_it_holds_and_where_it_does_not():
    for relation in Relation:
        assert any(relation in case.relations for case in SCENARIOS), relation
        assert any(relation not in case.relations for case in SCENARIOS) or relation == Relation.ANY, relation


def test_every_action_has_a_rule():
    assert set(RULES) == set(Action)


def _name(error: type[ServiceError] | None) -> str:
    return "allowed" if error is None else error.__name__


# ---------------------------------------------------------------- the rules' sentences


def test_a_financier_never_sees_another_financiers_offers(db_session):
    first, second = factories.organisation(Role.FINANCIER), factories.organisation(Role.FINANCIER)
    request = factories.financing_request(factories.invoice(factories.organisation(Role.SUPPLIER),
                                                            factories.organisation(Role.BUYER)))
    own, rivals = factories.offer(request, first), factories.offer(request, second)
    actor = factories.actor(first)

    assert db.session.scalars(select(Offer).where(visible_offers(actor))).all() == [own]
    for action in (Action.VIEW_OFFER, Action.WITHDRAW_OFFER):
        with pytest.raises(NotFound):
            authorize(actor, action, rivals)


def test_a_supplier_sees_only_its_own_invoices(db_session):
    supplier, other_supplier = factories.organisation(Role.SUPPLIER), factories.organisation(Role.SUPPLIER)
    buyer = factories.organisation(Role.BUYER)
    own = factories.invoice(supplier, buyer)
    others = factories.invoice(other_supplier, buyer)
    factories.financing_request(factories.invoice(other_supplier, buyer))  # open for financing: still not its own
    actor = factories.actor(supplier)

    assert db.session.scalars(select(Invoice).where(visible_invoices(actor))).all() == [own]
    with pytest.raises(NotFound):
        authorize(actor, Action.VIEW_INVOICE, others)


def test_a_buyer_sees_only_the_payables_addressed_to_it(db_session):
    buyer, other_buyer = factories.organisation(Role.BUYER), factories.organisation(Role.BUYER)
    supplier = factories.organisation(Role.SUPPLIER)
    payable = factories.invoice(supplier, buyer)
    others = factories.invoice(supplier, other_buyer)
    factories.financing_request(factories.invoice(supplier, other_buyer))
    actor = factories.actor(buyer)

    assert db.session.scalars(select(Invoice).where(visible_invoices(actor))).all() == [payable]
    for action in (Action.VIEW_INVOICE, Action.CONFIRM_PAYABLE, Action.REPAY):
        with pytest.raises(NotFound):
            authorize(actor, action, others)


def test_an_auditor_writes_nothing_but_its_own_read_keys(db_session):
    """Managing its API keys is the auditor's one write, and those keys may only read
    (test_account_services); everything else it may only read, and it reads everything."""
    assert [action for action, rule in RULES.items() if rule.writes and rule.roles & Role.AUDITOR] == [
        Action.MANAGE_API_KEYS]
    auditor = factories.actor(factories.organisation(Role.AUDITOR))
    invoice = factories.invoice(factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER))
    for action, rule in RULES.items():
        if rule.writes and action != Action.MANAGE_API_KEYS:
            with pytest.raises(PermissionDenied):
                authorize(auditor, action, None if rule.relation == Relation.ANY else invoice)
    authorize(auditor, Action.VIEW_INVOICE, invoice)
    authorize(auditor, Action.READ_AUDIT_LOG)


def test_a_suspended_organisation_can_do_nothing_whatever_its_roles(db_session):
    everything = Role.SUPPLIER | Role.BUYER | Role.FINANCIER | Role.AUDITOR | Role.OPERATOR
    org = factories.organisation(everything, suspended=True)
    actor = factories.actor(org)
    invoice = factories.invoice(org, factories.organisation(Role.BUYER))
    for action in RULES:
        for subject in (None, org, invoice):
            with pytest.raises(OrganisationInactive):
                authorize(actor, action, subject)
