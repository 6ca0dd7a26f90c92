"""Several submitter processes at once (on PostgreSQL: row locks with SKIP LOCKED; on SQLite:
one pass at a time under the outbox lock) never sign one intent twice and leave no nonce gap."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flask import Flask

from backend.extensions import db
from backend.models import ChainTransactionStatus
from backend.security.keystore import MASTER_SECRET_ENV
from tests.outbox_fixtures import (
    TEST_MASTER_SECRET,
    OutboxChain,
    Participants,
    queue_mint,
    queue_registration,
    run_until_answered,
)

Status = ChainTransactionStatus
SUBMITTERS = 3
PROCESS_TIMEOUT_SECONDS = 120

# Each process waits for the start file (so they begin together), then runs submitter passes
# until nothing is left to sign or send.
SUBMITTER = """
import sys, time
from pathlib import Path
from sqlalchemy import func, select
from backend.app import create_app
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus
from workers.celery_app import TransientError
from workers.outbox import submit_queued_once

app = create_app()
start = Path(sys.argv[1])
while not start.exists():
    time.sleep(0.01)
pending = (ChainTransactionStatus.QUEUED, ChainTransactionStatus.SIGNED)
signed = 0
while True:
    try:
        signed += submit_queued_once(app).signed
    except TransientError:
        time.sleep(0.2)
    with app.app_context():
        left = db.session.scalar(select(func.count()).select_from(ChainTransaction)
                                 .where(ChainTransaction.status.in_(pending)))
    if not left:
        break
print("signed", signed)
"""


def test_several_submitters_sign_each_intent_once_with_consecutive_nonces(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, tmp_path: Path):
    w3 = outbox_chain.ledger.w3
    batching, single = participants.suppliers[0], participants.suppliers[1]
    operator = outbox_chain.operator.address
    before = {account: w3.eth.get_transaction_count(account, "pending")
              for account in (batching.chain_address, single.chain_address, operator)}
    rows = [queue_registration(batching, participants.buyer) for _ in range(15)]
    for _ in range(15):  # tried once already: each goes on its own, so its supplier's nonces contend
        row = queue_registration(single, participants.buyer)
        row.attempts = 1
        rows.append(row)
    rows += [queue_mint(participants.financier) for _ in range(20)]
    db.session.commit()
    ids = [row.id for row in rows]

    start = tmp_path / "start"
    environment = {**os.environ, "DATABASE_URL": outbox_app.config["DATABASE_URL"],
                   "ETH_RPC_URL": outbox_chain.node.rpc_url,
                   "ANCHORLINE_DEPLOYMENTS": str(outbox_chain.deployments_dir),
                   "ANCHORLINE_INSTANCE": outbox_app.instance_path, MASTER_SECRET_ENV: TEST_MASTER_SECRET}
    processes = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(start)], env=environment,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(SUBMITTERS)]
    time.sleep(1.0)  # imports done, each waiting at the start line
    start.touch()
    signed_by_each = []
    for process in processes:
        output, _ = process.communicate(timeout=PROCESS_TIMEOUT_SECONDS)
        assert process.returncode == 0, output.decode()
        signed_by_each.append(int(output.decode().split("signed ")[-1]))

    answered = run_until_answered(outbox_app, ids)

    carriers = {row.carried_by for row in answered if row.carried_by is not None}
    transactions = [row for row in (*answered, *carriers) if row.tx_hash is not None]
    assert all(row.status == Status.MINED for row in transactions), transactions
    assert all(row.status in (Status.MINED, Status.BATCHED) for row in answered)
    assert sum(len(carrier.args[0]) for carrier in carriers) == 15  # each batched registration once
    assert sum(signed_by_each) == len(transactions)  # each transaction signed by one process, once
    for account, first_nonce in before.items():
        nonces = sorted(row.nonce for row in transactions if row.sender == account)
        assert nonces == list(range(first_nonce, first_nonce + len(nonces))), account  # no gap, no repeat
        assert w3.eth.get_transaction_count(account) == first_nonce + len(nonces)  # nothing signed twice
    assert len([row for row in transactions if row.sender == single.chain_address]) == 15
    assert len([row for row in transactions if row.sender == operator]) == 20
