"""The operator's pages: the onboarding queue (registering an organisation, approving or
rejecting its KYC review), participants (suspending and reinstating them), the settlement
token (minting and burning against references used once) and the system's health, through the
same services as the API: each write queues its ledger write in the outbox."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from backend.chain.devnet import free_port
from backend.extensions import db
from backend.models import (
    AuditLog,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    IndexerCursor,
    KycReview,
    KycStatus,
    Organisation,
    Role,
    TokenBalance,
    TokenOperation,
    TokenOperationKind,
)
from backend.portal.paging import PAGE_SIZE
from backend.services import organisations
from backend.services.errors import InvalidState
from tests import domain_factories as factories
from tests.api_support import user_with_password
from tests.portal_support import csrf_token, portal_sign_in, post_form, text
from workers import monitoring


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(autouse=True)
def cheap_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    factories.cheap_signing_keys(monkeypatch)


@pytest.fixture
def parties(app: Flask) -> dict[str, int | str]:
    """The operator (signed in as nobody yet), an auditor, a financier and a buyer on the ledger."""
    with app.app_context():
        operator = factories.organisation(Role.OPERATOR, onboarded=False, name="Anchorline Operations")
        auditor = factories.organisation(Role.AUDITOR)
        financier = factories.organisation(Role.FINANCIER, name="Harbour Capital")
        buyer = factories.organisation(Role.BUYER, name="Big Buyer Co")
        return {"operator": user_with_password(operator).email, "auditor": user_with_password(auditor).email,
                "financier": financier.id, "buyer": buyer.id}


def writes(app: Flask) -> list[tuple[str, str | None, int | None]]:
    with app.app_context():
        return [(row.function, row.subject_type, row.subject_id)
                for row in db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id))]


def register(client: FlaskClient, name: str = "Acme Components", roles: tuple[Role, ...] = (Role.SUPPLIER,),
             legal_identifier: str = "0088:7300010000001") -> object:
    token = csrf_token(client, "/operator/organisations/new")
    return client.post("/operator/organisations/new", data={
        "csrf_token": token, "name": name, "legal_identifier": legal_identifier,
        "roles": [str(int(role)) for role in roles]})


def pending_id(app: Flask, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Organisation.id).where(Organisation.name == name))


def decide(client: FlaskClient, organisation_id: int, button: str, note: str = "",
           documents: tuple[str, ...] = ("business_licence", "bank_account")) -> object:
    prefix = f"organisation-{organisation_id}"
    return client.post(f"/operator/onboarding/{organisation_id}/kyc", data={
        f"{prefix}-csrf_token": csrf_token(client, "/operator/onboarding"), f"{prefix}-note": note,
        f"{prefix}-documents_checked": list(documents), f"{prefix}-{button}": "1"})


# ---------------------------------------------------------------- onboarding


def test_a_registered_organisation_waits_in_the_queue_and_approval_queues_its_onboarding(app, client, parties):
    portal_sign_in(client, parties["operator"])

    answer = register(client, roles=(Role.SUPPLIER, Role.BUYER))

    assert answer.status_code == 302 and answer.location == "/operator/onboarding"
    queue = text(client.get("/operator/onboarding"))
    assert "Acme Components is registered and awaits its KYC review." in queue
    assert "Acme Components" in queue and "0088:7300010000001" in queue and "Supplier, Buyer" in queue
    organisation_id = pending_id(app, "Acme Components")

    answer = decide(client, organisation_id, "approve", note="Documents checked")

    assert answer.status_code == 302
    with app.app_context():
        organisation = db.session.get(Organisation, organisation_id)
        assert organisation.kyc_status == KycStatus.APPROVED
        (onboarding,) = db.session.scalars(select(ChainTransaction)).all()
        assert (onboarding.function, onboarding.args[:2]) == ("onboard", [organisation.chain_address, 3])
        assert db.session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first().after["note"] == (
            "Documents checked")
        review = db.session.scalars(select(KycReview)).one()
        assert (review.documents_checked, review.decided_by_id is not None) == (["business_licence", "bank_account"],
                                                                               True)
    queue = text(client.get("/operator/onboarding"))
    assert "Acme Components is approved; its onboarding is on its way to the ledger." in queue
    assert "No organisation awaits its KYC review." in queue


def test_an_approval_names_the_documents_checked(app, client, parties):
    portal_sign_in(client, parties["operator"])
    register(client)
    organisation_id = pending_id(app, "Acme Components")

    answer = decide(client, organisation_id, "approve", documents=())

    assert answer.status_code == 400
    assert f'id="organisation-{organisation_id}-documents_checked-errors"' in text(answer)
    assert "name at least one document checked" in text(answer)
    assert writes(app) == []


def test_a_rejection_writes_nothing_to_the_ledger(app, client, parties):
    portal_sign_in(client, parties["operator"])
    register(client)
    organisation_id = pending_id(app, "Acme Components")
    too_long = decide(client, organisation_id, "reject", note="x" * 2001)
    assert too_long.status_code == 400 and f'id="organisation-{organisation_id}-note-errors"' in text(too_long)

    answer = decide(client, organisation_id, "reject", note="Incomplete documents")

    assert answer.status_code == 302
    assert "Acme Components is rejected." in text(client.get("/operator/onboarding"))
    assert writes(app) == []
    with app.app_context():
        assert db.session.get(Organisation, organisation_id).kyc_status == KycStatus.REJECTED


def test_a_review_decided_already_is_an_error_page(app, client, parties):
    portal_sign_in(client, parties["operator"])
    register(client)
    organisation_id = pending_id(app, "Acme Components")
    decide(client, organisation_id, "reject")

    answer = decide(client, organisation_id, "approve")

    assert answer.status_code == 400
    assert "was decided already" in text(answer)
    assert writes(app) == []


def test_a_refused_decision_is_shown_on_the_page_it_came_from(app, client, parties):
    with app.app_context():
        last = [factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING) for _ in range(PAGE_SIZE + 1)][-1].id
        db.session.commit()
    portal_sign_in(client, parties["operator"])
    second_page = text(client.get("/operator/onboarding?page=2"))
    action = re.search(rf'action="([^"]*/onboarding/{last}/kyc[^"]*)"', second_page).group(1).replace("&amp;", "&")
    prefix = f"organisation-{last}"

    answer = client.post(action, data={f"{prefix}-csrf_token": csrf_token(client, "/operator/onboarding"),
                                       f"{prefix}-note": "x" * 2001, f"{prefix}-approve": "1"})

    assert answer.status_code == 400
    assert f'id="{prefix}-note-errors"' in text(answer)
    assert writes(app) == []


def test_a_registration_the_service_refuses_is_shown_on_its_fields(app, client, parties):
    portal_sign_in(client, parties["operator"])

    wrong = register(client, legal_identifier="not an identifier")
    no_roles = register(client, roles=())
    register(client)
    taken = register(client, name="Acme Again")

    assert wrong.status_code == 400 and 'id="legal_identifier-errors"' in text(wrong)
    assert "expected scheme:value" in text(wrong)
    assert no_roles.status_code == 400 and "Choose at least one." in text(no_roles)
    assert taken.status_code == 400 and "exists already" in text(taken)
    with app.app_context():
        assert factories.count(Organisation) == 5  # the fixture's four and Acme Components


# ---------------------------------------------------------------- participants


def test_suspending_asks_for_a_reason_and_queues_the_ledgers_suspension(app, client, parties):
    portal_sign_in(client, parties["operator"])
    path = f"/operator/participants/{parties['buyer']}/suspension"
    assert "Suspend Big Buyer Co" in text(client.get(path))

    without_reason = post_form(client, path, path, reason="")
    answer = post_form(client, path, path, reason="Unpaid fees")

    assert without_reason.status_code == 400 and 'id="reason-errors"' in text(without_reason)
    assert answer.status_code == 302 and answer.location == "/operator/participants"
    assert writes(app) == [("suspend", "organisation", parties["buyer"])]
    page = text(client.get("/operator/participants"))
    assert "Big Buyer Co is suspended; the suspension is on its way to the ledger." in page
    assert "Unpaid fees" in page and "Suspension: Queued" in page
    assert f'href="/operator/participants/{parties["buyer"]}/reinstatement"' in page


def test_reinstating_after_a_confirmation_queues_the_ledgers_reinstatement(app, client, parties):
    with app.app_context():
        db.session.get(Organisation, parties["buyer"]).suspended = True
        db.session.commit()
    portal_sign_in(client, parties["operator"])
    path = f"/operator/participants/{parties['buyer']}/reinstatement"
    assert "Reinstate Big Buyer Co" in text(client.get(path))
    assert writes(app) == []  # asking is not doing

    answer = post_form(client, path, path)

    assert answer.status_code == 302
    assert writes(app) == [("reinstate", "organisation", parties["buyer"])]
    with app.app_context():
        assert not db.session.get(Organisation, parties["buyer"]).suspended
    # Reinstating an active organisation is refused, not a crash.
    assert post_form(client, path, "/operator/participants").status_code == 400


def test_the_participants_list_shows_roles_kyc_and_the_ledger(app, client, parties):
    with app.app_context():
        factories.organisation(Role.SUPPLIER, name="Pending Supplies", kyc=KycStatus.PENDING, onboarded=False)
        db.session.commit()
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/operator/participants"))
    found = text(client.get("/operator/participants?name=harbour"))

    assert "Harbour Capital" in page and "Awaiting review" in page and "Participant no." in page
    assert "Not a ledger participant" in page  # the operator itself
    # The operator cannot suspend itself, nor an organisation that is not approved.
    assert page.count("/suspension") == 3
    assert "Harbour Capital" in found and "Big Buyer Co" not in found


# ---------------------------------------------------------------- the settlement token


def mint(client: FlaskClient, organisation_id: int, amount: str, reference: str, kind: str = "mint") -> object:
    return client.post("/operator/tokens", data={
        f"{kind}-csrf_token": csrf_token(client, "/operator/tokens"), f"{kind}-organisation": str(organisation_id),
        f"{kind}-amount": amount, f"{kind}-reference": reference, f"{kind}-submit": "1"})


def test_minting_and_burning_queue_token_operations(app, client, parties):
    portal_sign_in(client, parties["operator"])

    minted = mint(client, parties["financier"], "5000.00", "BANK-2026-0001")
    burned = mint(client, parties["financier"], "1250.50", "BANK-2026-0002", kind="burn")

    assert minted.status_code == burned.status_code == 302
    with app.app_context():
        operations = db.session.scalars(select(TokenOperation).order_by(TokenOperation.id)).all()
        assert [(operation.kind, operation.amount_minor) for operation in operations] == [
            (TokenOperationKind.MINT, 500_000), (TokenOperationKind.BURN, 125_050)]
        ids = [operation.id for operation in operations]
    assert writes(app) == [("mint", "token_operation", ids[0]), ("burn", "token_operation", ids[1])]
    page = text(client.get("/operator/tokens"))
    assert "Burning CN¥1,250.50 of Harbour Capital is on its way to the ledger." in page
    assert "CN¥5,000.00" in page and "Awaiting the ledger" in page and "Queued" in page


def test_a_reused_reference_is_refused_on_the_form(app, client, parties):
    portal_sign_in(client, parties["operator"])
    mint(client, parties["financier"], "100", "BANK-2026-0001")

    again = mint(client, parties["buyer"], "100", "BANK-2026-0001")
    as_withdrawal = mint(client, parties["financier"], "100", " BANK-2026-0001 ", kind="burn")

    for answer in (again, as_withdrawal):
        assert answer.status_code == 400
        errors = re.search(r'<ul class="field-errors" id="(mint|burn)-reference-errors">(.*?)</ul>', text(answer), re.S)
        assert errors and "was used already" in errors.group(2)
    assert len(writes(app)) == 1


def test_an_invalid_amount_is_refused_on_the_form(app, client, parties):
    portal_sign_in(client, parties["operator"])

    for amount in ("12.345", "abc", "0", "-5", ""):
        answer = mint(client, parties["financier"], amount, "BANK-2026-0003")
        assert answer.status_code == 400, amount
        assert 'id="mint-amount-errors"' in text(answer), amount
    assert writes(app) == []


def test_only_active_ledger_participants_can_be_chosen(app, client, parties):
    with app.app_context():
        suspended = factories.organisation(Role.FINANCIER, name="Suspended Bank", suspended=True).id
        db.session.commit()
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/operator/tokens"))
    answer = mint(client, suspended, "100", "BANK-2026-0004")

    assert "Harbour Capital" in page and "Suspended Bank" not in page
    assert answer.status_code == 400 and 'id="mint-organisation-errors"' in text(answer)
    assert writes(app) == []


def test_the_balances_are_the_indexed_ones(app, client, parties):
    with app.app_context():
        financier = db.session.get(Organisation, parties["financier"])
        db.session.add_all([
            IndexerCursor(chain_id=31337, contract=ContractName.SETTLEMENT_TOKEN, block_number=9,
                          block_hash="0x" + "11" * 32),
            TokenBalance(chain_id=31337, address=financier.chain_address, balance_minor=42_000_00),
        ])
        db.session.commit()
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/operator/tokens"))

    balances = page[page.index('id="balances"'):]
    assert "Harbour Capital" in balances and "CN¥42,000.00" in balances


# ---------------------------------------------------------------- health


def test_the_health_page_shows_the_reading_with_its_failing_parts(app, client, parties, monkeypatch):
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    with app.app_context():
        db.session.add(ChainTransaction(intent_key="probe:1", contract=ContractName.FINANCING, function="onboard",
                                        args=[]))
        db.session.commit()
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/operator/health"))

    assert "Some parts are failing" in page
    assert re.search(r"Chain</th>\s*<td><strong[^>]*>Failing</strong></td>\s*<td>[^<]*no Ethereum JSON-RPC", page)
    assert re.search(r"Database</th>\s*<td><span[^>]*>Working", page)
    assert re.search(r"Queued</th><td class=\"number\">1</td>", page)
    assert "unavailable" in page


def test_the_health_page_shows_every_figure_of_a_healthy_stack(app, client, parties, monkeypatch):
    reading = monitoring.StackStatus(
        chain_id=31337, chain_height=1234, indexer_lag_blocks=3,
        outbox={str(state): 0 for state in ChainTransactionStatus} | {"sent": 7}, stuck_transactions=2,
        queue_depth=5, heartbeat_age_seconds=1.5, dead_webhook_deliveries=4)
    monkeypatch.setattr(monitoring, "collect", lambda app: reading)
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/operator/health"))

    assert "Every part works." in page and "unavailable" not in page
    for shown in ("1,234", "3 blocks", "1.5 seconds ago", 'Sent</th><td class="number">7</td>'):
        assert shown in page
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", page))
    assert figures["Queue depth (tasks waiting)"] == "5"
    assert figures["Stuck transactions (sent long ago, no receipt)"] == "2"
    assert figures["Failed webhook deliveries (dead)"] == "4"


def test_a_page_number_beyond_any_there_can_be_shows_the_first(app, client, parties):
    portal_sign_in(client, parties["operator"])

    for path in ("/operator/onboarding", "/operator/participants", "/operator/tokens"):
        response = client.get(f"{path}?page={10**30}")
        assert response.status_code == 200, path
    assert "Harbour Capital" in text(client.get(f"/operator/participants?name=harbour&page={10**30}"))


def test_a_decision_another_request_took_meanwhile_is_not_taken_again(app, parties):
    """Two operators at once: this request read the organisation before the other's decision was
    committed; the service judges the row the other left (locked on PostgreSQL), not that copy."""
    with app.app_context():
        operator = factories.actor(db.session.scalar(
            select(Organisation).where(Organisation.name == "Anchorline Operations")))
        pending = factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING)
        member = db.session.get(Organisation, parties["buyer"])
        db.session.commit()
        stale = [organisations.get_organisation(operator, organisation.id) for organisation in (pending, member)]
        with db.engine.begin() as other_request:
            other_request.execute(update(Organisation).where(Organisation.id == pending.id)
                                  .values(kyc_status=KycStatus.REJECTED))
            other_request.execute(update(Organisation).where(Organisation.id == member.id).values(suspended=True))

        with pytest.raises(InvalidState, match="decided already"):
            organisations.decide_kyc(operator, stale[0], approve=True, documents_checked=["business_licence"])
        with pytest.raises(InvalidState, match="suspended already"):
            organisations.suspend(operator, stale[1], reason="a second suspension")

    assert writes(app) == []


# ---------------------------------------------------------------- who may


def test_the_pages_are_the_operators_only(app, client, parties):
    portal_sign_in(client, parties["auditor"])

    for path in ("/operator/onboarding", "/operator/organisations/new", "/operator/participants", "/operator/tokens",
                 "/operator/health", f"/operator/participants/{parties['buyer']}/suspension",
                 f"/operator/participants/{parties['buyer']}/reinstatement"):
        assert client.get(path).status_code == 404, path


def test_another_roles_writes_are_refused(app, client, parties):
    portal_sign_in(client, parties["auditor"])
    token = csrf_token(client, "/dashboard/auditor")

    answers = [
        client.post(f"/operator/participants/{parties['buyer']}/suspension", data={"csrf_token": token,
                                                                                   "reason": "x"}),
        client.post("/operator/tokens", data={"mint-csrf_token": token, "mint-organisation": parties["buyer"],
                                              "mint-amount": "1", "mint-reference": "R", "mint-submit": "1"}),
        client.post(f"/operator/onboarding/{parties['buyer']}/kyc", data={
            f"organisation-{parties['buyer']}-csrf_token": token, f"organisation-{parties['buyer']}-approve": "1"}),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert writes(app) == []
    assert "/operator/" not in text(client.get("/dashboard/auditor"))


def test_the_operators_navigation_lists_its_pages(app, client, parties):
    portal_sign_in(client, parties["operator"])

    page = text(client.get("/dashboard/operator"))

    for path in ("/operator/onboarding", "/operator/participants", "/operator/tokens", "/operator/health"):
        assert f'<a href="{path}"' in page
