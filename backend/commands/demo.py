"""`anchorline demo`: one receivable through its whole life, through the public REST API.

The demo participants (a supplier, a buyer, a financier and an auditor, besides the operator)
are made by `anchorline up` through the services, like any organisation: created, KYC approved
(which queues their onboarding on the ledger), each with a user and an API key. Their logins
are kept in <instance>/demo-credentials.json (mode 0600) so every `up` can show them again and
`anchorline demo` can act with the keys.

The lifecycle is driven only through the API, as a client would: the operator mints settlement
tokens to the financier and the buyer, the supplier registers an invoice, the buyer confirms it,
the supplier asks for financing, the financier offers, the supplier accepts (the advance and
the receivable change hands in one transaction), the buyer repays. Each write answers 202; the
demo polls until the API shows the state the indexer read from the chain, then looks the
transaction up (GET /api/v1/transactions) for its hash and block, and prints the timeline.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import requests
from flask import Flask
from sqlalchemy import select

from backend import paths
from backend.extensions import db
from backend.models import KycDocument, KycStatus, Role, User
from backend.security.api_keys import Scope
from backend.security.keystore import load_master_secret
from backend.services import accounts, organisations
from backend.services.actors import Actor
from backend.services.authentication import actor_for_api_key
from backend.services.errors import AuthenticationFailed, PermissionDenied

CREDENTIALS_FILE = "demo-credentials.json"
# How long one step may take from its API call until the API shows it indexed; a devnet mines
# within a second, the workers poll every second or are nudged at once.
STEP_TIMEOUT_SECONDS = 60.0
POLL_INTERVAL_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 10.0
API_KEY_NAME = "demo"


@dataclass(frozen=True)
class DemoParticipant:
    role: str
    name: str
    legal_identifier: str
    roles: Role
    email: str
    display_name: str


DEMO_PARTICIPANTS = (
    DemoParticipant("supplier", "Harbour Components Ltd", "0088:5790000000017", Role.SUPPLIER,
                    "supplier@anchorline.local", "Sam Supplier"),
    DemoParticipant("buyer", "Northwind Retail plc", "0088:5790000000024", Role.BUYER,
                    "buyer@anchorline.local", "Bea Buyer"),
    DemoParticipant("financier", "Meridian Trade Finance", "0088:5790000000031", Role.FINANCIER,
                    "financier@anchorline.local", "Finn Financier"),
    DemoParticipant("auditor", "Clearview Audit LLP", "0088:5790000000048", Role.AUDITOR,
                    "auditor@anchorline.local", "Ada Auditor"),
)
OPERATOR = "operator"


class DemoError(click.ClickException):
    """The demo could not go on; the message says at which step and why."""


@dataclass
class Login:
    """How one demo organisation signs in: its user's password (None when it was set before
    this instance folder's credentials file existed) and an API key."""

    organisation_id: int
    name: str
    email: str
    password: str | None = field(repr=False)
    api_key: str = field(repr=False)


@dataclass
class DemoCredentials:
    currency: str  # the settlement currency the demo trades in
    logins: dict[str, Login]  # by role: operator, supplier, buyer, financier, auditor
    api_url: str | None = None  # where `anchorline up` serves the API

    def save(self, path: Path) -> None:
        """Written readable by its owner only, replacing the old file in one step."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"currency": self.currency, "api_url": self.api_url,
                       "logins": {role: asdict(login) for role, login in self.logins.items()}}, file, indent=2)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> DemoCredentials | None:
        try:
            raw = json.loads(path.read_text())
            return cls(currency=raw["currency"], api_url=raw.get("api_url"),
                       logins={role: Login(**login) for role, login in raw["logins"].items()})
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"{path} is damaged ({exc}); delete it and run `anchorline up` again") from exc


def credentials_file(instance_dir: Path | None = None) -> Path:
    return (instance_dir or paths.INSTANCE_DIR) / CREDENTIALS_FILE


# ---------------------------------------------------------------- the demo participants (services)


def ensure_demo_participants(app: Flask, operator_sign_in: tuple[str, str] | None) -> DemoCredentials:
    """The operator's and the demo participants' logins: those recorded in the instance folder
    where they still work, new ones (made through the services) where not. `operator_sign_in`
    is the operator's email and password if it was made just now. Needs the operator to exist."""
    path = credentials_file(Path(app.instance_path))
    with app.app_context():
        stored = DemoCredentials.load(path)
        old = stored.logins if stored else {}
        operator = organisations.operator_organisation()
        if operator is None:
            raise click.ClickException("there is no operator organisation: run `anchorline admin create-operator`")
        operator_user = _first_user(operator.id)
        operator_actor = Actor(organisation=operator, user=operator_user)
        logins: dict[str, Login] = {}
        password = operator_sign_in[1] if operator_sign_in else _kept_password(old.get(OPERATOR), operator.id)
        logins[OPERATOR] = _login(old.get(OPERATOR), operator_actor, password, [Scope.READ, Scope.WRITE])
        master_secret = load_master_secret(Path(app.instance_path))
        for participant in DEMO_PARTICIPANTS:
            organisation = organisations.organisation_by_legal_identifier(participant.legal_identifier)
            password = _kept_password(old.get(participant.role), organisation.id if organisation else None)
            if organisation is None:
                organisation = organisations.create_organisation(
                    operator_actor, name=participant.name, legal_identifier=participant.legal_identifier,
                    roles=participant.roles, master_secret=master_secret)
            if organisation.kyc_status == KycStatus.PENDING:
                organisations.decide_kyc(operator_actor, organisation, approve=True, note="demo participant",
                                         documents_checked=list(KycDocument))
            user = _user_by_email(participant.email)
            if user is None:
                password = secrets.token_urlsafe(18)
                user = accounts.create_user(operator_actor, organisation, email=participant.email,
                                            display_name=participant.display_name, password=password)
            scopes = [Scope.READ] if participant.roles == Role.AUDITOR else [Scope.READ, Scope.WRITE]
            logins[participant.role] = _login(old.get(participant.role), Actor(organisation=organisation, user=user),
                                              password, scopes)
        credentials = DemoCredentials(currency=app.config["SETTLEMENT_CURRENCY"], logins=logins,
                                      api_url=stored.api_url if stored else None)
    credentials.save(path)
    return credentials


def _user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email))


def _first_user(organisation_id: int) -> User:
    user = db.session.scalar(select(User).where(User.organisation_id == organisation_id).order_by(User.id))
    if user is None:
        raise click.ClickException("the operator organisation has no user to act through")
    return user


def _kept_password(login: Login | None, organisation_id: int | None) -> str | None:
    return login.password if login and login.organisation_id == organisation_id else None


def _login(old: Login | None, actor: Actor, password: str | None, scopes: list[Scope]) -> Login:
    """The actor's login with `password`, and `old`'s key if that belongs to the actor's
    organisation and still works, else a newly issued one."""
    organisation = actor.organisation
    token = None
    if old is not None and old.organisation_id == organisation.id:
        try:
            if actor_for_api_key(old.api_key, request_id=None).organisation.id == organisation.id:
                token = old.api_key
        except (AuthenticationFailed, PermissionDenied):
            pass
    if token is None:
        _, token = accounts.issue_api_key(actor, name=API_KEY_NAME, scopes=[str(scope) for scope in scopes])
    email = actor.user.email if actor.user else ""
    return Login(organisation_id=organisation.id, name=organisation.name, email=email, password=password,
                 api_key=token)


def login_lines(credentials: DemoCredentials) -> Iterator[str]:
    """The logins, one line each, for the terminal of whoever ran `up`."""
    for role, login in credentials.logins.items():
        password = login.password or "(set before; not recorded)"
        yield f"{role:<10} {login.name:<26} {login.email:<28} {password:<26} {login.api_key}"


# ---------------------------------------------------------------- the lifecycle (REST API)


@dataclass(frozen=True)
class Step:
    what: str
    tx_hash: str
    block: int


class ApiClient:
    """One organisation's calls to the API with its key; any answer but 2xx is a DemoError."""

    def __init__(self, api_url: str, login: Login, role: str) -> None:
        self.base = api_url.rstrip("/")
        self.role = role
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {login.api_key}"

    def get(self, path: str, **params: Any) -> Any:
        return self._answer(self.session.get(self.base + path, params=params, timeout=REQUEST_TIMEOUT_SECONDS))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.session.post(self.base + path, json=body or {}, timeout=REQUEST_TIMEOUT_SECONDS,
                                   headers={"Idempotency-Key": uuid.uuid4().hex})
        return self._answer(answer)

    def _answer(self, answer: requests.Response) -> Any:
        if not answer.ok:
            try:
                problem = answer.json()
                detail = f"{problem.get('title')}: {problem.get('detail')} {problem.get('errors') or ''}".strip()
            except ValueError:
                detail = answer.text[:500]
            raise DemoError(f"{answer.request.method} {answer.url} as the {self.role} answered "
                            f"{answer.status_code}: {detail}")
        return answer.json()


class Lifecycle:
    """The demo's calls, each followed until indexed (see the module docstring)."""

    def __init__(self, api_url: str, credentials: DemoCredentials, *, step_timeout: float,
                 stopping: threading.Event | None = None) -> None:
        self.stopping = stopping
        self.currency = credentials.currency
        self.logins = credentials.logins
        self.step_timeout = step_timeout
        self.client = {role: ApiClient(api_url, login, role) for role, login in credentials.logins.items()}
        self.operator = self.client[OPERATOR]

    def run(self) -> Iterator[Step]:
        ids = {role: login.organisation_id for role, login in self.logins.items()}
        for role in ("supplier", "buyer", "financier", "auditor"):
            organisation = self._until(f"the {role}'s onboarding", lambda: self.operator.get(
                f"/organisations/{ids[role]}"), lambda o: o["participant_id"] is not None)
            yield self._step(f"organisation:{ids[role]}:onboard",
                             f"operator onboards {organisation['name']} (participant {organisation['participant_id']})")

        for role, amount in (("financier", "10000.00"), ("buyer", "2000.00")):
            operation = self.operator.post("/token-operations", {
                "kind": "mint", "organisation_id": ids[role], "amount": amount, "currency": self.currency,
                "reference": f"demo-deposit-{uuid.uuid4().hex[:12]}"})
            self._until(f"the mint to the {role}", lambda: self.operator.get(f"/token-operations/{operation['id']}"),
                        _settled("status", "done"))
            yield self._step(f"token_operation:{operation['id']}:mint",
                             f"operator mints {amount} {self.currency} to the {role}")

        supplier, buyer, financier = self.client["supplier"], self.client["buyer"], self.client["financier"]
        today = datetime.now(UTC).date()
        invoice = supplier.post("/invoices", {
            "invoice_number": f"DEMO-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
            "buyer": ids["buyer"], "amount": "1000.00", "currency": self.currency,
            "issue_date": today.isoformat(), "due_date": (today + timedelta(days=60)).isoformat()})
        invoice_path = f"/invoices/{invoice['id']}"
        self._until("the invoice's registration", lambda: supplier.get(invoice_path), _settled("status", "registered"))
        yield self._step(f"invoice:{invoice['id']}:register",
                         f"supplier registers invoice {invoice['invoice_number']} over 1000.00 {self.currency}")

        buyer.post(f"{invoice_path}/confirm")
        self._until("the buyer's confirmation", lambda: buyer.get(invoice_path), _settled("status", "confirmed"))
        yield self._step(f"invoice:{invoice['id']}:confirm", "buyer confirms the invoice")

        now = datetime.now(UTC)
        request = supplier.post(f"{invoice_path}/financing-requests", {
            "asking_advance": "950.00", "currency": self.currency,
            "deadline": (now + timedelta(days=7)).isoformat(), "recourse": False})
        request_path = f"/financing-requests/{request['id']}"
        self._until("the financing request", lambda: supplier.get(request_path), _settled("status", "open"))
        yield self._step(f"financing_request:{request['id']}:request",
                         f"supplier asks for at least 950.00 {self.currency}")

        offer = financier.post(f"{request_path}/offers", {
            "advance": "960.00", "currency": self.currency, "expiry": (now + timedelta(days=6)).isoformat()})
        offer_path = f"/offers/{offer['id']}"
        self._until("the financier's offer", lambda: financier.get(offer_path), _settled("status", "open"))
        yield self._step(f"offer:{offer['id']}:make", f"financier offers 960.00 {self.currency}")

        supplier.post(f"{offer_path}/accept", {"advance": "960.00", "currency": self.currency})
        self._until("the acceptance", lambda: supplier.get(invoice_path),
                    lambda found: found["holder_id"] == ids["financier"] and not found["pending_actions"])
        yield self._step(f"offer:{offer['id']}:accept",
                         "supplier accepts: 960.00 to the supplier, the receivable to the financier")

        repayment = buyer.post(f"{invoice_path}/repayments", {"amount": "1000.00", "currency": self.currency})
        self._until("the repayment", lambda: buyer.get(f"/repayments/{repayment['id']}"),
                    _settled("status", "recorded"))
        self._until("the repaid invoice", lambda: financier.get(invoice_path), _settled("status", "repaid"))
        yield self._step(f"repayment:{repayment['id']}:repay", f"buyer repays 1000.00 {self.currency} to the financier")

    def _until(self, what: str, read: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
        """Poll `read` until `done` holds; DemoError when it fails on the way or takes too long."""
        deadline = time.monotonic() + self.step_timeout
        while True:
            if self.stopping is not None and self.stopping.is_set():
                raise DemoError(f"interrupted while waiting for {what}")
            found = read()
            if done(found):
                return found
            failed = [action for action in found.get("pending_actions", []) if action["status"] in ("reverted", "failed")]
            if failed or found.get("status") in ("failed", "reverted"):
                raise DemoError(f"{what} failed on the ledger: {json.dumps(found)}")
            if time.monotonic() > deadline:
                raise DemoError(f"{what} was not indexed within {self.step_timeout:.0f}s; the API shows "
                                f"{json.dumps(found)}; `anchorline status` shows what the workers are doing")
            time.sleep(POLL_INTERVAL_SECONDS)

    def _step(self, intent: str, what: str) -> Step:
        """The transaction that carried `intent` (its last attempt), as a timeline step, once the
        outbox has recorded its receipt: the indexer may read the block's events before the
        outbox worker reads the receipt, so the API can show the state a moment earlier."""
        row = self._until(f"the receipt of {intent}", lambda: self._last_attempt(intent),
                          lambda found: found.get("status") in ("mined", "batched"))
        if row["status"] == "batched":  # it went out inside another row's batch transaction
            carrier = row["carried_by"]
            row = self._until(f"the receipt of the batch carrying {intent}",
                              lambda: self.operator.get(f"/transactions/{carrier}"), _settled("status", "mined"))
        return Step(what=what, tx_hash=row["tx_hash"], block=row["block_number"])

    def _last_attempt(self, intent: str) -> dict[str, Any]:
        """The newest outbox row of `intent` ({} while there is none). The operator sees every
        transaction; an intent key names its subject (`<subject type>:<id>:<action>`), which
        narrows the list, and repeatable intents number their attempts (`<intent>:<n>`)."""
        subject_type, subject_id, _ = intent.split(":", 2)
        narrowed = ({"invoice_id": subject_id} if subject_type == "invoice"
                    else {"subject_type": subject_type, "subject_id": subject_id})
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.operator.get("/transactions", limit=200, **narrowed, **({"cursor": cursor} if cursor else {}))
            found += [row for row in page["items"]
                      if row["intent_key"] == intent or row["intent_key"].startswith(intent + ":")]
            cursor = page.get("next_cursor")
            if not cursor:
                return max(found, key=lambda row: row["id"], default={})


def _settled(field: str, value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda found: found[field] == value


def run_demo(api_url: str, credentials: DemoCredentials, *, step_timeout: float = STEP_TIMEOUT_SECONDS,
             stopping: threading.Event | None = None) -> None:
    """Drive the lifecycle and print its timeline as it goes; `stopping`, once set, ends it
    with a DemoError at the next poll."""
    click.echo(f"demo: one invoice through its whole life, through the API at {api_url}")
    started = time.monotonic()
    for step in Lifecycle(api_url, credentials, step_timeout=step_timeout, stopping=stopping).run():
        click.echo(f"  block {step.block:>6}  {step.tx_hash}  {step.what}")
    click.echo(f"demo complete in {time.monotonic() - started:.1f}s: every step mined and indexed")


@click.command()
@click.option("--api-url", help="The API's base URL (default: where `anchorline up` serves it), e.g. "
                                 "http://127.0.0.1:8000/api/v1.")
@click.option("--step-timeout", type=click.FloatRange(min=1), default=STEP_TIMEOUT_SECONDS, show_default=True,
              help="Seconds each step may take until the API shows it indexed.")
def demo(api_url: str | None, step_timeout: float) -> None:
    """Drive one invoice through its whole lifecycle through the REST API, with the demo
    participants' API keys, and print the timeline with transaction hashes and blocks."""
    path = credentials_file()
    credentials = DemoCredentials.load(path)
    if credentials is None:
        raise click.ClickException(f"no demo participants recorded in {path}: start the stack with `anchorline up`")
    api_url = api_url or credentials.api_url
    if not api_url:
        raise click.UsageError("give --api-url: no running stack recorded where the API is")
    try:
        run_demo(api_url, credentials, step_timeout=step_timeout)
    except requests.RequestException as exc:
        raise click.ClickException(f"the API at {api_url} does not answer ({type(exc).__name__}); is the stack "
                                   f"running (`anchorline up`)?") from exc
