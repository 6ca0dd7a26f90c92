"""Alerts on settlement-token movements (backend/services/aml.py): a large movement, a large
amount structured into pieces under the line within the window, movements that raise nothing,
reviews, and who may read and review."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from backend.extensions import db
from backend.models import Organisation, Role
from backend.services import aml
from backend.services.aml import AlertKind
from backend.services.errors import InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories
from tests.api_support import caller
from tests.domain_factories import assert_refused, last_audit_entry

LINE = 200_000_000  # the configuration's default: 2,000,000.00
ZERO = "0x" + "0" * 40
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
def accounts(db_session: Any) -> dict[str, Organisation]:
    return {"payer": factories.organisation(Role.BUYER), "payee": factories.organisation(Role.SUPPLIER),
            "operator": factories.operator()}


def test_ordinary_movements_raise_no_alert(accounts: dict[str, Any]) -> None:
    payer, payee = accounts["payer"].chain_address, accounts["payee"].chain_address
    factories.token_movement(ZERO, payer, LINE - 1, START)  # a deposit just under the line
    factories.token_movement(payer, payee, LINE // 2 - 1, START)  # too small to be a piece
    # Two pieces, and a third outside the window: not structured.
    factories.token_movement(payer, payee, LINE // 2, START + timedelta(hours=1))
    factories.token_movement(payer, payee, LINE // 2, START + timedelta(hours=2))
    factories.token_movement(payer, payee, LINE // 2, START + timedelta(hours=25, seconds=1))

    assert aml.token_alerts(accounts["operator"]) == []


def test_a_large_movement_and_a_large_deposit(accounts: dict[str, Any]) -> None:
    payer, payee = accounts["payer"].chain_address, accounts["payee"].chain_address
    deposit = factories.token_movement(ZERO, payer, LINE, START)
    payment = factories.token_movement(payer, payee, LINE + 1, START + timedelta(minutes=5))

    first, second = aml.token_alerts(accounts["operator"])

    assert (first.kind, first.account, first.organisation_id, first.total_minor) == \
        (AlertKind.LARGE_MOVEMENT, payer, accounts["payer"].id, LINE)
    assert first.key == f"large_movement:{deposit.tx_hash}:{deposit.log_index}"
    assert (second.kind, second.movements[0].counterparty, second.total_minor) == \
        (AlertKind.LARGE_MOVEMENT, payee, LINE + 1)
    assert second.key == f"large_movement:{payment.tx_hash}:{payment.log_index}"
    assert (first.status, second.status) == ("open", "open")


def test_a_large_amount_cut_into_pieces_within_the_window(accounts: dict[str, Any]) -> None:
    payer, payee = accounts["payer"].chain_address, accounts["payee"].chain_address
    pieces = [factories.token_movement(payer, payee, amount, START + timedelta(hours=hours))
              for amount, hours in ((LINE * 3 // 4, 0), (LINE // 2, 10), (LINE * 9 // 10, 24))]
    factories.token_movement(accounts["payee"].chain_address, payer, LINE // 2, START + timedelta(hours=1))  # another account's

    [alert] = aml.token_alerts(accounts["operator"])

    assert (alert.kind, alert.account, len(alert.movements), alert.total_minor) == \
        (AlertKind.STRUCTURING, payer, 3, LINE * 3 // 4 + LINE // 2 + LINE * 9 // 10)
    assert alert.key == (f"structuring:{pieces[0].tx_hash}:{pieces[0].log_index}:"
                         f"{pieces[2].tx_hash}:{pieces[2].log_index}")


def test_an_alert_is_reviewed_once_with_a_note(accounts: dict[str, Any]) -> None:
    factories.token_movement(accounts["payer"].chain_address, accounts["payee"].chain_address, LINE, START)
    operator = accounts["operator"]
    db.session.commit()
    [alert] = aml.token_alerts(operator)

    assert "note" in assert_refused(InvalidInput, aml.review_alert, operator, alert.key, reported=True,
                                    note=" ").value.errors
    reviewed = aml.review_alert(operator, alert.key, reported=True, note="reported to the FIU, case 2026-17")

    assert (reviewed.status, reviewed.review.reviewed_by_id) == ("reported", operator.user.id)
    assert last_audit_entry().after == {"alert_key": alert.key, "status": "reported",
                                        "note": "reported to the FIU, case 2026-17"}
    assert aml.token_alerts(operator, status="open") == []
    assert [found.key for found in aml.token_alerts(operator, status="reported")] == [alert.key]
    assert_refused(InvalidState, aml.review_alert, operator, alert.key, reported=False, note="again")
    assert_refused(NotFound, aml.review_alert, operator, "large_movement:0x00:0", reported=False, note="x")


def test_a_review_made_at_the_same_moment_is_refused_as_already_made(accounts: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    factories.token_movement(accounts["payer"].chain_address, accounts["payee"].chain_address, LINE, START)
    operator = accounts["operator"]
    db.session.commit()
    [alert] = aml.token_alerts(operator)
    aml.review_alert(operator, alert.key, reported=True, note="reported to the FIU")
    # The other review committed after this one read the alerts as open.
    monkeypatch.setattr(aml, "_alerts", lambda: [alert])

    assert_refused(InvalidState, aml.review_alert, operator, alert.key, reported=False, note="an ordinary payment")
    monkeypatch.undo()
    assert [found.status for found in aml.token_alerts(operator)] == ["reported"]


def test_the_auditor_reads_and_only_the_operator_reviews(accounts: dict[str, Any]) -> None:
    factories.token_movement(accounts["payer"].chain_address, accounts["payee"].chain_address, LINE, START)
    auditor = factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))
    financier = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    [alert] = aml.token_alerts(auditor)

    assert_refused(PermissionDenied, aml.review_alert, auditor, alert.key, reported=False, note="fine")
    assert_refused(PermissionDenied, aml.token_alerts, financier)


def test_the_api_lists_alerts_and_takes_reviews(app: Flask) -> None:
    with app.app_context():
        payer, payee = factories.organisation(Role.BUYER), factories.organisation(Role.SUPPLIER)
        factories.token_movement(payer.chain_address, payee.chain_address, LINE, START)
        db.session.commit()
    operator = caller(app, Role.OPERATOR, onboarded=False, issued_by_user=True)
    auditor = caller(app, Role.AUDITOR, onboarded=False)
    client = app.test_client()

    [listed] = client.get("/api/v1/aml-alerts?status=open", headers=auditor.headers).json
    assert (listed["kind"], listed["total"], listed["status"], len(listed["movements"])) == \
        ("large_movement", "2000000.00", "open", 1)

    answer = client.post("/api/v1/aml-alerts/review", headers={**operator.headers, "Idempotency-Key": "review-1"},
                         json={"key": listed["key"], "decision": "clear", "note": "the buyer's quarterly settlement"})
    assert (answer.status_code, answer.json["status"]) == (200, "cleared")
    assert client.get("/api/v1/aml-alerts?status=open", headers=auditor.headers).json == []
