"""A complete receivable lifecycle on the devnet, for `anchorline up`: it shows, with
transaction hashes and blocks, what the contracts do before the API and portal exist.

Re-runnable on the same chain: participants already onboarded are left as they are, and each
run uses a fresh invoice number and fresh deposit references.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from backend.chain import client as ledger
from backend.chain.client import BUYER, DAY, FINANCIER, SUPPLIER, LedgerClient

FACE_AMOUNT = 100_000_00  # 100,000.00 in minor units
ASKING, OFFERED = 95_000_00, 96_500_00


@dataclass(frozen=True)
class Step:
    what: str
    tx_hash: str
    block: int


def run_lifecycle(
    chain: LedgerClient, operator: LocalAccount, supplier: LocalAccount, buyer: LocalAccount, financier: LocalAccount
) -> list[Step]:
    """Onboard (if needed) and fund the three parties, then register -> confirm -> request ->
    offer -> accept -> repay one invoice. Returns the timeline."""
    steps: list[Step] = []
    run = str(time.time_ns())

    def act(what: str, account: LocalAccount, call: object) -> None:
        receipt = chain.send(account, call)
        steps.append(Step(what, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"]))

    for account, roles, name in ((supplier, SUPPLIER, "supplier"), (buyer, BUYER, "buyer"), (financier, FINANCIER, "financier")):
        if chain.participants.functions.participantOf(account.address).call()[0] == 0:
            org_ref = hashlib.sha256(f"demo {name}".encode()).digest()
            act(f"operator onboards the {name}", operator, chain.participants.functions.onboard(account.address, roles, org_ref))
    for account, name in ((financier, "financier"), (buyer, "buyer")):
        deposit = hashlib.sha256(f"demo deposit {name} {run}".encode()).digest()
        act(f"operator mints {FACE_AMOUNT / 100:,.2f} for the {name}", operator,
            chain.token.functions.mint(account.address, FACE_AMOUNT, deposit))

    now = chain.now()
    number = f"DEMO-{run}"
    entry = ledger.registration(
        buyer.address, amount=FACE_AMOUNT, currency=chain.token.functions.currency().call().decode(),
        issue_date=now - DAY, due_date=now + 90 * DAY, invoice_number=number,
        document_sha256=hashlib.sha256(f"invoice document {number}".encode()).digest(),
    )
    receivable = ledger.receivable_id(supplier.address, buyer.address, entry[5])
    act(f"supplier registers invoice {number}", supplier, chain.registry.functions.register(entry))
    act("buyer confirms the payable", buyer, chain.registry.functions.confirm(receivable))
    act(f"supplier asks for at least {ASKING / 100:,.2f}", supplier,
        chain.financing.functions.requestFinancing(receivable, ASKING, now + 30 * DAY, False))
    act(f"financier offers {OFFERED / 100:,.2f}", financier,
        chain.financing.functions.makeOffer(receivable, OFFERED, now + 20 * DAY))
    act("supplier accepts: tokens and receivable swap hands", supplier,
        chain.financing.functions.acceptOffer(receivable, financier.address, OFFERED))
    act(f"buyer repays {FACE_AMOUNT / 100:,.2f} to the financier", buyer,
        chain.financing.functions.repay(receivable, FACE_AMOUNT))
    return steps
