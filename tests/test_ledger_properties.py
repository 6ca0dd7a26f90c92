"""Property-based test of the whole ledger: random sequences of participant actions, checked
against a Python model of what the contracts should do, with the ledger's invariants checked on
the chain after every step.

A `hypothesis` state machine drives register / confirm / dispute / cancel / split / receivable
and token transfers (direct and delegated, with approvals) / financing requests, offers,
acceptance and outright funding, withdrawal, cancellation and expiry / repayment / overdue and
default marking (with time travel) / recourse settlement / suspension and reinstatement / pause,
by the right participant or by any member of a fixed cast that includes wrong-role, suspended
and never-onboarded accounts. For every attempt the model predicts either success (and its
effects) or the custom errors the contracts may legitimately revert with, following the order
of the contracts' checks: an inactive or wrong-role account must be stopped at the participant
gate (or by a check that comes before it), never further down.

After every step, read straight from contract storage (fast enough to do every time):
  1. settlement tokens are conserved: the balances of all known accounts sum to totalSupply,
     which equals what the setup minted, and every balance is the model's;
  2. split children sum to their parent, which is Split and has no holder;
  3. no (receivable, round) is ever funded twice, and after funding the financier holds it;
  4. an attempt by an inactive or wrong-role participant reverts, and a reverted attempt
     changes nothing (same state root, same decoded snapshot);
  5. every known receivable, request, offer, recourse liability, allowance, operator approval
     and participant record is the model's.
Where the storage layout is (found by probing, then checked against the contracts' views) is
worked out once per module; the receivables each successful step touched are also read back
through the views.

Time: scheduled dates (due dates, deadlines, expiries) sit on a grid of whole days and the clock
always half a day off it, so what the model predicts about "before/after a deadline" never
depends on the seconds the chain adds per block.

Settings: the `ledger-ci` profile (derandomized, so CI runs are reproducible); set
ANCHORLINE_LEDGER_PROFILE=ledger-deep for a long random campaign.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address, to_checksum_address
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RULE_MARKER, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD

from backend.chain import transactions
from backend.chain.client import child_receivable_id, receivable_id
from backend.chain.transactions import TransactionReverted
from tests.factories import AUDITOR, BUYER, CNY, DAY, DELINQUENCY, FINANCIER, REQUEST_STATUS, STATUS, SUPPLIER

pytestmark = pytest.mark.slow

HOLDER = SUPPLIER | FINANCIER  # Roles.HOLDER
ANY = 0  # Roles.ANY
OPERATOR = -1  # not a participant role: the registry's OPERATOR_ROLE, which only "OP" holds
HALF_DAY = DAY // 2

STATUS_NAME = {v: k for k, v in STATUS.items()}
REQUEST_NAME = {v: k for k, v in REQUEST_STATUS.items()}
DELINQUENCY_NAME = {v: k for k, v in DELINQUENCY.items()}
OFFER_NAME = {0: "None", 1: "Open", 2: "Withdrawn"}

# ---------------------------------------------------------------------- the cast

ROLES = {
    "S0": SUPPLIER, "S1": SUPPLIER, "S2": SUPPLIER,
    "B0": BUYER, "B1": BUYER,
    "F0": FINANCIER, "F1": FINANCIER,
    "AU": AUDITOR,
    "SX": SUPPLIER,  # suspended at setup (after it was minted tokens)
}
NEVER_ONBOARDED = "NX"
CAST = (*ROLES, NEVER_ONBOARDED)
SUPPLIERS = ("S0", "S1", "S2")
BUYERS = ("B0", "B1")
FINANCIERS = ("F0", "F1")
HOLDERS = (*SUPPLIERS, *FINANCIERS)
MINTED = {"B0": 3_000_000, "B1": 3_000_000, "F0": 4_000_000, "F1": 4_000_000, "S0": 500_000, "AU": 200_000, "SX": 500_000}
# Other accounts whose token balance must stay zero: the operator, the gas funder, the contracts.
BYSTANDERS = ("OP", "FUNDER", "SettlementToken", "ReceivableRegistry", "Financing")

GAS_LIMIT = 3_000_000
# Generous fixed fees: eth-tester's base fee only falls with our small blocks.
FEES = {"maxFeePerGas": 20 * 10**9, "maxPriorityFeePerGas": 10**9}
MAX_UINT256 = 2**256 - 1  # an allowance that transferFrom does not spend
GHOST_ID = int.from_bytes(keccak(b"anchorline: a receivable nobody registered"), "big")


def _word(value: int | str) -> bytes:
    if isinstance(value, str):
        return b"\x00" * 12 + to_canonical_address(value)
    return value.to_bytes(32, "big")


def mapping_slot(key: int | str, slot: int) -> int:
    """Storage slot of `mapping[key]` for a mapping declared at `slot`."""
    return int.from_bytes(keccak(_word(key) + _word(slot)), "big")


def nested_slot(key1: int | str, key2: int | str, slot: int) -> int:
    """Storage slot of `mapping[key1][key2]`."""
    return int.from_bytes(keccak(_word(key2) + _word(mapping_slot(key1, slot))), "big")


def uint32_array_element(get: Callable[[int], int], length_slot: int, index: int) -> int:
    """Element `index` of a dynamic uint32 array whose length is at `length_slot` (eight
    elements share a slot, the first in the lowest bits)."""
    word = get(int.from_bytes(keccak(_word(length_slot)), "big") + index // 8)
    return _bits(word, 32 * (index % 8), 32)


def _bits(word: int, start: int, width: int) -> int:
    return (word >> start) & ((1 << width) - 1)


# ---------------------------------------------------------------------- decoded storage


@dataclass(frozen=True)
class Layout:
    """Declaration slots of the mappings the test reads, found by probing (see `_probe_layout`)."""

    balances: int
    total_supply: int
    owners: int
    receivables: int
    parents: int
    requests: int
    offers: int
    liabilities: int
    recourse_sellers: int  # Financing._earlierRecourseSellerIds (a mapping of arrays)
    participants: int
    paused_slot: int
    paused_bit: int
    allowances: int
    operators: int


def decode_receivable(word: int) -> dict[str, Any]:
    """`ReceivableRegistry.Receivable`, one slot, first member in the low-order bits."""
    return {
        "buyer_id": _bits(word, 0, 32),
        "amount": _bits(word, 32, 64),
        "repaid": _bits(word, 96, 64),
        "due_date": _bits(word, 160, 40),
        "currency": _bits(word, 200, 24).to_bytes(3, "big"),
        "status": STATUS_NAME[_bits(word, 224, 8)],
        "child_count": _bits(word, 232, 16),
        "delinquency": DELINQUENCY_NAME[_bits(word, 248, 8)],
    }


def decode_request(word: int) -> dict[str, Any]:
    return {
        "seller_id": _bits(word, 0, 32),
        "asking": _bits(word, 32, 64),
        "outstanding": _bits(word, 96, 64),
        "deadline": _bits(word, 160, 40),
        "status": REQUEST_NAME[_bits(word, 200, 8)],
        "recourse": bool(_bits(word, 208, 8)),
        "round": _bits(word, 216, 16),
    }


def decode_offer(word: int) -> dict[str, Any]:
    return {
        "advance": _bits(word, 0, 64),
        "expiry": _bits(word, 64, 40),
        "round": _bits(word, 104, 16),
        "status": OFFER_NAME[_bits(word, 120, 8)],
    }


def decode_participant(word: int) -> dict[str, Any]:
    return {"id": _bits(word, 0, 32), "roles": _bits(word, 32, 8), "suspended": bool(_bits(word, 40, 8))}


@dataclass(frozen=True)
class ChainState:
    """Everything the test knows how to read, raw (for 'nothing changed') and decoded."""

    state_root: bytes
    block_number: int
    total_supply: int
    balances: dict[str, int]
    # id -> (receivable, owner, parent, request, liability, recourse seller id of the last funded financing)
    receivables: dict[int, tuple[int, int, int, int, int, int]]
    offers: dict[tuple[int, str], int]
    participants: dict[str, int]
    paused: bool
    allowances: dict[tuple[str, str], int]  # ERC-20 (owner, spender)
    operators: dict[tuple[str, str], int]  # ERC-721 (owner, operator)

    def receivable(self, rid: int) -> dict[str, Any]:
        word, owner, parent, *_ = self.receivables[rid]
        return {**decode_receivable(word), "owner": owner, "parent": parent}

    def request(self, rid: int) -> dict[str, Any]:
        return decode_request(self.receivables[rid][3])

    def liability(self, rid: int) -> int:
        return self.receivables[rid][4]

    def earlier_recourse_seller_id(self, rid: int) -> int:
        """The last of the earlier financings' recourse sellers (0 when none is on record)."""
        return self.receivables[rid][5]


# ---------------------------------------------------------------------- the deployed ledger


@dataclass
class PropertyChain:
    """The session chain with the property test's cast onboarded, and how to act on it fast."""

    tester: Any
    w3: Web3
    operator: LocalAccount
    accounts: dict[str, LocalAccount]  # the cast and the operator ("OP")
    addresses: dict[str, str]  # every known token holder, cast, bystanders and contracts
    participant_ids: dict[str, int]
    contracts: dict[str, Any]
    grace_days: int
    default_days: int
    layout: Layout | None = None
    snapshot: bytes | None = None
    _last_read: tuple[Any, ChainState] | None = None

    @property
    def participants(self) -> Any:
        return self.contracts["Financing"]  # which is also the participant registry

    @property
    def token(self) -> Any:
        return self.contracts["SettlementToken"]

    @property
    def registry(self) -> Any:
        return self.contracts["ReceivableRegistry"]

    @property
    def financing(self) -> Any:
        return self.contracts["Financing"]

    def name_of(self, address: str | int) -> str | None:
        if isinstance(address, int):
            address = to_checksum_address(address.to_bytes(20, "big"))
        for name, known in self.addresses.items():
            if known == address:
                return name
        return None if int(address, 16) == 0 else address

    def send(self, sender: str, call: Any) -> Any:
        """Like `transactions.send`, but one dry run instead of a gas estimate's binary search
        (a dozen EVM executions per transaction): a revert raises `TransactionReverted` with the
        decoded custom error before anything is signed; otherwise it is sent with a fixed gas
        limit through `transactions.send`, which raises on a mined revert too."""
        account = self.accounts[sender]
        tx = transactions.call_data(call)
        try:
            self.w3.eth.call({**tx, "from": account.address}, "pending")
        except Exception as exc:
            error = transactions.revert_error(exc)
            is_revert = isinstance(exc, (ContractCustomError, ContractLogicError)) or "revert" in str(exc).lower()
            if error is None and not is_revert:
                raise
            raise TransactionReverted(error, str(exc)) from exc
        return transactions.send(self.w3, account, {**tx, "gas": GAS_LIMIT, **FEES})

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def pending_time(self) -> int:
        return self.w3.eth.get_block("pending")["timestamp"]

    def head(self) -> tuple[int, bytes]:
        header = self.tester.backend.chain.get_canonical_head()
        return header.block_number, bytes(header.state_root)

    @staticmethod
    def _last_element(get: Callable[[bytes, int], int], address: bytes, length_slot: int) -> int:
        """The last element of a dynamic uint32 array in storage (0 when it is empty)."""
        length = get(address, length_slot)
        return uint32_array_element(lambda slot: get(address, slot), length_slot, length - 1) if length else 0

    def read_state(
        self,
        rids: Iterable[int],
        allowances: Iterable[tuple[str, str]] = (),
        operators: Iterable[tuple[str, str]] = (),
        *,
        fresh: bool = False,
    ) -> ChainState:
        """Decode what the test tracks straight from contract storage. The state is a function
        of the chain head, so a read is reused while the head and the ids asked for are the
        same, unless `fresh`."""
        layout = self.layout
        assert layout is not None
        rids, allowances, operators = tuple(rids), tuple(allowances), tuple(operators)
        block_number, state_root = self.head()
        key = (block_number, state_root, rids, allowances, operators)
        if not fresh and self._last_read is not None and self._last_read[0] == key:
            return self._last_read[1]
        get = self.tester.backend.chain.get_vm().state.get_storage
        token = to_canonical_address(self.token.address)
        registry = to_canonical_address(self.registry.address)
        financing = to_canonical_address(self.financing.address)
        participants = to_canonical_address(self.participants.address)
        state = ChainState(
            state_root=state_root,
            block_number=block_number,
            total_supply=get(token, layout.total_supply),
            balances={name: get(token, mapping_slot(address, layout.balances)) for name, address in self.addresses.items()},
            receivables={
                rid: (
                    get(registry, mapping_slot(rid, layout.receivables)),
                    get(registry, mapping_slot(rid, layout.owners)),
                    get(registry, mapping_slot(rid, layout.parents)),
                    get(financing, mapping_slot(rid, layout.requests)),
                    get(financing, mapping_slot(rid, layout.liabilities)),
                    self._last_element(get, financing, mapping_slot(rid, layout.recourse_sellers)),
                )
                for rid in rids
            },
            # Offers by anyone else could only come from a makeOffer that passed the financier
            # gate, which the model would have caught as an unexpected success.
            offers={
                (rid, name): get(financing, nested_slot(rid, self.addresses[name], layout.offers))
                for rid in rids
                for name in FINANCIERS
            },
            participants={
                name: get(participants, mapping_slot(self.addresses[name], layout.participants)) for name in CAST
            },
            paused=bool(_bits(get(participants, layout.paused_slot), layout.paused_bit, 1)),
            allowances={
                (owner, spender): get(token, nested_slot(self.addresses[owner], self.addresses[spender], layout.allowances))
                for owner, spender in allowances
            },
            operators={
                (owner, operator): get(registry, nested_slot(self.addresses[owner], self.addresses[operator], layout.operators))
                for owner, operator in operators
            },
        )
        self._last_read = (key, state)
        return state


def _cast_account(name: str) -> LocalAccount:
    # Fixed keys: the same addresses (and so the same receivable ids) on every run.
    return Account.from_key(keccak(f"anchorline property test: {name}".encode()))


def build_property_chain(evm_chain: Any) -> PropertyChain:
    tester, w3, deployment, deployer, funder = evm_chain
    accounts = {name: _cast_account(name) for name in CAST}
    accounts["OP"] = deployer
    contracts = deployment.contracts(w3)
    addresses = {name: account.address for name, account in accounts.items()}
    addresses["FUNDER"] = funder.address
    addresses.update(deployment.addresses)
    settings_ = deployment.settings
    assert settings_["grace_period"] % DAY == 0 and settings_["default_period"] % DAY == 0
    chain = PropertyChain(
        tester=tester,
        w3=w3,
        operator=deployer,
        accounts=accounts,
        addresses=addresses,
        participant_ids={},
        contracts=contracts,
        grace_days=settings_["grace_period"] // DAY,
        default_days=settings_["default_period"] // DAY,
    )
    for name in CAST:
        transactions.send(w3, funder, {"to": accounts[name].address, "value": Web3.to_wei(10, "ether")})
    for name, roles in ROLES.items():
        ref = hashlib.sha256(name.encode()).digest()
        chain.send("OP", chain.participants.functions.onboard(accounts[name].address, roles, ref))
        chain.participant_ids[name] = chain.participants.functions.participantOf(accounts[name].address).call()[0]
    for i, (name, amount) in enumerate(sorted(MINTED.items()), start=1):
        ref = keccak(f"property deposit {i}".encode())
        chain.send("OP", chain.token.functions.mint(accounts[name].address, amount, ref))
    chain.send("OP", chain.participants.functions.suspend(accounts["SX"].address, b"\x02" * 32))
    return chain


def _probe_layout(chain: PropertyChain) -> Layout:
    """Find where the contracts keep what the test reads, by doing one of everything on a
    throwaway branch of the chain and looking for the values the views return; then check the
    decoders against the views."""
    tester = chain.tester
    base = tester.take_snapshot()

    def vm_state() -> Any:
        return tester.backend.chain.get_vm().state

    try:
        token = to_canonical_address(chain.token.address)
        registry = to_canonical_address(chain.registry.address)
        financing = to_canonical_address(chain.financing.address)
        participants = to_canonical_address(chain.participants.address)
        b0, s0, f0 = (chain.addresses[n] for n in ("B0", "S0", "F0"))

        def find(address: bytes, predicate: Callable[[int], bool], slot_of: Callable[[int], int]) -> int:
            state = vm_state()
            hits = [p for p in range(64) if predicate(state.get_storage(address, slot_of(p)))]
            assert len(hits) == 1, f"layout probe ambiguous or failed: {hits}"
            return hits[0]

        balances = find(token, lambda v: v == MINTED["B0"], lambda p: mapping_slot(b0, p))
        total = chain.token.functions.totalSupply().call()
        total_supply = find(token, lambda v: v == total, lambda p: p)
        participants_slot = find(
            participants,
            lambda v: decode_participant(v) == {"id": chain.participant_ids["S0"], "roles": SUPPLIER, "suspended": False},
            lambda p: mapping_slot(s0, p),
        )

        now = chain.now()
        due = now + 60 * DAY
        entry = (b0, 777_777, CNY, now - DAY, due, keccak(b"probe invoice"), keccak(b"probe document"))
        chain.send("S0", chain.registry.functions.register(entry))
        rid = receivable_id(s0, b0, entry[5])
        chain.send("B0", chain.registry.functions.confirm(rid))
        receivables = find(
            registry,
            lambda v: decode_receivable(v)["amount"] == 777_777 and decode_receivable(v)["status"] == "Confirmed",
            lambda p: mapping_slot(rid, p),
        )
        owners = find(registry, lambda v: v == int(s0, 16), lambda p: mapping_slot(rid, p))
        chain.send("S0", chain.financing.functions.requestFinancing(rid, 500_000, now + 10 * DAY, True))
        requests = find(
            financing,
            lambda v: v != 0 and decode_request(v)["asking"] == 500_000 and decode_request(v)["round"] == 1,
            lambda p: mapping_slot(rid, p),
        )
        chain.send("F0", chain.financing.functions.makeOffer(rid, 600_000, now + 5 * DAY))
        offers = find(
            financing,
            lambda v: v != 0 and decode_offer(v)["advance"] == 600_000 and decode_offer(v)["status"] == "Open",
            lambda p: nested_slot(rid, f0, p),
        )
        chain.send("F1", chain.financing.functions.fundRequest(rid))
        # F1 lists it again: the funded request's recourse seller (S0) moves aside.
        chain.send("F1", chain.financing.functions.requestFinancing(rid, 1_000, now + 3 * DAY, False))
        recourse_sellers = find(
            financing,
            lambda v: v == chain.participant_ids["S0"],  # the array's only element: its first slot is it
            lambda p: int.from_bytes(keccak(_word(mapping_slot(rid, p))), "big"),
        )
        tester.time_travel(due + (chain.grace_days + chain.default_days) * DAY + DAY)
        chain.send("F1", chain.financing.functions.markOverdue(rid))
        chain.send("F1", chain.financing.functions.markDefaulted(rid))
        assert chain.financing.functions.recourseLiability(rid).call() == 777_777
        liabilities = find(financing, lambda v: v == 777_777, lambda p: mapping_slot(rid, p))

        rid2 = receivable_id(s0, b0, keccak(b"probe invoice 2"))
        entry2 = (b0, 10_000, CNY, chain.now() - DAY, chain.now() + 60 * DAY, keccak(b"probe invoice 2"), keccak(b"doc 2"))
        chain.send("S0", chain.registry.functions.register(entry2))
        chain.send("B0", chain.registry.functions.confirm(rid2))
        chain.send("S0", chain.registry.functions.split(rid2, [4_000, 6_000], [s0, chain.addresses["S1"]]))
        parents = find(registry, lambda v: v == rid2, lambda p: mapping_slot(child_receivable_id(rid2, 1), p))

        chain.send("B0", chain.token.functions.approve(f0, 123_456))
        allowances = find(token, lambda v: v == 123_456, lambda p: nested_slot(b0, f0, p))
        chain.send("S0", chain.registry.functions.setApprovalForAll(f0, True))
        operators = find(registry, lambda v: v == 1, lambda p: nested_slot(s0, f0, p))

        before = {p: vm_state().get_storage(participants, p) for p in range(64)}
        chain.send("OP", chain.participants.functions.pause())
        after = {p: vm_state().get_storage(participants, p) for p in range(64)}
        changed = [p for p in range(64) if before[p] != after[p]]
        assert len(changed) == 1, changed
        diff = before[changed[0]] ^ after[changed[0]]
        assert diff & (diff - 1) == 0, "pausing should flip one bit"
        layout = Layout(
            balances=balances, total_supply=total_supply, owners=owners, receivables=receivables, parents=parents,
            requests=requests, offers=offers, liabilities=liabilities, recourse_sellers=recourse_sellers,
            participants=participants_slot,
            paused_slot=changed[0], paused_bit=diff.bit_length() - 1, allowances=allowances, operators=operators,
        )
        chain.layout = layout

        # The decoders agree with the contracts' own views.
        probed_ids = [rid, rid2, child_receivable_id(rid2, 0), child_receivable_id(rid2, 1)]
        state = chain.read_state(probed_ids, [("B0", "F0")], [("S0", "F0")])
        assert state.paused
        assert state.allowances == {("B0", "F0"): chain.token.functions.allowance(b0, f0).call()}
        assert state.operators == {("S0", "F0"): int(chain.registry.functions.isApprovedForAll(s0, f0).call())}
        for r in (rid, rid2, child_receivable_id(rid2, 1)):
            view = chain.registry.functions.getReceivable(r).call()
            mine = state.receivable(r)
            assert (chain.name_of(mine["owner"]) or "0x" + "0" * 40, mine["amount"], mine["repaid"], mine["due_date"],
                    mine["currency"], STATUS[mine["status"]], DELINQUENCY[mine["delinquency"]], mine["parent"]) == (
                chain.name_of(view[1]) or view[1], view[2], view[3], view[4], view[5], view[6], view[7], view[8]
            )
        request, seller = chain.financing.functions.getRequest(rid).call()
        mine = state.request(rid)
        assert (mine["seller_id"], mine["asking"], mine["outstanding"], mine["deadline"], REQUEST_STATUS[mine["status"]],
                mine["recourse"], mine["round"]) == tuple(request)
        assert seller == chain.addresses["F1"] and mine["round"] == 2
        offer, _ = chain.financing.functions.getOffer(rid, f0).call()
        assert (decode_offer(state.offers[(rid, "F0")])["advance"], decode_offer(state.offers[(rid, "F0")])["expiry"]) == (
            offer[0], offer[1])
        assert state.total_supply == total and sum(state.balances.values()) == total
    finally:
        tester.revert_to_snapshot(base)
    return layout


@pytest.fixture(scope="module")
def property_chain(evm_chain):
    """The session chain with the cast onboarded; rolled back to where it was afterwards."""
    tester = evm_chain[0]
    base = tester.take_snapshot()
    chain = build_property_chain(evm_chain)
    chain.layout = _probe_layout(chain)
    chain.snapshot = tester.take_snapshot()
    yield chain
    tester.revert_to_snapshot(base)


# ---------------------------------------------------------------------- the model


@dataclass
class Rec:
    rid: int
    supplier: str
    buyer: str
    amount: int
    due: int  # day index on the grid
    currency: bytes
    status: str = "Registered"
    holder: str | None = None
    repaid: int = 0
    delinquency: str = "None"
    parent: int = 0
    children: list[int] = field(default_factory=list)

    @property
    def outstanding(self) -> int:
        return self.amount - self.repaid


@dataclass
class Req:
    seller: str
    asking: int
    outstanding: int
    deadline: int  # day index
    status: str
    recourse: bool
    round: int


@dataclass
class Offer:
    advance: int
    expiry: int  # day index
    round: int
    status: str = "Open"


class Expect:
    """What the model says an attempt must do: succeed, or revert with one of `errors`."""

    def __init__(self) -> None:
        self.errors: frozenset[str] = frozenset()
        self._decided = False

    def stage(self, *checks: tuple[bool, str]) -> Expect:
        """One group of checks the contract makes before the next group; the first group with
        a failing check decides which errors are legitimate (any of that group's)."""
        if not self._decided:
            failing = frozenset(name for failed, name in checks if failed)
            if failing:
                self.errors = failing
                self._decided = True
        return self

    @property
    def ok(self) -> bool:
        return not self.errors


RIGHT = "right"
# An actor is either "the right one for this target" (resolved from the model) or any cast member.
ACTOR = st.one_of(st.integers(0, 3).map(lambda k: (RIGHT, k)), st.sampled_from(CAST))
# A target is either one the model finds suitable for the action, or any known id (or a ghost).
TARGET = st.one_of(st.integers(0, 7).map(lambda k: ("fit", k)), st.integers(0, 63))
HOLDER_PICK = st.one_of(st.sampled_from(HOLDERS), st.sampled_from(CAST))


def _guided_advance_rule(name: str) -> Callable[..., None]:
    """A rule that moves a live receivable one step on (`LedgerMachine._advance`), named `name`."""

    def advance(self: LedgerMachine, k: int, choice: int) -> None:
        self._advance(k, choice)

    advance.__name__ = advance.__qualname__ = name
    return rule(k=st.integers(0, 7), choice=st.integers(0, 11))(advance)


class LedgerMachine(RuleBasedStateMachine):
    """One example = one fresh copy of the cast's chain and a random run of actions on it."""

    chain: PropertyChain  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        chain = self.chain
        chain.tester.revert_to_snapshot(chain.snapshot)
        # The clock sits half a day past the grid's day 0.
        self.grid = chain.pending_time() - HALF_DAY
        self.day = 0
        self.paused = False
        self.suspended = {"SX"}
        self.balances = {name: 0 for name in chain.addresses}
        self.balances.update(MINTED)
        self.total_minted = sum(MINTED.values())
        self.receivables: dict[int, Rec] = {}
        self.invoices: list[tuple[str, str, bytes]] = []
        self.requests: dict[int, Req] = {}
        self.offers: dict[tuple[int, str], Offer] = {}
        self.liabilities: dict[int, int] = {}
        # Per receivable, the financings funded and not unwound, oldest first: (seller, financier, recourse).
        self.financings: dict[int, list[tuple[str, str, bool]]] = {}
        self.funded_rounds: set[tuple[int, int]] = set()
        self.allowances: dict[tuple[str, str], int] = {}  # ERC-20 (owner, spender)
        self.operators: dict[tuple[str, str], bool] = {}  # ERC-721 (owner, operator)
        self.invoice_counter = 0
        self.touched: set[int] = set()  # receivables to read back through the views

    # ------------------------------------------------------------------ model helpers
    def ts(self, day: int) -> int:
        return self.grid + day * DAY

    def active(self, name: str, mask: int) -> bool:
        if mask == OPERATOR:
            return name == "OP"
        roles = ROLES.get(name)
        if roles is None or name in self.suspended:
            return False
        return mask == ANY or bool(roles & mask)

    def gate(self, *pairs: tuple[str, int]) -> tuple[tuple[bool, str], ...]:
        """`_requireParticipant(s)`: the registry refuses to answer while paused."""
        if self.paused:
            return ((True, "EnforcedPause"),)
        return tuple((not self.active(name, mask), "ParticipantNotActive") for name, mask in pairs)

    def rid_list(self) -> list[int]:
        return [*self.receivables, GHOST_ID]

    def read_chain(self, *, fresh: bool = False) -> ChainState:
        return self.chain.read_state(self.rid_list(), sorted(self.allowances), sorted(self.operators), fresh=fresh)

    def pick(self, item: Any, fit: Callable[[Rec], bool]) -> int:
        if isinstance(item, tuple):
            suitable = [rid for rid, rec in self.receivables.items() if fit(rec)]
            if suitable:
                return suitable[item[1] % len(suitable)]
            item = item[1]
        ids = self.rid_list()
        return ids[item % len(ids)]

    def who(self, actor: Any, candidates: Iterable[str | None]) -> str:
        if isinstance(actor, tuple):
            names = [c for c in candidates if c]
            return names[actor[1] % len(names)] if names else CAST[actor[1] % len(CAST)]
        return actor

    def live_request(self, rid: int) -> Req | None:
        req = self.requests.get(rid)
        return req if req and req.status == "Open" and self.day < req.deadline else None

    def open_offer(self, rid: int, financier: str) -> Offer | None:
        offer = self.offers.get((rid, financier))
        req = self.requests.get(rid)
        round_ = req.round if req else 0
        return offer if offer and offer.status == "Open" and offer.round == round_ else None

    def recourse_seller(self, rid: int) -> str | None:
        """The seller of the last funded financing not unwound, if it was with recourse (whatever
        requests came after it: an unsold resale does not release the original seller; and once
        the seller buys the receivable back, the financing before governs again)."""
        financings = self.financings.get(rid)
        if not financings:
            return None
        seller, _, recourse = financings[-1]
        return seller if recourse else None

    def move_tokens(self, payer: str, payee: str, amount: int) -> None:
        assert self.balances[payer] >= amount
        self.balances[payer] -= amount
        self.balances[payee] += amount

    # ------------------------------------------------------------------ attempting
    def attempt(
        self,
        label: str,
        sender: str,
        call: Any,
        expect: Expect,
        apply: Callable[[], None] = lambda: None,
        *,
        touches: Iterable[int] = (),
        settles: tuple[int, int, str] | None = None,
        gated: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Send `call` from `sender`; check the chain did what the model predicted.

        `gated`: the (account, role mask) pairs the action needs active; if the model finds one of
        them inactive, this is an inactive or wrong-role attempt (invariant 4).
        `settles`: (receivable, round, financier) when the model expects a FinancingSettled.
        """
        touches = list(touches)
        inactive = [name for name, mask in gated if not self.active(name, mask)]
        self.note(f"day {self.day}: {label} by {sender}, expected {'success' if expect.ok else sorted(expect.errors)}")
        before = self.read_chain()
        try:
            receipt = self.chain.send(sender, call)
        except TransactionReverted as exc:
            name = exc.error.name if exc.error else None
            assert not expect.ok, f"{label} by {sender}: the model expected success, the chain reverted with {exc.error}"
            assert name in expect.errors, (
                f"{label} by {sender}: reverted with {exc.error}, the model allows only {sorted(expect.errors)}"
            )
            after = self.read_chain(fresh=True)
            assert after == before, f"{label} by {sender}: reverted, yet the ledger changed"
            return
        assert not inactive, (
            f"INVARIANT 4 broken: {label} by {sender} succeeded although {inactive} "
            f"{'is' if len(inactive) == 1 else 'are'} not active with the role it needs"
        )
        assert expect.ok, f"{label} by {sender}: succeeded, the model expected a revert with one of {sorted(expect.errors)}"
        self.check_settlements(label, receipt, settles)
        apply()
        self.touched.update(touches)

    @staticmethod
    def note(text: str) -> None:
        """Shown with a failing example; printed when a replay (outside hypothesis) runs."""
        try:
            current_build_context()
        except InvalidArgument:  # not inside a hypothesis test
            print(text)
        else:
            note(text)

    def check_settlements(self, label: str, receipt: Any, expected: tuple[int, int, str] | None) -> None:
        """Invariant 3: one FinancingSettled per (receivable, round), ever; only where expected."""
        events = self.chain.financing.events.FinancingSettled().process_receipt(receipt, errors=DISCARD)
        seen = [(e["args"]["id"], e["args"]["round"], self.chain.name_of(e["args"]["financier"])) for e in events]
        assert seen == ([expected] if expected else []), f"{label}: settlements {seen}, expected {expected}"
        for rid, round_, financier in seen:
            assert (rid, round_) not in self.funded_rounds, (
                f"INVARIANT 3 broken: receivable {rid:#x} funded twice in round {round_}"
            )
            self.funded_rounds.add((rid, round_))
            owner = self.chain.registry.functions.ownerOf(rid).call()
            assert owner == self.chain.addresses[financier], "INVARIANT 3 broken: the financier does not hold what it funded"

    # ------------------------------------------------------------------ registration and the buyer's answer
    @rule(
        supplier=st.one_of(st.sampled_from(SUPPLIERS), st.sampled_from(CAST)),
        buyer=st.one_of(st.sampled_from(BUYERS), st.sampled_from(CAST)),
        amount=st.one_of(st.sampled_from([100_000, 250_000, 1_000_000]), st.integers(0, 2_000_000)),
        due_in=st.sampled_from([30, 60, 90, 0]),
        reuse_number=st.booleans(),
        defect=st.sampled_from([None, None, None, None, "currency", "hash", "dates", "usd"]),
    )
    def register(self, supplier, buyer, amount, due_in, reuse_number, defect):
        if reuse_number and self.invoices:
            number = self.invoices[-1][2]
        else:
            self.invoice_counter += 1
            number = hashlib.sha256(f"INV-{self.invoice_counter:05d}".encode()).digest()
        due = self.day + due_in
        issue_ts = self.ts(self.day - 1)
        due_ts = self.ts(due)
        currency = {"currency": b"\x00\x00\x00", "usd": b"USD"}.get(defect, CNY)
        document = b"\x00" * 32 if defect == "hash" else hashlib.sha256(number).digest()
        if defect == "dates":
            issue_ts = due_ts
        addresses = self.chain.addresses
        rid = receivable_id(addresses[supplier], addresses[buyer], number)
        expect = (
            Expect()
            .stage(*self.gate((supplier, SUPPLIER), (buyer, BUYER)))
            .stage((supplier == buyer, "SelfInvoice"))
            .stage((amount == 0, "ZeroAmount"))
            .stage((currency == b"\x00\x00\x00", "InvalidCurrency"))
            .stage((defect == "hash", "MissingHash"))
            .stage((defect == "dates", "InvalidDates"))
            .stage((due_in == 0, "DueDateInPast"))
            .stage((rid in self.receivables, "DuplicateReceivable"))
        )
        entry = (addresses[buyer], amount, currency, issue_ts, due_ts, number, document)

        def apply():
            self.receivables[rid] = Rec(rid, supplier, buyer, amount, due, currency, holder=supplier)
            self.invoices.append((supplier, buyer, number))

        self.attempt("register", supplier, self.chain.registry.functions.register(entry), expect, apply,
                     touches=[rid], gated=[(supplier, SUPPLIER), (buyer, BUYER)])

    @rule(item=TARGET, actor=ACTOR)
    def confirm(self, item, actor):
        rid = self.pick(item, lambda r: r.status in ("Registered", "Disputed"))
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.buyer])
        expect = (
            Expect()
            .stage(*self.gate((sender, BUYER)))
            .stage((rec is None, "UnknownReceivable"))
            .stage((rec is not None and rec.buyer != sender, "NotBuyer"))
            .stage((rec is not None and rec.status not in ("Registered", "Disputed"), "UnexpectedStatus"))
        )

        def apply():
            rec.status = "Confirmed"

        self.attempt("confirm", sender, self.chain.registry.functions.confirm(rid), expect, apply,
                     touches=[rid], gated=[(sender, BUYER)])

    @rule(item=TARGET, actor=ACTOR, reason=st.sampled_from([3, 3, 0]))
    def dispute(self, item, actor, reason):
        rid = self.pick(item, lambda r: r.status == "Registered")
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.buyer])
        expect = (
            Expect()
            .stage(*self.gate((sender, BUYER)))
            .stage((reason == 0, "InvalidReasonCode"))
            .stage((rec is None, "UnknownReceivable"))
            .stage((rec is not None and rec.buyer != sender, "NotBuyer"))
            .stage((rec is not None and rec.status != "Registered", "UnexpectedStatus"))
        )

        def apply():
            rec.status = "Disputed"

        self.attempt("dispute", sender, self.chain.registry.functions.dispute(rid, reason), expect, apply,
                     touches=[rid], gated=[(sender, BUYER)])

    @rule(item=TARGET, actor=ACTOR)
    def cancel(self, item, actor):
        rid = self.pick(item, lambda r: r.status in ("Registered", "Disputed"))
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.holder])
        expect = (
            Expect()
            .stage(*self.gate((sender, SUPPLIER)))
            .stage((rec is None, "UnknownReceivable"))
            .stage((rec is not None and rec.holder != sender, "NotHolder"))
            .stage((rec is not None and rec.status not in ("Registered", "Disputed"), "UnexpectedStatus"))
        )

        def apply():
            rec.status = "Cancelled"
            rec.holder = None

        self.attempt("cancel", sender, self.chain.registry.functions.cancel(rid), expect, apply,
                     touches=[rid], gated=[(sender, SUPPLIER)])

    # ------------------------------------------------------------------ moving confirmed receivables
    @rule(
        item=TARGET,
        actor=ACTOR,
        parts=st.sampled_from([2, 2, 3, 1]),
        weights=st.lists(st.integers(1, 5), min_size=3, max_size=3),
        recipients=st.lists(HOLDER_PICK, min_size=3, max_size=3),
        defect=st.sampled_from([None, None, None, "mismatch", "zero", "lengths"]),
    )
    def split(self, item, actor, parts, weights, recipients, defect):
        rid = self.pick(item, lambda r: r.status == "Confirmed" and r.repaid == 0 and r.delinquency == "None")
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.holder])
        total = rec.amount if rec else 1_000
        shares = weights[:parts]
        amounts = [total * w // sum(shares) for w in shares[:-1]]
        amounts.append(total - sum(amounts))
        if defect == "mismatch":
            amounts[-1] += 1
        elif defect == "zero":
            amounts[0] = 0
        holders = recipients[:parts]
        if defect == "lengths":
            holders = recipients[: parts + 1] if parts < 3 else recipients[:2]
        status = rec.status if rec else "None"
        inactive_recipient = next((h for h in holders if not self.active(h, HOLDER)), None)
        expect = (
            Expect()
            .stage(*self.gate((sender, HOLDER)))
            .stage((rec is None, "UnknownReceivable"))
            .stage((rec is not None and rec.holder != sender, "NotHolder"))
            .stage((not 2 <= parts <= 100 or len(holders) != parts, "InvalidSplit"))
            .stage((status != "Confirmed", "NotConfirmed"))
            .stage((rec is not None and rec.repaid != 0, "AlreadyPartlyRepaid"))
            .stage((rec is not None and rec.delinquency != "None", "Delinquent"))
            .stage((0 in amounts, "ZeroAmount"))
            .stage((sum(amounts) != total, "SplitAmountMismatch"))
            .stage((inactive_recipient is not None, "ParticipantNotActive"))
        )
        children = [child_receivable_id(rid, i) for i in range(parts)]
        addresses = [self.chain.addresses[h] for h in holders]

        def apply():
            rec.status = "Split"
            rec.holder = None
            rec.children = children
            for child, amount, holder in zip(children, amounts, holders):
                self.receivables[child] = Rec(
                    child, rec.supplier, rec.buyer, amount, rec.due, rec.currency,
                    status="Confirmed", holder=holder, parent=rid,
                )

        self.attempt(f"split into {amounts} for {holders}", sender,
                     self.chain.registry.functions.split(rid, amounts, addresses), expect, apply,
                     touches=[rid, *children], gated=[(sender, HOLDER), *((h, HOLDER) for h in holders)])

    @rule(item=TARGET, actor=ACTOR, to=HOLDER_PICK)
    def transfer_receivable(self, item, actor, to):
        """ERC-721 transferFrom(holder, to, id), by the holder, by an operator it approved, or
        by anyone else."""
        rid = self.pick(item, lambda r: r.status == "Confirmed")
        rec = self.receivables.get(rid)
        owner = rec.holder if rec else None
        sender = self.who(actor, [owner, *(op for (o, op), on in self.operators.items() if on and o == owner)])
        source = owner or sender
        delegated = owner is not None and sender != owner
        authorized = sender == owner or (delegated and self.operators.get((owner, sender), False))
        ends = [(owner, HOLDER), (to, HOLDER)]
        expect = Expect()
        if owner is not None:
            expect.stage((rec.status != "Confirmed", "NotConfirmed"))
            expect.stage(*self.gate(*ends))
            if delegated:  # whoever moves someone else's receivable must be active, approved or not
                expect.stage(*self.gate((sender, ANY)))
        expect.stage((owner is None, "ERC721NonexistentToken"))
        expect.stage((not authorized, "ERC721InsufficientApproval"))

        def apply():
            rec.holder = to

        call = self.chain.registry.functions.transferFrom(self.chain.addresses[source], self.chain.addresses[to], rid)
        self.attempt(f"transfer receivable of {owner} to {to}", sender, call, expect, apply,
                     touches=[rid], gated=[*ends, (sender, ANY)] if delegated else [(sender, HOLDER), (to, HOLDER)])

    @rule(actor=st.one_of(st.sampled_from(("B0", "F0", "S0")), st.sampled_from(CAST)), spender=st.sampled_from(CAST),
          amount=st.sampled_from([1_000, 250_000, 0, MAX_UINT256]), receivables=st.booleans())
    def approve(self, actor, spender, amount, receivables):
        """ERC-20 approve, or ERC-721 setApprovalForAll (on for a non-zero `amount`): no
        participant check, as they move nothing by themselves."""
        if receivables:
            approved = amount > 0

            def apply():
                self.operators[(actor, spender)] = approved

            call = self.chain.registry.functions.setApprovalForAll(self.chain.addresses[spender], approved)
            self.attempt(f"approve operator {spender}={approved}", actor, call, Expect(), apply)
            return

        def apply():
            self.allowances[(actor, spender)] = amount

        call = self.chain.token.functions.approve(self.chain.addresses[spender], amount)
        self.attempt(f"approve {spender} for {amount}", actor, call, Expect(), apply)

    @rule(pair=st.one_of(st.integers(0, 7), st.tuples(st.sampled_from(CAST), st.sampled_from(CAST))),
          to=st.sampled_from(CAST), portion=st.sampled_from(["half", "allowed", "too much"]))
    def transfer_tokens_from(self, pair, to, portion):
        """ERC-20 transferFrom by a spender: mostly one that has an allowance."""
        if isinstance(pair, int):
            approved = [key for key, value in self.allowances.items() if value > 0]
            pair = approved[pair % len(approved)] if approved else (CAST[pair % len(CAST)], CAST[-1 - pair % len(CAST)])
        owner, spender = pair
        allowance = self.allowances.get((owner, spender), 0)
        cap = min(allowance, self.balances[owner])
        amount = {"half": cap // 2, "allowed": cap, "too much": allowance + 1 if allowance < MAX_UINT256 else 0}[portion]
        ends = [(owner, ANY), (to, ANY)]
        expect = (
            Expect()
            .stage(*self.gate((spender, ANY)))  # the spender acts: it must be an active participant
            .stage((amount > allowance, "ERC20InsufficientAllowance"))
            .stage(*self.gate(*ends))
            .stage((amount > self.balances[owner], "ERC20InsufficientBalance"))
        )

        def apply():
            if allowance != MAX_UINT256:
                self.allowances[(owner, spender)] = allowance - amount
            self.move_tokens(owner, to, amount)

        self.attempt(f"transferFrom {amount} of {owner} to {to}", spender, self.chain.token.functions.transferFrom(
            self.chain.addresses[owner], self.chain.addresses[to], amount), expect, apply,
            gated=[(spender, ANY), *ends])

    @rule(actor=st.one_of(st.sampled_from(("B0", "F0", "S0")), st.sampled_from(CAST)), to=st.sampled_from(CAST),
          portion=st.sampled_from(["some", "all", "too much"]))
    def transfer_tokens(self, actor, to, portion):
        balance = self.balances[actor]
        amount = {"some": balance // 3, "all": balance, "too much": balance + 1}[portion]
        expect = Expect().stage(*self.gate((actor, ANY), (to, ANY))).stage((amount > balance, "ERC20InsufficientBalance"))

        def apply():
            self.move_tokens(actor, to, amount)

        self.attempt(f"transfer {amount} tokens to {to}", actor, self.chain.token.functions.transfer(
            self.chain.addresses[to], amount), expect, apply, gated=[(actor, ANY), (to, ANY)])

    # ------------------------------------------------------------------ financing
    @rule(
        item=TARGET,
        actor=ACTOR,
        asking=st.sampled_from(["half", "full", "min", "zero", "over"]),
        deadline_in=st.sampled_from([3, 10, 20, 0, 120]),
        recourse=st.booleans(),
    )
    def request_financing(self, item, actor, asking, deadline_in, recourse):
        rid = self.pick(item, lambda r: r.status == "Confirmed" and self.live_request(r.rid) is None)
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.holder])
        outstanding = rec.outstanding if rec else 0
        advance = {"half": outstanding // 2, "full": outstanding, "min": 1, "zero": 0, "over": outstanding + 1}[asking]
        deadline = self.day + deadline_in
        previous = self.requests.get(rid)
        expect = (
            Expect()
            .stage(*self.gate((sender, HOLDER)))
            .stage((rec is None or rec.holder != sender, "NotHolder"))
            .stage((rec.status != "Confirmed" if rec else True, "NotConfirmed"))
            .stage((rec is not None and rec.currency != CNY, "CurrencyNotSettleable"))
            .stage((advance == 0, "ZeroAmount"))
            .stage((advance > outstanding, "AdvanceExceedsOutstanding"))
            .stage((deadline <= self.day or (rec is not None and deadline >= rec.due), "InvalidDeadline"))
            # An open request of an earlier holder is replaced; the same seller's must have expired.
            .stage((previous is not None and previous.status == "Open" and previous.seller == sender
                    and self.day < previous.deadline, "RequestAlreadyOpen"))
        )

        def apply():
            round_ = previous.round + 1 if previous else 1
            self.requests[rid] = Req(sender, advance, outstanding, deadline, "Open", recourse, round_)

        call = self.chain.financing.functions.requestFinancing(rid, advance, self.ts(deadline), recourse)
        self.attempt(f"request {advance} until day {deadline} recourse={recourse}", sender, call, expect, apply,
                     touches=[rid], gated=[(sender, HOLDER)])

    @rule(item=TARGET, actor=ACTOR)
    def cancel_request(self, item, actor):
        rid = self.pick(item, lambda r: r.rid in self.requests and self.requests[r.rid].status == "Open")
        req = self.requests.get(rid)
        sender = self.who(actor, [req and req.seller])
        expect = (
            Expect()
            .stage(*self.gate((sender, HOLDER)))
            .stage((req is None or req.status != "Open", "RequestNotOpen"))
            .stage((req is not None and req.seller != sender, "NotSeller"))
        )

        def apply():
            req.status = "Cancelled"

        self.attempt("cancel request", sender, self.chain.financing.functions.cancelRequest(rid), expect, apply,
                     touches=[rid], gated=[(sender, HOLDER)])

    @rule(item=TARGET, actor=st.sampled_from(CAST))
    def expire_request(self, item, actor):
        """Open to anyone by design (it only records what the clock already says), so it is
        not an inactive participant's action in the sense of invariant 4."""
        rid = self.pick(item, lambda r: r.rid in self.requests and self.requests[r.rid].status == "Open"
                        and self.requests[r.rid].deadline <= self.day)
        req = self.requests.get(rid)
        expect = (
            Expect()
            .stage((self.paused, "EnforcedPause"))
            .stage((req is None or req.status != "Open", "RequestNotOpen"))
            .stage((req is not None and self.day < req.deadline, "RequestNotExpired"))
        )

        def apply():
            req.status = "Expired"

        self.attempt("expire request", actor, self.chain.financing.functions.expireRequest(rid), expect, apply,
                     touches=[rid])

    @rule(
        item=TARGET,
        actor=ACTOR,
        advance=st.sampled_from(["asking", "mid", "outstanding", "below", "above"]),
        expiry=st.sampled_from(["soon", "later", "deadline", "now", "after"]),
    )
    def make_offer(self, item, actor, advance, expiry):
        rid = self.pick(item, lambda r: self.live_request(r.rid) is not None)
        req = self.requests.get(rid)
        sender = self.who(actor, [f for f in FINANCIERS if not req or f != req.seller])
        asking, cap, deadline = (req.asking, req.outstanding, req.deadline) if req else (0, 0, self.day)
        amount = {"asking": asking, "mid": (asking + cap) // 2, "outstanding": cap,
                  "below": asking - 1, "above": cap + 1}[advance]
        amount = max(amount, 0)
        expiry_day = {"soon": self.day + 1, "later": self.day + 5, "deadline": deadline, "now": self.day,
                      "after": deadline + 1}[expiry]
        expect = (
            Expect()
            .stage(*self.gate((sender, FINANCIER)))
            .stage((req is None or req.status != "Open", "RequestNotOpen"))
            .stage((req is not None and req.deadline <= self.day, "RequestDeadlinePassed"))
            .stage((req is not None and req.seller == sender, "SelfFinancing"))
            .stage((amount < asking, "AdvanceBelowAsking"))
            .stage((amount > cap, "AdvanceExceedsOutstanding"))
            .stage((expiry_day <= self.day or expiry_day > deadline, "InvalidExpiry"))
        )

        def apply():
            self.offers[(rid, sender)] = Offer(amount, expiry_day, req.round)

        call = self.chain.financing.functions.makeOffer(rid, amount, self.ts(expiry_day))
        self.attempt(f"offer {amount} until day {expiry_day}", sender, call, expect, apply,
                     touches=[rid], gated=[(sender, FINANCIER)])

    @rule(item=TARGET, actor=ACTOR)
    def withdraw_offer(self, item, actor):
        rid = self.pick(item, lambda r: any(self.open_offer(r.rid, f) for f in FINANCIERS))
        sender = self.who(actor, [f for f in FINANCIERS if self.open_offer(rid, f)])
        offer = self.open_offer(rid, sender)
        expect = Expect().stage(*self.gate((sender, FINANCIER))).stage((offer is None, "NoOpenOffer"))

        def apply():
            offer.status = "Withdrawn"

        self.attempt("withdraw offer", sender, self.chain.financing.functions.withdrawOffer(rid), expect, apply,
                     touches=[rid], gated=[(sender, FINANCIER)])

    def _settlement_checks(self, expect: Expect, rec: Rec | None, req: Req, financier: str, advance: int) -> None:
        """`Financing._settle`: pay first, then the registry moves the receivable, which must
        still be owed what it was when the request was made (offers were priced on that)."""
        (
            expect.stage((self.balances[financier] < advance, "ERC20InsufficientBalance"))
            .stage((rec is None or rec.status != "Confirmed", "NotConfirmed"))
            .stage((rec.holder != req.seller if rec else True, "NotHolder"))
            .stage((rec is not None and rec.outstanding != req.outstanding, "StaleRequest"))
        )

    def _apply_settlement(self, rid: int, req: Req, financier: str, advance: int) -> None:
        req.status = "Funded"
        self.move_tokens(financier, req.seller, advance)
        self.receivables[rid].holder = financier
        self.financings.setdefault(rid, []).append((req.seller, financier, req.recourse))

    @rule(item=TARGET, actor=ACTOR, financier=st.one_of(st.sampled_from(FINANCIERS), st.sampled_from(CAST)),
          stale_quote=st.sampled_from([False, False, False, True]))
    def accept_offer(self, item, actor, financier, stale_quote=False):
        rid = self.pick(item, lambda r: self.live_request(r.rid) is not None
                        and any(self.open_offer(r.rid, f) for f in FINANCIERS))
        req = self.requests.get(rid)
        rec = self.receivables.get(rid)
        sender = self.who(actor, [req and req.seller])
        if isinstance(actor, tuple):  # the right seller accepts an offer that is there
            financier = next((f for f in FINANCIERS if self.open_offer(rid, f)), financier)
        offer = self.open_offer(rid, financier)
        # The seller names the advance it accepts: an offer revised since then must not settle.
        quote = (offer.advance if offer else 0) + (1 if stale_quote else 0)
        expect = (
            Expect()
            .stage((req is None or req.status != "Open", "RequestNotOpen"))
            .stage((req is not None and req.deadline <= self.day, "RequestDeadlinePassed"))
            .stage(*self.gate((sender, HOLDER), (financier, FINANCIER)))
            .stage((req is not None and req.seller != sender, "NotSeller"))
            .stage((offer is None, "NoOpenOffer"))
            .stage((offer is not None and offer.advance != quote, "OfferChanged"))
            .stage((offer is not None and offer.expiry <= self.day, "OfferExpired"))
        )
        if expect.ok:
            self._settlement_checks(expect, rec, req, financier, offer.advance)

        def apply():
            del self.offers[(rid, financier)]
            self._apply_settlement(rid, req, financier, offer.advance)

        self.attempt(f"accept offer of {financier} at {quote}", sender, self.chain.financing.functions.acceptOffer(
            rid, self.chain.addresses[financier], quote), expect, apply, touches=[rid],
            settles=(rid, req.round, financier) if expect.ok else None,
            gated=[(sender, HOLDER), (financier, FINANCIER)])

    @rule(item=TARGET, actor=ACTOR)
    def fund_request(self, item, actor):
        rid = self.pick(item, lambda r: self.live_request(r.rid) is not None)
        req = self.requests.get(rid)
        rec = self.receivables.get(rid)
        sender = self.who(actor, [f for f in FINANCIERS if not req or f != req.seller])
        expect = (
            Expect()
            .stage((req is None or req.status != "Open", "RequestNotOpen"))
            .stage((req is not None and req.deadline <= self.day, "RequestDeadlinePassed"))
            .stage((req is not None and req.seller == sender, "SelfFinancing"))
        )
        if req is not None:
            expect.stage(*self.gate((req.seller, HOLDER), (sender, FINANCIER)))
        if expect.ok:
            self._settlement_checks(expect, rec, req, sender, req.asking)

        def apply():
            self._apply_settlement(rid, req, sender, req.asking)

        self.attempt("fund request", sender, self.chain.financing.functions.fundRequest(rid), expect, apply,
                     touches=[rid], settles=(rid, req.round, sender) if expect.ok else None,
                     gated=[(sender, FINANCIER)] + ([(req.seller, HOLDER)] if req else []))

    # ------------------------------------------------------------------ servicing
    @rule(item=TARGET, actor=ACTOR, portion=st.sampled_from(["full", "part", "one", "zero", "over"]))
    def repay(self, item, actor, portion):
        rid = self.pick(item, lambda r: r.status == "Confirmed")
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.buyer])
        outstanding = rec.outstanding if rec else 0
        amount = {"full": outstanding, "part": outstanding // 3, "one": 1, "zero": 0, "over": outstanding + 1}[portion]
        expect = (
            Expect()
            .stage(*self.gate((sender, BUYER)))
            .stage((amount == 0, "ZeroAmount"))
            .stage((rec is None or rec.buyer != sender, "NotBuyer"))
            .stage((rec is not None and rec.currency != CNY, "CurrencyMismatch"))  # only settlement-currency ones
            .stage((rec.status != "Confirmed" if rec else True, "NotConfirmed"))
            .stage((amount > outstanding, "RepaymentExceedsOutstanding"))
            .stage((rec is not None and rec.holder is not None and not self.active(rec.holder, ANY), "ParticipantNotActive"))
            .stage((self.balances[sender] < amount, "ERC20InsufficientBalance"))
        )

        def apply():
            rec.repaid += amount
            if rec.outstanding == 0:
                rec.status = "Repaid"
            if rec.delinquency == "Defaulted" and self.liabilities.get(rid, 0) > rec.outstanding:
                self.liabilities[rid] = rec.outstanding
            self.move_tokens(sender, rec.holder, amount)

        self.attempt(f"repay {amount}", sender, self.chain.financing.functions.repay(rid, amount), expect, apply,
                     touches=[rid], gated=[(sender, BUYER)])

    @rule(item=TARGET, actor=ACTOR)
    def mark_overdue(self, item, actor):
        grace = self.chain.grace_days
        rid = self.pick(item, lambda r: r.status == "Confirmed" and r.delinquency == "None" and self.day >= r.due + grace)
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.holder])
        expect = (
            Expect()
            .stage(*self.gate((sender, HOLDER)))
            .stage((rec is None or rec.holder != sender, "NotHolder"))
            .stage((rec.status != "Confirmed" if rec else True, "NotConfirmed"))
            .stage((rec is not None and rec.delinquency != "None", "Delinquent"))
            .stage((rec is not None and self.day < rec.due + grace, "NotYetOverdue"))
        )

        def apply():
            rec.delinquency = "Overdue"

        self.attempt("mark overdue", sender, self.chain.financing.functions.markOverdue(rid), expect, apply,
                     touches=[rid], gated=[(sender, HOLDER)])

    @rule(item=TARGET, actor=ACTOR)
    def mark_defaulted(self, item, actor):
        wait = self.chain.grace_days + self.chain.default_days
        rid = self.pick(item, lambda r: r.status == "Confirmed" and r.delinquency == "Overdue")
        rec = self.receivables.get(rid)
        sender = self.who(actor, [rec and rec.holder])
        expect = (
            Expect()
            .stage(*self.gate((sender, HOLDER)))
            .stage((rec is None or rec.holder != sender, "NotHolder"))
            .stage((rec.status != "Confirmed" if rec else True, "NotConfirmed"))
            .stage((rec is not None and rec.delinquency != "Overdue", "Delinquent"))
            .stage((rec is not None and self.day < rec.due + wait, "NotYetDefaultable"))
        )

        def apply():
            rec.delinquency = "Defaulted"
            seller = self.recourse_seller(rid)
            if seller is not None and seller != sender:
                self.liabilities[rid] = rec.outstanding

        self.attempt("mark defaulted", sender, self.chain.financing.functions.markDefaulted(rid), expect, apply,
                     touches=[rid], gated=[(sender, HOLDER)])

    @rule(item=TARGET, actor=ACTOR)
    def settle_recourse(self, item, actor):
        rid = self.pick(item, lambda r: self.liabilities.get(r.rid, 0) > 0)
        rec = self.receivables.get(rid)
        liability = self.liabilities.get(rid, 0)
        sender = self.who(actor, [self.recourse_seller(rid)])
        expect = Expect().stage((liability == 0 or self.recourse_seller(rid) != sender, "NoRecourseLiability"))
        if expect.ok:
            (
                expect.stage(*self.gate((sender, HOLDER), (rec.holder, HOLDER)))
                .stage((rec.outstanding < liability, "LiabilityExceedsOutstanding"))
                .stage((self.balances[sender] < liability, "ERC20InsufficientBalance"))
                .stage((rec.status != "Confirmed", "NotConfirmed"))
            )

        def apply():
            # The financing is unwound; the one before it, if with recourse, now binds its seller.
            req = self.requests[rid]
            if req.status == "Funded":
                req.status = "Unwound"
            self.financings[rid].pop()
            self.liabilities[rid] = 0
            self.move_tokens(sender, rec.holder, liability)
            rec.holder = sender
            earlier = self.recourse_seller(rid)
            if earlier is not None and earlier != sender:
                self.liabilities[rid] = rec.outstanding

        self.attempt("settle recourse", sender, self.chain.financing.functions.settleRecourse(rid), expect, apply,
                     touches=[rid], gated=[(sender, HOLDER)])

    # ------------------------------------------------------------------ the operator and the clock
    @rule(account=st.one_of(st.just("a suspended one"), st.sampled_from(CAST)),
          by=st.one_of(st.just("OP"), st.sampled_from(CAST)), lift=st.booleans())
    def suspend_or_reinstate(self, account, by, lift):
        if account == "a suspended one":
            account = min(self.suspended, default="SX")
        onboarded = account in ROLES
        expect = (
            Expect()
            .stage((by != "OP", "AccessControlUnauthorizedAccount"))
            .stage((self.paused, "EnforcedPause"))
            .stage((not onboarded, "NotOnboarded"))
        )
        if lift:
            expect.stage((account not in self.suspended, "NotSuspended"))
            call = self.chain.participants.functions.reinstate(self.chain.addresses[account])
        else:
            expect.stage((account in self.suspended, "AlreadySuspended"))
            call = self.chain.participants.functions.suspend(self.chain.addresses[account], b"\x03" * 32)

        def apply():
            (self.suspended.discard if lift else self.suspended.add)(account)

        self.attempt(f"{'reinstate' if lift else 'suspend'} {account}", by, call, expect, apply,
                     gated=[(by, OPERATOR)])

    @rule(data=st.data(), by=st.one_of(st.just("OP"), st.sampled_from(CAST)))
    def while_paused(self, data, by):
        """The operator pauses the platform, one action is attempted, the operator unpauses
        (kept to one step so that most of a run happens unpaused). A participant trying to
        pause, or a second pause, is refused."""
        participants = self.chain.participants.functions
        self.attempt("pause", by, participants.pause(), Expect().stage(
            (by != "OP", "AccessControlUnauthorizedAccount")), lambda: setattr(self, "paused", True),
            gated=[(by, OPERATOR)])
        if not self.paused:
            return
        self.attempt("pause again", "OP", participants.pause(), Expect().stage((True, "EnforcedPause")))
        name = data.draw(st.sampled_from(sorted(PAUSABLE_ACTIONS)), label="action while paused")
        args = {arg: data.draw(strategy, label=arg) for arg, strategy in PAUSABLE_ACTIONS[name].items()}
        getattr(self, name)(**args)
        self.attempt("unpause", "OP", participants.unpause(), Expect(), lambda: setattr(self, "paused", False))
        self.attempt("unpause again", "OP", participants.unpause(), Expect().stage((True, "ExpectedPause")))

    @rule(days=st.sampled_from([1, 4, 12, 30, 45]))
    def travel(self, days):
        self.day += days
        self.chain.tester.time_travel(self.ts(self.day) + HALF_DAY)

    # ------------------------------------------------------------------ guided progress
    def _advance(self, k: int, choice: int) -> None:
        """Take a live receivable one step along its life, by the right participant and through
        the same predicted-and-checked rules (which still refuse, and check the refusal, when
        the step is not possible, e.g. its participant is suspended). Without this a run of
        uniformly chosen rules rarely gets past registration."""
        live = [rid for rid, r in self.receivables.items() if r.status in ("Registered", "Disputed", "Confirmed")]
        if not live or choice == 11:
            self.register(SUPPLIERS[k % 3], BUYERS[k % 2], [100_000, 250_000, 1_000_000][choice % 3],
                          (30, 60)[choice % 2], False, None)
            return
        # Half the time the one furthest along, so that runs get deep into financing.
        def progress(rid: int) -> int:
            rec = self.receivables[rid]
            return ((rec.status == "Confirmed") + (self.live_request(rid) is not None) + 2 * (rid in self.requests)
                    + 3 * (rec.delinquency != "None"))

        ranked = sorted(live, key=progress, reverse=True)
        rid = ranked[0] if k < 4 else ranked[k % len(ranked)]
        rec, item, right = self.receivables[rid], self.rid_list().index(rid), (RIGHT, choice)
        if rec.status == "Registered":
            self.dispute(item, right, 3) if choice == 0 else self.confirm(item, right)
            return
        if rec.status == "Disputed":
            self.cancel(item, right) if choice == 0 else self.confirm(item, right)
            return
        req = self.requests.get(rid)
        if self.live_request(rid):
            offered = any(self.open_offer(rid, f) for f in FINANCIERS)
            if offered and choice < 5:
                self.accept_offer(item, right, FINANCIERS[0])
            elif offered and choice == 5:
                self.withdraw_offer(item, right)
            elif choice == 6:
                self.cancel_request(item, right)
            elif choice < 9:
                self.make_offer(item, right, ("asking", "mid")[choice % 2], ("soon", "deadline")[choice % 2])
            else:
                self.fund_request(item, right)
            return
        if req is not None and req.status == "Open" and choice < 6:
            self.expire_request(item, CAST[choice % len(CAST)])
            return
        overdue_at = rec.due + self.chain.grace_days
        defaultable_at = overdue_at + self.chain.default_days
        if rec.delinquency == "Overdue":
            if choice < 2:
                self.repay(item, right, "part")
                return
            if self.day < defaultable_at:
                self.travel(defaultable_at - self.day)
            self.mark_defaulted(item, right)
            return
        if rec.delinquency == "Defaulted":
            if self.liabilities.get(rid) and choice < 8:
                self.settle_recourse(item, right)
            else:
                self.repay(item, right, ("part", "full")[choice % 2])
            return
        if choice in (0, 1, 2, 3, 10) and self.day + 10 < rec.due:
            self.request_financing(item, right, ("half", "full")[choice % 2], 10, choice < 3)
        elif choice in (4, 5):
            self.split(item, right, 2, [1, 2, 1], [rec.holder or "S1", HOLDERS[k % len(HOLDERS)], "S2"], None)
        elif choice == 6:
            self.transfer_receivable(item, right, HOLDERS[k % len(HOLDERS)])
        elif choice in (7, 8):
            self.repay(item, right, ("part", "full")[choice % 2])
        else:
            if self.day < overdue_at:
                self.travel(overdue_at - self.day)
            self.mark_overdue(item, right)

    # Hypothesis picks rules uniformly: seven copies of this one give guided progress a fair share.
    advance_1, advance_2, advance_3, advance_4, advance_5, advance_6, advance_7 = (
        _guided_advance_rule(f"advance_{copy}") for copy in range(1, 8)
    )

    # ------------------------------------------------------------------ invariants
    @invariant()
    def ledger_matches_model(self):
        chain = self.chain
        state = self.read_chain()
        expected_time = self.ts(self.day) + HALF_DAY
        drift = chain.tester.backend.chain.get_canonical_head().timestamp - expected_time
        assert abs(drift) < HALF_DAY // 2, f"the clock drifted {drift}s from the model's"


        # 1. conservation
        assert sum(state.balances.values()) == state.total_supply == self.total_minted, (
            f"INVARIANT 1 broken: balances sum {sum(state.balances.values())}, totalSupply {state.total_supply}, "
            f"minted {self.total_minted}"
        )
        assert state.balances == self.balances, f"balances {state.balances} != model {self.balances}"

        # 2. splits, and 5. every receivable as the model has it
        for rid, rec in self.receivables.items():
            got = state.receivable(rid)
            want = {
                "buyer_id": chain.participant_ids[rec.buyer], "amount": rec.amount, "repaid": rec.repaid,
                "due_date": self.ts(rec.due), "currency": rec.currency, "status": rec.status,
                "child_count": len(rec.children), "delinquency": rec.delinquency,
                "owner": int(chain.addresses[rec.holder], 16) if rec.holder else 0, "parent": rec.parent,
            }
            assert got == want, f"receivable {rid:#x}: chain {got} != model {want}"
            if rec.status == "Split":
                children = [child_receivable_id(rid, i) for i in range(got["child_count"])]
                assert children == rec.children
                total = sum(state.receivable(c)["amount"] for c in children)
                assert total == got["amount"], f"INVARIANT 2 broken: children of {rid:#x} sum to {total}, not {got['amount']}"
                assert got["owner"] == 0 and all(state.receivable(c)["parent"] == rid for c in children)
        ghost = state.receivable(GHOST_ID)
        assert ghost["status"] == "None" and ghost["owner"] == 0

        # 3. financing rounds and 5. requests, offers, recourse
        for rid in self.rid_list():
            req = self.requests.get(rid)
            got = state.request(rid)
            if req is None:
                assert state.receivables[rid][3] == 0, f"request on {rid:#x} the model does not know"
            else:
                want = {"seller_id": chain.participant_ids[req.seller], "asking": req.asking,
                        "outstanding": req.outstanding, "deadline": self.ts(req.deadline), "status": req.status,
                        "recourse": req.recourse, "round": req.round}
                assert got == want, f"request on {rid:#x}: chain {got} != model {want}"
            funded = sorted(r for i, r in self.funded_rounds if i == rid)
            assert len(funded) == len(set(funded))
            if req is not None and req.status == "Funded":
                assert req.round in funded
            if req is not None and req.status != "Funded":
                seller = self.recourse_seller(rid)
                assert state.earlier_recourse_seller_id(rid) == (chain.participant_ids[seller] if seller else 0), (
                    f"recourse seller kept for {rid:#x}: chain id {state.earlier_recourse_seller_id(rid)}, model {seller}"
                )
            assert state.liability(rid) == self.liabilities.get(rid, 0), (
                f"recourse liability on {rid:#x}: chain {state.liability(rid)} != model {self.liabilities.get(rid, 0)}"
            )
            for name in FINANCIERS:
                offer = self.offers.get((rid, name))
                word = state.offers[(rid, name)]
                if offer is None:
                    assert word == 0, f"offer by {name} on {rid:#x} the model does not know: {decode_offer(word)}"
                else:
                    assert decode_offer(word) == {"advance": offer.advance, "expiry": self.ts(offer.expiry),
                                                  "round": offer.round, "status": offer.status}

        # participants and the pause switch
        for name in CAST:
            got = decode_participant(state.participants[name])
            if name in ROLES:
                assert got == {"id": chain.participant_ids[name], "roles": ROLES[name], "suspended": name in self.suspended}
            else:
                assert got == {"id": 0, "roles": 0, "suspended": False}
        assert state.paused == self.paused
        assert state.allowances == self.allowances, f"allowances {state.allowances} != model {self.allowances}"
        assert state.operators == {k: int(v) for k, v in self.operators.items()}

        # The contracts' own views agree for what the last step touched.
        for rid in self.touched:
            self.check_views(rid)
        self.touched.clear()

    def check_views(self, rid: int) -> None:
        chain, rec = self.chain, self.receivables[rid]
        view = chain.registry.functions.getReceivable(rid).call()
        holder = chain.addresses[rec.holder] if rec.holder else "0x" + "0" * 40
        assert tuple(view) == (
            chain.addresses[rec.buyer], holder, rec.amount, rec.repaid, self.ts(rec.due), rec.currency,
            STATUS[rec.status], DELINQUENCY[rec.delinquency], rec.parent,
        ), f"getReceivable({rid:#x}) = {view}"
        if rec.status == "Split":
            assert chain.registry.functions.childrenOf(rid).call() == rec.children
        req = self.requests.get(rid)
        if req is not None:
            (_, asking, outstanding, deadline, status, recourse, round_), seller = (
                chain.financing.functions.getRequest(rid).call()
            )
            assert (seller, asking, outstanding, deadline, REQUEST_NAME[status], recourse, round_) == (
                chain.addresses[req.seller], req.asking, req.outstanding, self.ts(req.deadline), req.status,
                req.recourse, req.round,
            )
        assert chain.financing.functions.recourseLiability(rid).call() == self.liabilities.get(rid, 0)

    def teardown(self):
        chain = self.chain
        assert chain.token.functions.totalSupply().call() == self.total_minted
        for name, address in chain.addresses.items():
            assert chain.token.functions.balanceOf(address).call() == self.balances[name], name


# Actions a paused platform must refuse, with the arguments `while_paused` draws for them.
PAUSABLE_ACTIONS: dict[str, dict[str, Any]] = {}


def _pausable_actions() -> None:
    # RULE_MARKER: where hypothesis keeps the strategies each @rule was declared with.
    for name in ("register", "confirm", "dispute", "cancel", "split", "transfer_receivable", "transfer_tokens",
                 "transfer_tokens_from",
                 "request_financing", "cancel_request", "expire_request", "make_offer", "withdraw_offer",
                 "accept_offer", "fund_request", "repay", "mark_overdue", "mark_defaulted", "settle_recourse",
                 "suspend_or_reinstate"):
        PAUSABLE_ACTIONS[name] = dict(getattr(getattr(LedgerMachine, name), RULE_MARKER).arguments)


_pausable_actions()

# ---------------------------------------------------------------------- running it

settings.register_profile(
    "ledger-ci",
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,  # the same sequences on every run, so CI failures reproduce
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "ledger-deep",  # ANCHORLINE_LEDGER_PROFILE=ledger-deep: random, longer, many more runs
    parent=settings.get_profile("ledger-ci"),
    max_examples=300,
    stateful_step_count=50,
    derandomize=False,
)


def ledger_settings() -> settings:
    return settings.get_profile(os.environ.get("ANCHORLINE_LEDGER_PROFILE", "ledger-ci"))


def test_ledger_invariants_hold_under_random_actions(property_chain):
    LedgerMachine.chain = property_chain
    run_state_machine_as_test(LedgerMachine, settings=ledger_settings())


# ---------------------------------------------------------------------- replays of what the model found
#
# Each replays, through the same machine (its predictions and invariants after every step), the
# shortest sequence that showed the contracts departing from their own documentation. A strict
# xfail marks one the contracts still get wrong: once fixed it turns XPASS (a failure), so the
# marker comes off and the sequence stays as a regression test.


def replay(chain: PropertyChain, steps: list[tuple[str, dict[str, Any]]]) -> None:
    LedgerMachine.chain = chain
    machine = LedgerMachine()
    machine.ledger_matches_model()
    for name, kwargs in steps:
        getattr(machine, name)(**kwargs)
        machine.ledger_matches_model()
    machine.teardown()


FIRST = 0  # `item`: the first receivable registered
THE_RIGHT_ONE = (RIGHT, 0)  # `actor`: whoever the model says should act


def _register_confirmed(amount: int = 1_000_000) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("register", dict(supplier="S0", buyer="B0", amount=amount, due_in=60, reuse_number=False, defect=None)),
        ("confirm", dict(item=FIRST, actor=THE_RIGHT_ONE)),
    ]


def _sold(to: str, recourse: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The holder asks for half the face value, `to` funds it."""
    return [
        ("request_financing", dict(item=FIRST, actor=THE_RIGHT_ONE, asking="half", deadline_in=10, recourse=recourse)),
        ("fund_request", dict(item=FIRST, actor=to)),
    ]


DEFAULTED = [
    ("travel", dict(days=65)),  # due on day 60, overdue after the 5-day grace period
    ("mark_overdue", dict(item=FIRST, actor=THE_RIGHT_ONE)),
    ("travel", dict(days=30)),  # defaultable after 30 more days
    ("mark_defaulted", dict(item=FIRST, actor=THE_RIGHT_ONE)),
]
BOUGHT_BACK = ("settle_recourse", dict(item=FIRST, actor=THE_RIGHT_ONE))


def test_recourse_survives_the_financier_relisting(property_chain):
    """Found by this model: recourse used to be read off the current request, so a financier
    re-listing a recourse-financed receivable (and withdrawing) released the original seller."""
    replay(property_chain, [
        *_register_confirmed(),
        *_sold("F0"),
        # F0, now the holder, lists it again and withdraws.
        ("request_financing", dict(item=FIRST, actor=THE_RIGHT_ONE, asking="full", deadline_in=10, recourse=False)),
        ("cancel_request", dict(item=FIRST, actor=THE_RIGHT_ONE)),
        *DEFAULTED,  # S0 now owes F0 1,000,000
        BOUGHT_BACK,  # S0 buys it back
        ("repay", dict(item=FIRST, actor=THE_RIGHT_ONE, portion="full")),  # and B0 pays S0
    ])


def test_recourse_passes_down_a_chain_of_two(property_chain):
    """S0 sells to F0, F0 to F1, both with recourse; F1's default makes F0 liable, and once F0
    buys it back, S0 is liable to F0."""
    replay(property_chain, [*_register_confirmed(), *_sold("F0"), *_sold("F1"), *DEFAULTED, BOUGHT_BACK, BOUGHT_BACK])


def test_recourse_passes_down_a_chain_of_three(property_chain):
    """Found by this model: Financing used to remember one earlier financing only, so in the
    chain S0 -> F0 -> F1 -> F0 the buy-backs of F1 and then F0 left S0 liable to nobody."""
    replay(property_chain, [
        *_register_confirmed(), *_sold("F0"), *_sold("F1"), *_sold("F0"),
        *DEFAULTED,  # F1 owes F0
        BOUGHT_BACK,  # F1 pays F0 and takes it: F0 owes F1 (F0 sold it to F1 with recourse)
        BOUGHT_BACK,  # F0 pays F1 and takes it: S0 should owe F0 (S0 sold it to F0 with recourse)
        BOUGHT_BACK,  # S0 pays F0 and takes it
    ])


@pytest.mark.parametrize("steps", [
    pytest.param([
        ("approve", dict(actor="B0", spender="F1", amount=1_000, receivables=False)),
        ("suspend_or_reinstate", dict(account="F1", by="OP", lift=False)),
        ("transfer_tokens_from", dict(pair=("B0", "F1"), to="S0", portion="allowed")),
    ], id="erc20-suspended-spender"),
    pytest.param([
        ("approve", dict(actor="B0", spender="NX", amount=1_000, receivables=False)),
        ("transfer_tokens_from", dict(pair=("B0", "NX"), to="S0", portion="allowed")),
    ], id="erc20-never-onboarded-spender"),
    pytest.param([
        *_register_confirmed(),
        ("approve", dict(actor="S0", spender="F1", amount=1, receivables=True)),
        ("suspend_or_reinstate", dict(account="F1", by="OP", lift=False)),
        ("transfer_receivable", dict(item=FIRST, actor="F1", to="S2")),
    ], id="erc721-suspended-operator"),
])
def test_delegated_transfers_need_an_active_spender(property_chain, steps):
    """Found by this model: the token and the registry used to check only the two ends of a
    transfer, so a spender or operator approved before its suspension (or never onboarded)
    still moved other participants' tokens and receivables."""
    replay(property_chain, steps)
