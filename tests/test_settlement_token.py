"""SettlementToken: minting and burning against single-use references, transfers only between
active participants and only while the platform runs, and the settlement agent's own path."""
from __future__ import annotations

import pytest
from web3 import Web3

from tests.factories import (
    ANY_ROLE,
    OPERATOR_ROLE,
    ZERO_ADDRESS,
    deploy,
    emitted,
    reverts,
)

pytestmark = pytest.mark.usefixtures("quick_gas_estimates")


@pytest.fixture
def ledger(reused_ledger):
    """One Ledger for the module, rolled back after each test."""
    return reused_ledger


@pytest.fixture
def actors(module_actors, ledger):
    """The module's cast (`ledger` rolls each test back)."""
    return module_actors


@pytest.fixture
def token(ledger):
    return ledger.token


def ref(label: str) -> bytes:
    return Web3.keccak(text=label)


def supply(token) -> int:
    return token.functions.totalSupply().call()


# ---------------------------------------------------------------------- what the token is


def test_token_describes_its_currency_and_wiring(ledger, token):
    assert token.functions.decimals().call() == 2
    assert token.functions.currency().call() == b"CNY"
    assert token.functions.symbol().call() == "aCNY"
    assert token.functions.settlementAgent().call() == ledger.financing.address
    assert token.functions.participants().call() == ledger.participants.address


def test_constructor_checks_currency_agent_and_registry(ledger):
    administration = (0, ledger.operator.address, ledger.operator.address)
    participants, agent = ledger.participants.address, ledger.financing.address

    eur = deploy(ledger, "SettlementToken", "Anchorline EUR", "aEUR", b"EUR", 0, participants, agent, administration)
    assert (eur.functions.currency().call(), eur.functions.decimals().call()) == (b"EUR", 0)

    with reverts("InvalidCurrency"):
        deploy(ledger, "SettlementToken", "x", "x", b"\x00" * 3, 2, participants, agent, administration)
    with reverts("ZeroAddress"):
        deploy(ledger, "SettlementToken", "x", "x", b"EUR", 2, participants, ZERO_ADDRESS, administration)
    with reverts("ZeroAddress"):
        deploy(ledger, "SettlementToken", "x", "x", b"EUR", 2, ZERO_ADDRESS, agent, administration)
    with reverts("InvalidDecimals") as error:  # receivable amounts are uint64 minor units
        deploy(ledger, "SettlementToken", "x", "x", b"EUR", 7, participants, agent, administration)
    assert error["args"] == (7,)


# ---------------------------------------------------------------------- mint and burn


def test_mint_credits_a_participant_against_a_deposit_reference(ledger, token, actors):
    before = supply(token)
    receipt = ledger.send(ledger.operator, token.functions.mint(actors.supplier.address, 12_345, ref("deposit-1")))

    assert ledger.balance(actors.supplier) == 12_345
    assert supply(token) == before + 12_345
    assert token.functions.referenceUsed(ref("deposit-1")).call() is True
    assert emitted(receipt, token.events.Minted) == [{"to": actors.supplier.address, "amount": 12_345, "depositRef": ref("deposit-1")}]
    assert emitted(receipt, token.events.Transfer) == [{"from": ZERO_ADDRESS, "to": actors.supplier.address, "value": 12_345}]


def test_a_reference_is_used_once_for_deposits_and_withdrawals_alike(ledger, token, actors):
    ledger.send(ledger.operator, token.functions.mint(actors.supplier.address, 100, ref("bank-tx-7")))
    with reverts("ReferenceAlreadyUsed") as error:
        ledger.send(ledger.operator, token.functions.mint(actors.sub_supplier.address, 100, ref("bank-tx-7")))
    assert error["args"] == (ref("bank-tx-7"),)

    ledger.send(actors.supplier, token.functions.approve(ledger.operator.address, 100))
    with reverts("ReferenceAlreadyUsed"):
        ledger.send(ledger.operator, token.functions.burn(actors.supplier.address, 100, ref("bank-tx-7")))
    assert ledger.balance(actors.supplier) == 100
    assert ledger.balance(actors.sub_supplier) == 0


@pytest.mark.parametrize("action", ["mint", "burn"])
def test_mint_and_burn_refuse_a_zero_amount_without_using_the_reference(ledger, token, actors, action):
    ledger.send(actors.buyer, token.functions.approve(ledger.operator.address, 10))
    with reverts("ZeroAmount"):
        ledger.send(ledger.operator, getattr(token.functions, action)(actors.buyer.address, 0, ref("zero")))
    assert token.functions.referenceUsed(ref("zero")).call() is False


@pytest.mark.parametrize("action", ["mint", "burn"])
def test_only_the_operator_mints_and_burns(ledger, token, actors, action):
    ledger.send(actors.buyer, token.functions.approve(actors.financier.address, 10))
    with reverts("AccessControlUnauthorizedAccount") as error:
        ledger.send(actors.financier, getattr(token.functions, action)(actors.buyer.address, 10, ref("unauthorised")))
    assert error["args"] == (actors.financier.address.lower(), OPERATOR_ROLE)
    assert ledger.balance(actors.buyer) == 100_000_000


def test_mint_refuses_an_inactive_recipient_and_leaves_the_reference_free(ledger, token, actors):
    stranger = ledger.new_account()
    with reverts("ParticipantNotActive") as error:
        ledger.send(ledger.operator, token.functions.mint(stranger.address, 500, ref("deposit-x")))
    assert error["args"] == (stranger.address.lower(), ANY_ROLE)

    ledger.suspend(actors.supplier)
    with reverts("ParticipantNotActive") as error:
        ledger.send(ledger.operator, token.functions.mint(actors.supplier.address, 500, ref("deposit-x")))
    assert error["args"] == (actors.supplier.address.lower(), ANY_ROLE)

    # The failed mints did not consume the reference: the deposit can still be credited.
    ledger.send(ledger.operator, ledger.participants.functions.reinstate(actors.supplier.address))
    ledger.send(ledger.operator, token.functions.mint(actors.supplier.address, 500, ref("deposit-x")))
    assert ledger.balance(actors.supplier) == 500


def test_burn_needs_the_holders_allowance_to_the_operator(ledger, token, actors):
    holder, before = actors.buyer, supply(token)
    with reverts("ERC20InsufficientAllowance") as error:
        ledger.send(ledger.operator, token.functions.burn(holder.address, 3_000, ref("withdrawal-1")))
    assert error["args"] == (ledger.operator.address.lower(), 0, 3_000)

    ledger.send(holder, token.functions.approve(ledger.operator.address, 5_000))
    receipt = ledger.send(ledger.operator, token.functions.burn(holder.address, 3_000, ref("withdrawal-1")))

    assert ledger.balance(holder) == 100_000_000 - 3_000
    assert supply(token) == before - 3_000
    assert token.functions.allowance(holder.address, ledger.operator.address).call() == 2_000
    assert token.functions.referenceUsed(ref("withdrawal-1")).call() is True
    assert emitted(receipt, token.events.Burned) == [{"from": holder.address, "amount": 3_000, "withdrawalRef": ref("withdrawal-1")}]


def test_burn_cannot_exceed_the_balance(ledger, token, actors):
    ledger.mint(actors.supplier, 1_000)
    ledger.send(actors.supplier, token.functions.approve(ledger.operator.address, 10_000))
    with reverts("ERC20InsufficientBalance") as error:
        ledger.send(ledger.operator, token.functions.burn(actors.supplier.address, 1_001, ref("too-much")))
    assert error["args"] == (actors.supplier.address.lower(), 1_000, 1_001)
    assert ledger.balance(actors.supplier) == 1_000


def test_burn_refuses_a_suspended_holder(ledger, token, actors):
    ledger.send(actors.buyer, token.functions.approve(ledger.operator.address, 1_000))
    ledger.suspend(actors.buyer)
    with reverts("ParticipantNotActive") as error:
        ledger.send(ledger.operator, token.functions.burn(actors.buyer.address, 1_000, ref("w-suspended")))
    assert error["args"] == (actors.buyer.address.lower(), ANY_ROLE)
    assert ledger.balance(actors.buyer) == 100_000_000


# ---------------------------------------------------------------------- transfers


def test_transfer_between_active_participants_of_any_role(ledger, token, actors):
    receipt = ledger.send(actors.buyer, token.functions.transfer(actors.auditor.address, 700))
    ledger.send(actors.auditor, token.functions.transfer(actors.supplier.address, 200))

    assert emitted(receipt, token.events.Transfer) == [{"from": actors.buyer.address, "to": actors.auditor.address, "value": 700}]
    assert ledger.balance(actors.buyer) == 100_000_000 - 700
    assert ledger.balance(actors.auditor) == 500
    assert ledger.balance(actors.supplier) == 200


@pytest.mark.parametrize("case", ["recipient never onboarded", "recipient suspended", "sender never onboarded", "sender suspended"])
def test_transfer_refuses_inactive_ends(ledger, token, actors, case):
    sender, recipient = actors.buyer, actors.supplier
    if case == "recipient never onboarded":
        recipient = ledger.new_account()
    elif case == "recipient suspended":
        ledger.suspend(recipient)
    elif case == "sender never onboarded":
        sender = ledger.new_account()  # refused before its (empty) balance is even looked at
    else:
        ledger.suspend(sender)
    refused = sender if case.startswith("sender") else recipient
    sender_balance = ledger.balance(sender)

    with reverts("ParticipantNotActive") as error:
        ledger.send(sender, token.functions.transfer(recipient.address, 1_000))
    assert error["args"] == (refused.address.lower(), ANY_ROLE)
    assert ledger.balance(sender) == sender_balance
    assert ledger.balance(recipient) == 0


def test_transfer_from_moves_between_active_participants_only(ledger, token, actors):
    spender = actors.financier
    ledger.send(actors.buyer, token.functions.approve(spender.address, 5_000))
    ledger.send(spender, token.functions.transferFrom(actors.buyer.address, actors.supplier.address, 2_000))
    assert ledger.balance(actors.supplier) == 2_000
    assert token.functions.allowance(actors.buyer.address, spender.address).call() == 3_000

    stranger = ledger.new_account()
    with reverts("ParticipantNotActive") as error:
        ledger.send(spender, token.functions.transferFrom(actors.buyer.address, stranger.address, 1_000))
    assert error["args"] == (stranger.address.lower(), ANY_ROLE)
    assert ledger.balance(stranger) == 0


@pytest.mark.parametrize("action", ["transfer", "transferFrom", "mint", "burn"])
def test_paused_platform_moves_no_tokens(ledger, token, actors, action):
    ledger.send(actors.buyer, token.functions.approve(ledger.operator.address, 1_000))
    ledger.send(actors.buyer, token.functions.approve(actors.financier.address, 1_000))
    sender, fn = {
        "transfer": (actors.buyer, token.functions.transfer(actors.supplier.address, 1_000)),
        "transferFrom": (actors.financier, token.functions.transferFrom(actors.buyer.address, actors.supplier.address, 1_000)),
        "mint": (ledger.operator, token.functions.mint(actors.supplier.address, 1_000, ref("paused-deposit"))),
        "burn": (ledger.operator, token.functions.burn(actors.buyer.address, 1_000, ref("paused-withdrawal"))),
    }[action]
    ledger.pause()
    with reverts("EnforcedPause"):
        ledger.send(sender, fn)
    assert ledger.balance(actors.buyer) == 100_000_000
    assert ledger.balance(actors.supplier) == 0

    ledger.send(ledger.operator, ledger.participants.functions.unpause())
    ledger.send(sender, fn)
    assert ledger.balance(actors.buyer) == 100_000_000 - (0 if action == "mint" else 1_000)
    assert ledger.balance(actors.supplier) == (0 if action == "burn" else 1_000)


@pytest.mark.parametrize("caller", ["holder of the tokens", "operator"])
def test_settlement_transfer_is_for_the_settlement_agent_only(ledger, token, actors, caller):
    account = actors.buyer if caller == "holder of the tokens" else ledger.operator
    with reverts("NotSettlementAgent") as error:
        ledger.send(account, token.functions.settlementTransfer(actors.buyer.address, actors.supplier.address, 1_000))
    assert error["args"] == (account.address.lower(),)
    assert ledger.balance(actors.buyer) == 100_000_000
    assert ledger.balance(actors.supplier) == 0



def test_a_spender_must_be_an_active_participant_too(ledger, actors):
    """An allowance does not let an outsider (or a suspended participant) move tokens."""
    ledger.mint(actors.supplier, 1_000)
    outsider = ledger.new_account()
    ledger.send(actors.supplier, ledger.token.functions.approve(outsider.address, 1_000))
    with reverts("ParticipantNotActive") as error:
        ledger.send(outsider, ledger.token.functions.transferFrom(actors.supplier.address, actors.buyer.address, 500))
    assert error["args"] == (outsider.address.lower(), 0)

    ledger.send(actors.supplier, ledger.token.functions.approve(actors.financier.address, 1_000))
    ledger.send(actors.financier, ledger.token.functions.transferFrom(actors.supplier.address, actors.buyer.address, 500))
    assert ledger.balance(actors.supplier) == 500
