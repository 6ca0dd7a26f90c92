"""ParticipantRegistry (deployed as part of Financing): onboarding, roles, suspension, the id
lookups every contract relies on, the platform-wide pause, and who may administer it."""
from __future__ import annotations

import pytest

from backend.chain.transactions import call
from tests.factories import (
    ANY_ROLE,
    AUDITOR,
    BUYER,
    DAY,
    DEFAULT_ADMIN_ROLE,
    FINANCIER,
    HOLDER,
    OPERATOR_ROLE,
    SUPPLIER,
    ZERO_ADDRESS,
    deploy,
    emitted,
    reverts,
)

pytestmark = pytest.mark.usefixtures("quick_gas_estimates")

ORG_REF = b"\x42" * 32
REASON = b"KYC-REVIEW".ljust(32, b"\x00")


def deploy_registry(ledger, administration):
    """Another participant registry, that is, another Financing (which is one), wired to the
    ledger's token and receivable registry."""
    return deploy(ledger, "Financing", ledger.registry.address, ledger.token.address, DAY, DAY, administration)


@pytest.fixture
def ledger(reused_ledger):
    """One Ledger for the module, rolled back after each test."""
    return reused_ledger


@pytest.fixture
def participants(ledger):
    return ledger.participants


def onboard(ledger, account, roles, ref=ORG_REF):
    return ledger.send(ledger.operator, ledger.participants.functions.onboard(account.address, roles, ref))


def record(participants, account):
    """participantOf as a dict."""
    return dict(zip(("id", "roles", "suspended"), participants.functions.participantOf(account.address).call()))


# ---------------------------------------------------------------------- onboarding


def test_onboard_gives_sequential_ids_and_records_the_participant(ledger, participants):
    first, second = ledger.new_account(), ledger.new_account()
    count = participants.functions.participantCount().call()

    receipt = onboard(ledger, first, SUPPLIER | BUYER)
    onboard(ledger, second, FINANCIER, ref=b"\x07" * 32)

    assert emitted(receipt, participants.events.ParticipantOnboarded) == [
        {"account": first.address, "id": count + 1, "roles": SUPPLIER | BUYER, "organisationRef": ORG_REF}
    ]
    assert record(participants, first) == {"id": count + 1, "roles": SUPPLIER | BUYER, "suspended": False}
    assert record(participants, second)["id"] == count + 2
    assert participants.functions.participantCount().call() == count + 2
    assert participants.functions.accountOf(count + 1).call() == first.address
    assert participants.functions.accountOf(count + 2).call() == second.address


def test_a_role_mask_is_satisfied_by_any_one_of_its_roles(ledger, participants):
    account = ledger.participant(SUPPLIER | FINANCIER)
    participant_id = record(participants, account)["id"]
    is_active = lambda mask: participants.functions.isActive(account.address, mask).call()  # noqa: E731
    active_id = lambda mask: participants.functions.activeId(account.address, mask).call()  # noqa: E731

    assert [is_active(mask) for mask in (ANY_ROLE, SUPPLIER, FINANCIER, HOLDER, SUPPLIER | BUYER)] == [True] * 5
    assert [is_active(mask) for mask in (BUYER, AUDITOR, BUYER | AUDITOR)] == [False] * 3
    assert active_id(HOLDER) == active_id(ANY_ROLE) == participant_id
    assert active_id(BUYER) == 0


@pytest.mark.parametrize("roles", [0, 16, 0x1F, 0xFF])
def test_onboard_refuses_roles_outside_the_four(ledger, participants, roles):
    account = ledger.new_account()
    with reverts("InvalidRoles") as error:
        onboard(ledger, account, roles)
    assert error["args"] == (roles,)
    assert record(participants, account)["id"] == 0


def test_onboard_refuses_the_zero_address(ledger, participants):
    with reverts("ZeroAddress"):
        ledger.send(ledger.operator, participants.functions.onboard(ZERO_ADDRESS, SUPPLIER, ORG_REF))


def test_onboard_refuses_an_account_twice_even_when_suspended(ledger, participants):
    account = ledger.participant(SUPPLIER)
    count = participants.functions.participantCount().call()
    with reverts("AlreadyOnboarded") as error:
        onboard(ledger, account, BUYER)
    assert error["args"] == (account.address.lower(),)

    ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))
    with reverts("AlreadyOnboarded"):
        onboard(ledger, account, BUYER)
    assert participants.functions.participantCount().call() == count
    assert record(participants, account)["roles"] == SUPPLIER


# ---------------------------------------------------------------------- roles


def test_set_roles_replaces_the_roles_and_keeps_the_id(ledger, participants):
    account = ledger.participant(SUPPLIER)
    before = record(participants, account)

    receipt = ledger.send(ledger.operator, participants.functions.setRoles(account.address, BUYER | AUDITOR))

    assert emitted(receipt, participants.events.ParticipantRolesChanged) == [
        {"account": account.address, "previousRoles": SUPPLIER, "roles": BUYER | AUDITOR}
    ]
    assert record(participants, account) == {**before, "roles": BUYER | AUDITOR}
    assert not participants.functions.isActive(account.address, SUPPLIER).call()
    assert participants.functions.activeId(account.address, BUYER).call() == before["id"]


def test_set_roles_refuses_invalid_roles_and_unknown_accounts(ledger, participants):
    account = ledger.participant(SUPPLIER)
    with reverts("InvalidRoles") as error:
        ledger.send(ledger.operator, participants.functions.setRoles(account.address, 0))
    assert error["args"] == (0,)
    stranger = ledger.new_account()
    with reverts("NotOnboarded") as error:
        ledger.send(ledger.operator, participants.functions.setRoles(stranger.address, BUYER))
    assert error["args"] == (stranger.address.lower(),)
    assert record(participants, account)["roles"] == SUPPLIER


# ---------------------------------------------------------------------- suspension


def test_suspend_deactivates_but_keeps_the_record(ledger, participants):
    account = ledger.participant(SUPPLIER)
    before = record(participants, account)

    receipt = ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))

    assert emitted(receipt, participants.events.ParticipantSuspended) == [{"account": account.address, "reasonCode": REASON}]
    assert record(participants, account) == {**before, "suspended": True}
    assert not participants.functions.isActive(account.address, ANY_ROLE).call()
    assert participants.functions.activeId(account.address, SUPPLIER).call() == 0
    assert participants.functions.accountOf(before["id"]).call() == account.address


def test_suspend_refuses_suspended_and_unknown_accounts(ledger, participants):
    account = ledger.participant(BUYER)
    ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))
    with reverts("AlreadySuspended") as error:
        ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))
    assert error["args"] == (account.address.lower(),)
    with reverts("NotOnboarded"):
        ledger.send(ledger.operator, participants.functions.suspend(ledger.new_account().address, REASON))


def test_reinstate_reactivates_with_the_same_id(ledger, participants):
    account = ledger.participant(FINANCIER)
    participant_id = record(participants, account)["id"]
    ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))

    receipt = ledger.send(ledger.operator, participants.functions.reinstate(account.address))

    assert emitted(receipt, participants.events.ParticipantReinstated) == [{"account": account.address}]
    assert record(participants, account)["suspended"] is False
    assert participants.functions.activeId(account.address, FINANCIER).call() == participant_id


def test_reinstate_refuses_active_and_unknown_accounts(ledger, participants):
    account = ledger.participant(FINANCIER)
    with reverts("NotSuspended") as error:
        ledger.send(ledger.operator, participants.functions.reinstate(account.address))
    assert error["args"] == (account.address.lower(),)
    with reverts("NotOnboarded"):
        ledger.send(ledger.operator, participants.functions.reinstate(ledger.new_account().address))


def test_changing_roles_of_a_suspended_participant_keeps_it_suspended(ledger, participants):
    account = ledger.participant(SUPPLIER)
    ledger.send(ledger.operator, participants.functions.suspend(account.address, REASON))
    ledger.send(ledger.operator, participants.functions.setRoles(account.address, BUYER))
    assert record(participants, account)["suspended"] is True
    assert participants.functions.activeId(account.address, BUYER).call() == 0


# ---------------------------------------------------------------------- lookups


def test_unknown_accounts_and_ids_read_as_nothing(ledger, participants):
    stranger = ledger.new_account()
    count = participants.functions.participantCount().call()
    assert participants.functions.isActive(stranger.address, ANY_ROLE).call() is False
    assert participants.functions.activeId(stranger.address, ANY_ROLE).call() == 0
    assert record(participants, stranger) == {"id": 0, "roles": 0, "suspended": False}
    assert participants.functions.accountOf(0).call() == ZERO_ADDRESS
    assert participants.functions.accountOf(count + 1).call() == ZERO_ADDRESS


def test_active_ids_answers_for_both_ends_with_their_own_masks(ledger, participants):
    supplier, buyer = ledger.participant(SUPPLIER), ledger.participant(BUYER)
    supplier_id, buyer_id = record(participants, supplier)["id"], record(participants, buyer)["id"]
    active_ids = lambda a, ma, b, mb: participants.functions.activeIds(a.address, ma, b.address, mb).call()  # noqa: E731

    assert active_ids(supplier, SUPPLIER, buyer, BUYER) == [supplier_id, buyer_id]
    assert active_ids(supplier, BUYER, buyer, BUYER) == [0, buyer_id]
    assert active_ids(supplier, HOLDER, buyer, HOLDER) == [supplier_id, 0]
    ledger.send(ledger.operator, participants.functions.suspend(buyer.address, REASON))
    assert active_ids(supplier, ANY_ROLE, buyer, ANY_ROLE) == [supplier_id, 0]


# ---------------------------------------------------------------------- pause


def test_pause_makes_the_id_lookups_refuse_and_unpause_restores_them(ledger, participants):
    account = ledger.participant(SUPPLIER)
    participant_id = record(participants, account)["id"]

    receipt = ledger.send(ledger.operator, participants.functions.pause())
    assert emitted(receipt, participants.events.Paused) == [{"account": ledger.operator.address}]
    assert participants.functions.paused().call() is True
    assert ledger.token.functions.paused().call() is True  # the token mirrors the registry
    with reverts("EnforcedPause"):
        call(participants.functions.activeId(account.address, SUPPLIER))
    with reverts("EnforcedPause"):
        call(participants.functions.activeIds(account.address, SUPPLIER, account.address, SUPPLIER))
    # Plain views still answer (they gate nothing).
    assert participants.functions.isActive(account.address, SUPPLIER).call() is True
    assert participants.functions.accountOf(participant_id).call() == account.address

    receipt = ledger.send(ledger.operator, participants.functions.unpause())
    assert emitted(receipt, participants.events.Unpaused) == [{"account": ledger.operator.address}]
    assert participants.functions.paused().call() is False
    assert participants.functions.activeId(account.address, SUPPLIER).call() == participant_id


def test_pause_and_unpause_refuse_the_state_they_would_set(ledger, participants):
    with reverts("ExpectedPause"):
        ledger.send(ledger.operator, participants.functions.unpause())
    ledger.send(ledger.operator, participants.functions.pause())
    with reverts("EnforcedPause"):
        ledger.send(ledger.operator, participants.functions.pause())
    assert participants.functions.paused().call() is True


@pytest.mark.parametrize("action", ["onboard", "setRoles", "suspend", "reinstate"])
def test_pause_stops_participant_administration(ledger, participants, action):
    account, suspended = ledger.participant(SUPPLIER), ledger.participant(BUYER)
    ledger.send(ledger.operator, participants.functions.suspend(suspended.address, REASON))
    calls = {
        "onboard": lambda: participants.functions.onboard(ledger.new_account().address, SUPPLIER, ORG_REF),
        "setRoles": lambda: participants.functions.setRoles(account.address, BUYER),
        "suspend": lambda: participants.functions.suspend(account.address, REASON),
        "reinstate": lambda: participants.functions.reinstate(suspended.address),
    }
    fn = calls[action]()
    count = participants.functions.participantCount().call()
    ledger.send(ledger.operator, participants.functions.pause())
    with reverts("EnforcedPause"):
        ledger.send(ledger.operator, fn)
    assert participants.functions.participantCount().call() == count
    assert record(participants, account)["roles"] == SUPPLIER
    assert record(participants, account)["suspended"] is False
    assert record(participants, suspended)["suspended"] is True


def test_pause_is_the_platform_wide_switch(ledger, module_actors):
    actors = module_actors
    receivable = ledger.confirmed(actors.supplier, actors.buyer)
    token, registry, financing = ledger.token, ledger.registry, ledger.financing
    actions = [
        (actors.buyer, token.functions.transfer(actors.financier.address, 1)),
        (actors.supplier, registry.functions.register(ledger.registration(actors.buyer))),
        (actors.supplier, financing.functions.requestFinancing(receivable, 500_000, ledger.now() + 10 * DAY, False)),
    ]
    ledger.send(ledger.operator, ledger.participants.functions.pause())
    for account, fn in actions:
        with reverts("EnforcedPause"):
            ledger.send(account, fn)

    ledger.send(ledger.operator, ledger.participants.functions.unpause())
    for account, fn in actions:
        ledger.send(account, fn)
    assert ledger.get_request(receivable)["status"] == 1  # Open


# ---------------------------------------------------------------------- administration


@pytest.mark.parametrize("action", ["onboard", "setRoles", "suspend", "reinstate", "pause", "unpause"])
def test_only_the_operator_administers_participants(ledger, participants, action):
    outsider = ledger.participant(SUPPLIER | BUYER | FINANCIER | AUDITOR)
    fn = {
        "onboard": participants.functions.onboard(ledger.new_account().address, SUPPLIER, ORG_REF),
        "setRoles": participants.functions.setRoles(outsider.address, BUYER),
        "suspend": participants.functions.suspend(outsider.address, REASON),
        "reinstate": participants.functions.reinstate(outsider.address),
        "pause": participants.functions.pause(),
        "unpause": participants.functions.unpause(),
    }[action]
    with reverts("AccessControlUnauthorizedAccount") as error:
        ledger.send(outsider, fn)
    assert error["args"] == (outsider.address.lower(), OPERATOR_ROLE)


def test_the_admin_grants_and_revokes_the_operator_role(ledger, participants):
    assert participants.functions.defaultAdmin().call() == ledger.operator.address
    assert participants.functions.getRoleAdmin(OPERATOR_ROLE).call() == DEFAULT_ADMIN_ROLE
    operator = ledger.new_account()

    ledger.send(ledger.operator, participants.functions.grantRole(OPERATOR_ROLE, operator.address))
    onboarded = ledger.new_account()
    onboard(ledger, onboarded, BUYER)  # by the first operator, to compare
    ledger.send(operator, participants.functions.setRoles(onboarded.address, SUPPLIER))
    assert record(participants, onboarded)["roles"] == SUPPLIER

    # An operator is not an admin: it cannot hand the role on.
    with reverts("AccessControlUnauthorizedAccount") as error:
        ledger.send(operator, participants.functions.grantRole(OPERATOR_ROLE, ledger.new_account().address))
    assert error["args"] == (operator.address.lower(), DEFAULT_ADMIN_ROLE)

    ledger.send(ledger.operator, participants.functions.revokeRole(OPERATOR_ROLE, operator.address))
    with reverts("AccessControlUnauthorizedAccount"):
        ledger.send(operator, participants.functions.setRoles(onboarded.address, BUYER))
    assert not participants.functions.hasRole(OPERATOR_ROLE, operator.address).call()


def test_the_admin_role_cannot_be_granted_or_revoked_directly(ledger, participants):
    with reverts("AccessControlEnforcedDefaultAdminRules"):
        ledger.send(ledger.operator, participants.functions.grantRole(DEFAULT_ADMIN_ROLE, ledger.new_account().address))
    with reverts("AccessControlEnforcedDefaultAdminRules"):
        ledger.send(ledger.operator, participants.functions.revokeRole(DEFAULT_ADMIN_ROLE, ledger.operator.address))
    with reverts("AccessControlEnforcedDefaultAdminDelay") as error:
        ledger.send(ledger.operator, participants.functions.renounceRole(DEFAULT_ADMIN_ROLE, ledger.operator.address))
    assert error["args"] == (0,)
    assert participants.functions.defaultAdmin().call() == ledger.operator.address


def test_handing_over_the_admin_role_takes_two_steps_and_the_delay(ledger, travel_to):
    delay = 2 * DAY
    registry = deploy_registry(ledger, (delay, ledger.operator.address, ledger.operator.address))
    successor, intruder = ledger.new_account(), ledger.new_account()

    with reverts("AccessControlUnauthorizedAccount"):
        ledger.send(intruder, registry.functions.beginDefaultAdminTransfer(intruder.address))
    receipt = ledger.send(ledger.operator, registry.functions.beginDefaultAdminTransfer(successor.address))
    schedule = ledger.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + delay
    assert registry.functions.pendingDefaultAdmin().call() == [successor.address, schedule]

    with reverts("AccessControlInvalidDefaultAdmin") as error:
        ledger.send(intruder, registry.functions.acceptDefaultAdminTransfer())
    assert error["args"] == (intruder.address.lower(),)
    with reverts("AccessControlEnforcedDefaultAdminDelay") as error:
        ledger.send(successor, registry.functions.acceptDefaultAdminTransfer())
    assert error["args"] == (schedule,)
    assert registry.functions.defaultAdmin().call() == ledger.operator.address

    travel_to(schedule + 1)  # the first second after the schedule
    ledger.send(successor, registry.functions.acceptDefaultAdminTransfer())
    assert registry.functions.defaultAdmin().call() == successor.address
    with reverts("AccessControlUnauthorizedAccount") as error:
        ledger.send(ledger.operator, registry.functions.grantRole(OPERATOR_ROLE, intruder.address))
    assert error["args"] == (ledger.operator.address.lower(), DEFAULT_ADMIN_ROLE)
    ledger.send(successor, registry.functions.grantRole(OPERATOR_ROLE, intruder.address))
    assert registry.functions.hasRole(OPERATOR_ROLE, intruder.address).call()


def test_constructor_needs_an_admin_and_an_operator(ledger):
    with reverts("ZeroAddress"):
        deploy_registry(ledger, (0, ledger.operator.address, ZERO_ADDRESS))
    with reverts("AccessControlInvalidDefaultAdmin") as error:
        deploy_registry(ledger, (0, ZERO_ADDRESS, ledger.operator.address))
    assert error["args"] == (ZERO_ADDRESS,)
