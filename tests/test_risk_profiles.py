"""Risk profiles (backend/services/risk.py): each figure and the score's arithmetic on a worked
example, from the supplier's and the buyer's side, split parts, and who may read a profile."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from backend.extensions import db
from backend.models import Invoice, InvoiceStatus, Organisation, Repayment, RepaymentStatus, Role
from backend.services import risk
from backend.services.errors import NotFound, PermissionDenied
from backend.services.risk import Side
from tests import domain_factories as factories
from tests.domain_factories import assert_refused

TODAY = date.today()


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def owed(supplier: Organisation, buyer: Organisation, amount_minor: int, *, due: date,
         status: InvoiceStatus = InvoiceStatus.CONFIRMED, repaid_on: date | None = None,
         parent: Invoice | None = None) -> Invoice:
    """An invoice due on `due`; with `repaid_on`, repaid in full by a repayment mined that day."""
    invoice = factories.invoice(supplier, buyer, amount_minor=amount_minor, status=status,
                                issue_date=due - timedelta(days=60))
    invoice.due_date = due
    if parent is not None:
        invoice.parent, invoice.split_index = parent, len(parent.children)
    if repaid_on is not None:
        invoice.status = InvoiceStatus.REPAID
        invoice.repaid_minor = amount_minor
        db.session.add(Repayment(invoice=invoice, payer=buyer, amount_minor=amount_minor,
                                 status=RepaymentStatus.RECORDED,
                                 recorded_at=datetime.combine(repaid_on, time(15), UTC)))
    db.session.flush()
    return invoice


@pytest.fixture
def book(db_session: Any) -> dict[str, Organisation]:
    """The worked example of docs/risk.md: a supplier registered 200 days ago selling to two
    buyers, B1 and B2."""
    supplier = factories.organisation(Role.SUPPLIER)
    supplier.created_at = datetime.combine(days_ago(200), time(9), UTC)
    b1, b2 = factories.organisation(Role.BUYER), factories.organisation(Role.BUYER)
    owed(supplier, b1, 600, due=days_ago(10), repaid_on=days_ago(12))  # on time
    owed(supplier, b1, 200, due=days_ago(20), repaid_on=days_ago(5))  # 15 days late
    owed(supplier, b2, 200, due=days_ago(4))  # unpaid, 4 days late so far
    owed(supplier, b1, 1000, due=TODAY + timedelta(days=30))  # not due yet
    owed(supplier, b2, 500, due=days_ago(1), status=InvoiceStatus.DISPUTED)
    owed(supplier, b1, 700, due=days_ago(1), status=InvoiceStatus.REGISTERED)  # not answered
    factories.invoice(supplier, b1, currency="EUR", amount_minor=9_999)  # not the settlement currency
    pending = owed(supplier, b2, 300, due=days_ago(30))
    db.session.add(Repayment(invoice=pending, payer=b2, amount_minor=300, status=RepaymentStatus.PENDING))
    db.session.flush()
    return {"supplier": supplier, "b1": b1, "b2": b2, "reader": factories.organisation(Role.FINANCIER)}


def test_the_worked_example_as_a_supplier(book: dict[str, Organisation]) -> None:
    profile = risk.risk_profile(factories.actor(book["reader"]), book["supplier"].id, Side.SUPPLIER)

    assert (profile.receivables, profile.volume_minor) == (5, 2300)
    assert (profile.answered, profile.disputed, profile.dispute_rate) == (6, 1, pytest.approx(1 / 6))
    # Matured: the on-time one, the late one, the unpaid one and the one whose repayment is not
    # yet mined (30 days late); the one due in 30 days is not judged.
    assert (profile.matured, profile.on_time) == (4, 1)
    assert profile.on_time_rate == pytest.approx(0.25)
    assert profile.average_days_late == pytest.approx((0 + 15 + 4 + 30) / 4)
    assert profile.largest_counterparty_id == book["b1"].id
    assert profile.concentration == pytest.approx(1800 / 2300)
    assert profile.tenure_days == 200

    points = {part.factor: part.points for part in profile.contributions}
    assert points == {
        "base": 55.0,
        "on_time": -12.5,  # (0.25 - 0.5) x 50
        "lateness": -6.1,  # -15 x 12.25 / 30
        "disputes": -3.3,  # -20 x 1/6
        "concentration": -5.7,  # -20 x (0.7826 - 0.5)
        "tenure": 5.5,  # 10 x 200 / 365
        "track_record": 1.0,  # 10 x 5 / 50
    }
    assert profile.score == 34  # 33.87, rounded
    assert all(part.rule == risk.SCORE_RULES[part.factor] for part in profile.contributions)


def test_the_same_invoices_from_a_buyers_side(book: dict[str, Organisation]) -> None:
    profile = risk.risk_profile(factories.actor(book["reader"]), book["b1"].id, Side.BUYER)

    assert (profile.receivables, profile.volume_minor, profile.answered, profile.disputed) == (3, 1800, 3, 0)
    assert (profile.matured, profile.on_time, profile.average_days_late) == (2, 1, 7.5)
    assert (profile.largest_counterparty_id, profile.concentration) == (book["supplier"].id, 1.0)
    points = {part.factor: part.points for part in profile.contributions}
    assert (points["on_time"], points["lateness"], points["disputes"], points["concentration"]) == (0.0, -3.8, 0.0, -10.0)


def test_a_new_organisation_has_no_history_and_a_neutral_score(db_session: Any) -> None:
    newcomer = factories.organisation(Role.SUPPLIER)
    profile = risk.risk_profile(factories.actor(newcomer), newcomer.id, Side.SUPPLIER)

    assert (profile.receivables, profile.matured, profile.on_time_rate, profile.dispute_rate, profile.concentration) \
        == (0, 0, None, None, None)
    assert [part.points for part in profile.contributions if part.factor != "base"] == [0.0] * 6
    assert profile.score == 55


def test_split_parts_are_judged_but_their_volume_is_counted_once(db_session: Any) -> None:
    supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
    parent = owed(supplier, buyer, 1000, due=days_ago(2), status=InvoiceStatus.SPLIT)
    owed(supplier, buyer, 400, due=days_ago(2), repaid_on=days_ago(2), parent=parent)
    owed(supplier, buyer, 600, due=days_ago(2), parent=parent)

    profile = risk.risk_profile(factories.actor(supplier), supplier.id, Side.SUPPLIER)

    assert (profile.receivables, profile.volume_minor) == (1, 1000)
    assert (profile.matured, profile.on_time, profile.average_days_late) == (2, 1, 1.0)


def test_profiles_of_several_organisations_at_once(book: dict[str, Organisation]) -> None:
    reader = factories.actor(book["reader"])
    ids = [book["b1"].id, book["b2"].id, 999_999]

    profiles = risk.risk_profiles(reader, ids, Side.BUYER)

    assert set(profiles) == {book["b1"].id, book["b2"].id}
    assert profiles[book["b1"].id] == risk.risk_profile(reader, book["b1"].id, Side.BUYER)
    assert profiles[book["b2"].id].volume_minor == 500  # the unpaid 200 and the 300 awaiting its repayment


def test_an_organisation_reads_its_own_profile_only(book: dict[str, Organisation]) -> None:
    supplier = factories.actor(book["supplier"])
    assert risk.risk_profile(supplier, book["supplier"].id, Side.SUPPLIER).volume_minor == 2300
    assert_refused(NotFound, risk.risk_profile, supplier, book["b1"].id, Side.BUYER)
    assert_refused(NotFound, risk.risk_profiles, supplier, [book["supplier"].id, book["b2"].id], Side.BUYER)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_the_readers_of_everything_read_every_profile(book: dict[str, Organisation], role: Role) -> None:
    reader = factories.actor(factories.organisation(role, onboarded=False))
    assert risk.risk_profile(reader, book["b2"].id, Side.BUYER).matured == 2


def test_an_unknown_organisation_is_not_found(book: dict[str, Organisation]) -> None:
    assert_refused(NotFound, risk.risk_profile, factories.actor(book["reader"]), 999_999, Side.SUPPLIER)


def test_a_suspended_reader_is_refused(book: dict[str, Organisation]) -> None:
    book["reader"].suspended = True
    assert_refused(PermissionDenied, risk.risk_profile, factories.actor(book["reader"]), book["b1"].id, Side.BUYER)


def test_a_receivable_repaid_outside_anchorline_is_judged_by_its_ledger_event(db_session: Any) -> None:
    """No Repayment row of Anchorline's: the RepaymentRecorded event's time decides, not today."""
    supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
    invoice = owed(supplier, buyer, 500, due=days_ago(10), status=InvoiceStatus.REPAID)
    invoice.repaid_minor = 500
    event = factories.chain_event("RepaymentRecorded", {"id": str(int(invoice.receivable_id, 16)), "amount": "500",
                                                        "repaidTotal": "500"}, block_number=3)
    event.applied_at = datetime.combine(days_ago(12), time(9), UTC)  # indexed then, no outbox row
    db.session.flush()
    auditor = factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))

    profile = risk.risk_profile(auditor, supplier.id, Side.SUPPLIER)

    assert (profile.matured, profile.on_time, profile.average_days_late) == (1, 1, 0.0)

