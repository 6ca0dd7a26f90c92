"""Sanctions and watch-list screening (issue 6 §4).

The operator loads lists as CSV (backend/intake/watch_list.py); loading a list replaces every
entry of the same list name, then screens every organisation not rejected against it. Each
organisation is screened when it is registered, again before its KYC approval (an open or
confirmed hit refuses the approval), and daily by the schedule, so a list loaded later still
catches organisations approved before it.

Matching, on normalised text (NFKC, case folded, punctuation and common legal-form words such as
"Ltd", "GmbH" or 有限公司 removed, spaces collapsed):
- a name matches when it equals the entry's, or contains it as whole words (the entry at least
  MIN_CONTAINED_NAME characters; for names without spaces, such as Chinese ones, as characters);
- a ledger address matches an entry's address exactly (case ignored).
A match is a ScreeningHit, recorded once per organisation, list entry and kind of match; someone
clears it (a false positive) or confirms it (then the organisation is to be rejected or
suspended: the hit refuses its approval, and a confirmed hit stays on record).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.intake.errors import CsvIntakeError, row_error_fields
from backend.intake.watch_list import parse_watch_list_csv
from backend.models import KycStatus, Organisation, ScreeningHit, ScreeningHitStatus, WatchListEntry, utcnow
from backend.services import audit
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState
from backend.services.permissions import Action, authorize, get_authorized
from backend.services.transaction import atomic

WATCH_LIST_SUBJECT = "watch_list"
HIT_SUBJECT = "screening_hit"
MAX_LIST_NAME = 100
MIN_CONTAINED_NAME = 6
# Legal-form words that say nothing about who an organisation is.
LEGAL_FORMS = frozenset({
    "ltd", "limited", "co", "company", "corp", "corporation", "inc", "incorporated", "llc", "llp", "plc", "gmbh",
    "ag", "sa", "sas", "sarl", "bv", "nv", "oy", "ab", "as", "spa", "srl", "pte", "pty", "kg", "group", "the",
})
CHINESE_LEGAL_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "集团", "公司")
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


def normalise_name(text: str) -> str:
    """`text` as names are compared: see the module's docstring."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    for form in CHINESE_LEGAL_FORMS:
        folded = folded.replace(form, " ")
    words = re.sub(r"[^\w]+", " ", folded).split()
    return " ".join(word for word in words if word not in LEGAL_FORMS)


def normalise_address(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return folded if _ADDRESS.fullmatch(folded) else " ".join(re.sub(r"[^\w]+", " ", folded).split())


def name_matches(entry: str, organisation: str) -> bool:
    if not entry or not organisation:
        return False
    if entry == organisation:
        return True
    if len(entry.replace(" ", "")) < MIN_CONTAINED_NAME:
        return False
    if " " not in entry and not entry.isascii():
        return entry in organisation  # a name written without spaces
    return f" {entry} " in f" {organisation} "


@dataclass(frozen=True)
class WatchListLoad:
    list_name: str
    entries: int
    replaced: int  # entries of the list's earlier version
    new_hits: int


@atomic
def load_watch_list(actor: Actor, list_name: str, data: bytes) -> WatchListLoad:
    """Replaces the entries of `list_name` with the file's, then screens every organisation not
    rejected against the new entries. All or nothing: a row of the wrong form refuses the file."""
    authorize(actor, Action.MANAGE_WATCH_LISTS)
    list_name = (list_name or "").strip()
    if not 0 < len(list_name) <= MAX_LIST_NAME:
        raise InvalidInput("the list needs a name", errors={"list_name": [f"1 to {MAX_LIST_NAME} characters"]})
    try:
        rows, row_errors = parse_watch_list_csv(data)
    except CsvIntakeError as exc:
        raise InvalidInput(exc.detail, errors=row_error_fields(exc.errors) or {"file": [exc.detail]}) from None
    if row_errors or not rows:
        detail = (f"{len({error.row for error in row_errors})} row(s) have errors; nothing was loaded"
                  if row_errors else "the file has no entries")
        raise InvalidInput(detail, errors=row_error_fields(row_errors) or {"file": [detail]})

    replaced = db.session.execute(delete(WatchListEntry).where(WatchListEntry.list_name == list_name)).rowcount
    loader = actor.person
    entries = [WatchListEntry(list_name=list_name, reference=row.reference, name=row.name,
                              normalised_name=normalise_name(row.name) if row.name else None,
                              address=row.address,
                              normalised_address=normalise_address(row.address) if row.address else None,
                              loaded_by=loader)
               for row in rows]
    db.session.add_all(entries)
    db.session.flush()
    organisations = db.session.scalars(select(Organisation).where(Organisation.kyc_status != KycStatus.REJECTED))
    new_hits = len(_record_hits(organisations, entries))
    audit.record(actor, Action.MANAGE_WATCH_LISTS, WATCH_LIST_SUBJECT, list_name,
                 after={"entries": len(entries), "replaced": replaced, "new_hits": new_hits})
    return WatchListLoad(list_name, len(entries), replaced, new_hits)


def screen_organisation(organisation: Organisation) -> list[ScreeningHit]:
    """Screens one organisation against every list; returns the hits new to it (flushed)."""
    return _record_hits([organisation], db.session.scalars(select(WatchListEntry)).all())


def screen_all_organisations() -> int:
    """The daily screening: every organisation not rejected against every list; commits and
    returns how many hits are new. Safe to run twice at once (a hit is unique)."""
    organisations = db.session.scalars(select(Organisation).where(Organisation.kyc_status != KycStatus.REJECTED))
    try:
        found = len(_record_hits(organisations, db.session.scalars(select(WatchListEntry)).all()))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # a concurrent run recorded the same hits first
        return 0
    return found


def _record_hits(organisations: Iterable[Organisation], entries: Sequence[WatchListEntry]) -> list[ScreeningHit]:
    known = {tuple(row) for row in db.session.execute(select(
        ScreeningHit.organisation_id, ScreeningHit.list_name, ScreeningHit.entry_reference, ScreeningHit.matched_on))}
    by_address: dict[str, list[WatchListEntry]] = {}
    for entry in entries:
        if entry.normalised_address:
            by_address.setdefault(entry.normalised_address, []).append(entry)
    named = [entry for entry in entries if entry.normalised_name]
    hits = []
    for organisation in organisations:
        name = normalise_name(organisation.name)
        matches = [("name", entry, entry.name) for entry in named if name_matches(entry.normalised_name, name)]
        if organisation.chain_address:
            matches += [("address", entry, entry.address)
                        for entry in by_address.get(normalise_address(organisation.chain_address), [])]
        for matched_on, entry, value in matches:
            key = (organisation.id, entry.list_name, entry.reference, matched_on)
            if key in known:
                continue
            known.add(key)
            hits.append(ScreeningHit(organisation=organisation, list_name=entry.list_name,
                                     entry_reference=entry.reference, matched_on=matched_on, entry_value=value))
    db.session.add_all(hits)
    db.session.flush()
    return hits


def unresolved_hits(organisation: Organisation) -> list[ScreeningHit]:
    """The hits that stand in the way of approving the organisation: open or confirmed."""
    return list(db.session.scalars(select(ScreeningHit).where(
        ScreeningHit.organisation_id == organisation.id,
        ScreeningHit.status.in_((ScreeningHitStatus.OPEN, ScreeningHitStatus.CONFIRMED))).order_by(ScreeningHit.id)))


def require_clear_screening(organisation: Organisation) -> None:
    """Screens the organisation afresh and refuses (InvalidState) while any hit is open or
    confirmed: an organisation on a list is not approved until a person has looked."""
    screen_organisation(organisation)
    standing = unresolved_hits(organisation)
    if standing:
        described = "; ".join(f"{hit.status} hit on {hit.list_name} {hit.entry_reference} ({hit.matched_on}: "
                              f"{hit.entry_value})" for hit in standing)
        raise InvalidState(f"{organisation.name} matches a watch list: {described}; resolve the hits first",
                           errors={"screening": [f"hit {hit.id}" for hit in standing]})


def screening_hits(actor: Actor, *, status: ScreeningHitStatus | None = None,
                   organisation_id: int | None = None) -> Select[tuple[ScreeningHit]]:
    """Hits, newest first, for the operator and the auditor."""
    authorize(actor, Action.VIEW_SCREENING_HITS)
    statement = select(ScreeningHit).order_by(ScreeningHit.id.desc())
    if status is not None:
        statement = statement.where(ScreeningHit.status == status)
    if organisation_id is not None:
        statement = statement.where(ScreeningHit.organisation_id == organisation_id)
    return statement


def watch_list_summary(actor: Actor) -> list[tuple[str, int]]:
    """(list name, entries) of every loaded list, by name."""
    authorize(actor, Action.VIEW_SCREENING_HITS)
    return [(name, count) for name, count in db.session.execute(
        select(WatchListEntry.list_name, func.count()).group_by(WatchListEntry.list_name).order_by(WatchListEntry.list_name))]


@atomic
def resolve_hit(actor: Actor, hit_id: int, *, confirmed: bool, note: str) -> ScreeningHit:
    """Clears an open hit as a false positive, or confirms it as a true match; the note says why."""
    hit = get_authorized(actor, Action.RESOLVE_SCREENING_HIT, ScreeningHit, hit_id)
    note = (note or "").strip()
    if not note:
        raise InvalidInput("say why", errors={"note": ["required: what was checked"]})
    # Read afresh and locked (on PostgreSQL): of two resolutions at once the later is judged on
    # what the earlier left, so a confirmed hit is never quietly overwritten as cleared.
    db.session.refresh(hit, with_for_update=True)
    if hit.status != ScreeningHitStatus.OPEN:
        raise InvalidState(f"the hit was resolved already ({hit.status})")
    hit.status = ScreeningHitStatus.CONFIRMED if confirmed else ScreeningHitStatus.CLEARED
    hit.resolved_by = actor.person
    hit.resolved_at = utcnow()
    hit.resolution_note = note
    audit.record(actor, Action.RESOLVE_SCREENING_HIT, HIT_SUBJECT, hit.id,
                 before={"status": str(ScreeningHitStatus.OPEN)}, after={"status": str(hit.status), "note": note})
    return hit
