"""KYC records and watch-list screening (backend/services/screening.py, organisations.decide_kyc):
loading a list, name and address matching, hits at registration, before approval and daily,
resolving hits, and the KYC review's record of documents and decider."""
from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import select, text

from backend.extensions import db
from backend.models import KycReview, KycStatus, Role, ScreeningHit, ScreeningHitStatus, WatchListEntry
from backend.security.keystore import MasterSecret
from backend.services import organisations, screening
from backend.services.errors import InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories
from tests.api_support import caller, problem_code
from tests.domain_factories import assert_refused, last_audit_entry

LIST = ("reference,name,address\r\n"
        "SDN-1,Blackwater Trading Co. Ltd,\r\n"
        "SDN-2,,0xAbCdEf0123456789aBcDeF0123456789abCDef01\r\n"
        "SDN-3,华夏黑名单贸易有限公司,\r\n"
        "SDN-4,Acme,\r\n").encode()


@pytest.fixture
def operator(db_session: Any) -> Any:
    return factories.operator()


@pytest.mark.parametrize(("name", "normalised"), [
    ("Blackwater Trading Co., Ltd.", "blackwater trading"),
    ("  THE  Blackwater-Trading GmbH ", "blackwater trading"),
    ("华夏黑名单贸易有限公司", "华夏黑名单贸易"),
    ("Ｂｌａｃｋｗａｔｅｒ", "blackwater"),  # full-width letters
])
def test_names_are_normalised_for_matching(name: str, normalised: str) -> None:
    assert screening.normalise_name(name) == normalised


@pytest.mark.parametrize(("entry", "organisation", "matches"), [
    ("blackwater trading", "blackwater trading", True),
    ("blackwater trading", "new blackwater trading shenzhen", True),  # whole words within
    ("blackwater trading", "blackwatertrading", False),
    ("acme", "acme widgets", False),  # too short to match within a name
    ("acme", "acme", True),
    ("华夏黑名单贸易", "深圳华夏黑名单贸易", True),
    ("华夏黑名单贸易", "华夏贸易", False),
])
def test_name_matching(entry: str, organisation: str, matches: bool) -> None:
    assert screening.name_matches(entry, organisation) is matches


def test_loading_a_list_screens_every_organisation_not_rejected(operator: Any) -> None:
    named = factories.organisation(Role.SUPPLIER, name="Blackwater Trading Company Limited")
    chinese = factories.organisation(Role.BUYER, name="深圳华夏黑名单贸易有限公司")
    by_address = factories.organisation(Role.FINANCIER, name="Quiet Capital")
    by_address.chain_address = "0xabcdef0123456789abcdef0123456789abcdef01"
    factories.organisation(Role.SUPPLIER, name="Acme Widgets")
    factories.organisation(Role.SUPPLIER, name="Blackwater Trading", kyc=KycStatus.REJECTED)
    db.session.commit()

    loaded = screening.load_watch_list(operator, "OFAC SDN", LIST)

    assert (loaded.entries, loaded.replaced, loaded.new_hits) == (4, 0, 3)
    hits = {(hit.organisation_id, hit.entry_reference, hit.matched_on, hit.status)
            for hit in db.session.scalars(select(ScreeningHit))}
    assert hits == {(named.id, "SDN-1", "name", ScreeningHitStatus.OPEN),
                    (chinese.id, "SDN-3", "name", ScreeningHitStatus.OPEN),
                    (by_address.id, "SDN-2", "address", ScreeningHitStatus.OPEN)}
    assert last_audit_entry().after == {"entries": 4, "replaced": 0, "new_hits": 3}


def test_reloading_a_list_replaces_its_entries_and_keeps_its_hits(operator: Any) -> None:
    factories.organisation(Role.SUPPLIER, name="Blackwater Trading Ltd")
    db.session.commit()
    screening.load_watch_list(operator, "OFAC SDN", LIST)

    again = screening.load_watch_list(operator, "OFAC SDN", b"reference,name\r\nSDN-9,Someone Else Entirely\r\n")

    assert (again.entries, again.replaced, again.new_hits) == (1, 4, 0)
    assert db.session.scalars(select(WatchListEntry.reference)).all() == ["SDN-9"]
    assert db.session.scalar(select(ScreeningHit.entry_reference)) == "SDN-1"  # the hit outlives its entry


@pytest.mark.parametrize(("data", "field"), [
    (b"name\r\nSomeone\r\n", "rows.1.reference"),
    (b"reference,name\r\nA-1,\r\n", "rows.2"),
    (b"reference,name\r\nA-1,One\r\nA-1,Two\r\n", "rows.3.reference"),
    (b"reference,name\r\n", "file"),
    (b"\xff\xfe", "file"),
])
def test_a_bad_file_loads_nothing_and_names_the_problem(operator: Any, data: bytes, field: str) -> None:
    refusal = assert_refused(InvalidInput, screening.load_watch_list, operator, "OFAC SDN", data)
    assert field in refusal.value.errors


def test_lists_are_loaded_by_the_operator_only(db_session: Any) -> None:
    auditor = factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))
    db.session.commit()
    assert_refused(PermissionDenied, screening.load_watch_list, auditor, "OFAC SDN", LIST)


def test_a_new_organisation_is_screened_and_cannot_be_approved_until_its_hit_is_cleared(
        operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    factories.cheap_signing_keys(monkeypatch)
    screening.load_watch_list(operator, "OFAC SDN", LIST)

    registered = organisations.create_organisation(
        operator, name="Blackwater Trading Co. Ltd", legal_identifier="0088:7399999999999", roles=Role.SUPPLIER,
        master_secret=MasterSecret("m" * 40, source="test"))
    [hit] = db.session.scalars(screening.screening_hits(operator, organisation_id=registered.id)).all()

    refusal = assert_refused(InvalidState, organisations.decide_kyc, operator, registered, approve=True,
                             documents_checked=["business_licence"])
    assert "matches a watch list" in refusal.value.detail and refusal.value.errors == {"screening": [f"hit {hit.id}"]}

    screening.resolve_hit(operator, hit.id, confirmed=False, note="different registration number and city")
    organisations.decide_kyc(operator, registered, approve=True, documents_checked=["business_licence"])
    assert registered.kyc_status == KycStatus.APPROVED


def test_a_confirmed_hit_keeps_refusing_approval(operator: Any) -> None:
    org = factories.organisation(Role.SUPPLIER, name="Blackwater Trading", kyc=KycStatus.PENDING)
    db.session.commit()
    screening.load_watch_list(operator, "OFAC SDN", LIST)
    [hit] = db.session.scalars(screening.screening_hits(operator)).all()

    screening.resolve_hit(operator, hit.id, confirmed=True, note="same directors")

    assert (hit.status, hit.resolved_by_id, hit.resolution_note) == (ScreeningHitStatus.CONFIRMED, operator.user.id,
                                                                     "same directors")
    assert_refused(InvalidState, organisations.decide_kyc, operator, org, approve=True,
                   documents_checked=["business_licence"])
    assert_refused(InvalidState, screening.resolve_hit, operator, hit.id, confirmed=False, note="changed my mind")
    organisations.decide_kyc(operator, org, approve=False, note="sanctioned")
    assert org.kyc_status == KycStatus.REJECTED


def test_a_hit_confirmed_by_someone_else_meanwhile_is_not_overwritten(operator: Any) -> None:
    factories.organisation(Role.SUPPLIER, name="Blackwater Trading", kyc=KycStatus.PENDING)
    db.session.commit()
    screening.load_watch_list(operator, "OFAC SDN", LIST)
    [hit] = db.session.scalars(screening.screening_hits(operator)).all()
    # Another operator's confirmation, committed after this request read the hit as open.
    db.session.execute(text("UPDATE screening_hits SET status = 'confirmed' WHERE id = :id"), {"id": hit.id})

    refusal = assert_refused(InvalidState, screening.resolve_hit, operator, hit.id, confirmed=False,
                             note="looks different")
    assert "resolved already (confirmed)" in refusal.value.detail


def test_resolving_needs_a_note_and_the_operator(operator: Any) -> None:
    factories.organisation(Role.SUPPLIER, name="Blackwater Trading")
    db.session.commit()
    screening.load_watch_list(operator, "OFAC SDN", LIST)
    hit_id = db.session.scalar(select(ScreeningHit.id))
    auditor = factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))
    supplier = factories.actor(factories.organisation(Role.SUPPLIER))
    db.session.commit()

    assert "note" in assert_refused(InvalidInput, screening.resolve_hit, operator, hit_id, confirmed=False,
                                    note="  ").value.errors
    assert_refused(PermissionDenied, screening.resolve_hit, auditor, hit_id, confirmed=False, note="fine")
    assert_refused(NotFound, screening.resolve_hit, supplier, hit_id, confirmed=False, note="fine")
    assert db.session.scalars(screening.screening_hits(auditor, status=ScreeningHitStatus.OPEN)).all() != []


def test_the_daily_screening_finds_organisations_approved_before_the_list_and_records_each_hit_once(
        operator: Any) -> None:
    screening.load_watch_list(operator, "OFAC SDN", LIST)
    approved_earlier = factories.organisation(Role.BUYER, name="Acme")
    db.session.commit()

    assert screening.screen_all_organisations() == 1
    assert screening.screen_all_organisations() == 0
    assert db.session.scalar(select(ScreeningHit.organisation_id)) == approved_earlier.id


def test_a_kyc_review_records_the_documents_checked_and_who_decided(operator: Any) -> None:
    org = factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING)
    db.session.commit()

    organisations.decide_kyc(operator, org, approve=True, note="all in order",
                             documents_checked=["bank_account", "business_licence", "bank_account"])

    review = db.session.scalar(select(KycReview))
    assert (review.organisation_id, review.decision, review.documents_checked, review.note, review.decided_by_id) == \
        (org.id, KycStatus.APPROVED, ["business_licence", "bank_account"], "all in order", operator.user.id)
    assert last_audit_entry().after["documents_checked"] == ["business_licence", "bank_account"]


def test_an_unknown_kyc_document_is_refused(operator: Any) -> None:
    org = factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING)
    db.session.commit()
    refusal = assert_refused(InvalidInput, organisations.decide_kyc, operator, org, approve=True,
                             documents_checked=["horoscope"])
    assert "horoscope" in refusal.value.errors["documents_checked"][0]


def test_the_api_loads_a_list_lists_hits_resolves_them_and_records_kyc_documents(app: Any) -> None:
    with app.app_context():
        org = factories.organisation(Role.SUPPLIER, name="Blackwater Trading", kyc=KycStatus.PENDING)
        db.session.commit()
        org_id = org.id
    operator = caller(app, Role.OPERATOR, onboarded=False, issued_by_user=True)
    auditor = caller(app, Role.AUDITOR, onboarded=False)
    client = app.test_client()

    loaded = client.put("/api/v1/watch-lists/OFAC%20SDN", headers=operator.headers,
                        data={"file": (io.BytesIO(LIST), "sdn.csv")})
    assert loaded.status_code == 200, loaded.json
    assert (loaded.json["entries"], loaded.json["new_hits"]) == (4, 1)
    assert client.get("/api/v1/watch-lists", headers=auditor.headers).json == [{"list_name": "OFAC SDN", "entries": 4}]
    [hit] = client.get("/api/v1/screening-hits?status=open", headers=auditor.headers).json["items"]
    assert (hit["organisation_id"], hit["entry_reference"], hit["matched_on"]) == (org_id, "SDN-1", "name")

    kyc = f"/api/v1/organisations/{org_id}/kyc"
    refused = client.post(kyc, headers={**operator.headers, "Idempotency-Key": "kyc-1"},
                          json={"decision": "approve", "documents_checked": ["business_licence"]})
    assert (refused.status_code, problem_code(refused)) == (409, "invalid-state")

    resolved = client.post(f"/api/v1/screening-hits/{hit['id']}/resolution",
                           headers={**operator.headers, "Idempotency-Key": "resolve-1"},
                           json={"decision": "clear", "note": "another company"})
    assert resolved.json["status"] == "cleared"
    approved = client.post(kyc, headers={**operator.headers, "Idempotency-Key": "kyc-2"},
                           json={"decision": "approve", "documents_checked": ["business_licence", "bank_account"]})
    assert approved.status_code == 202
    with app.app_context():
        assert db.session.scalar(select(KycReview.documents_checked)) == ["business_licence", "bank_account"]
    assert client.put("/api/v1/watch-lists/x", headers=auditor.headers,
                      data={"file": (io.BytesIO(LIST), "x.csv")}).status_code == 403


def test_an_approval_names_at_least_one_document(operator: Any) -> None:
    org = factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING)
    db.session.commit()
    refusal = assert_refused(InvalidInput, organisations.decide_kyc, operator, org, approve=True)
    assert refusal.value.errors == {"documents_checked": ["name at least one document checked"]}
    organisations.decide_kyc(operator, org, approve=False, note="no documents sent")  # a rejection needs none
