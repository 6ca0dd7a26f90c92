"""Throughput of the whole stack as users run it: invoices per second from the API to the
indexed ledger state, single-invoice latency and the time to fund, on `anchorline up`.

    python -m bench.throughput                    # 10,000 by CSV, 1,000 singles, 30 samples each
    python -m bench.throughput --count 2000 --baseline-count 200 --samples 10 --json
    python -m bench.throughput --database-url postgresql://127.0.0.1:5432/postgres

Each stack is `anchorline up --no-demo` in a subprocess (this Python, `-m backend.cli`), in a
temporary instance folder with a temporary deployments folder (the developer's
deployments/<chain id>.json is never touched), on free ports, with the bundled Redis (REDIS_URL
unset) and a fresh devnet. The database is SQLite in the instance folder, or with
--database-url a throwaway database the benchmark creates on that PostgreSQL server for each
stack and drops afterwards. The demo participants' logins come from the credentials file `up`
writes; the benchmark waits until the ledger has onboarded them and mints settlement tokens to
the financier through the API. Each stack is stopped with SIGINT, whatever happens, and every
process it started is checked to be gone and every port free.

Two settings differ from `up`'s defaults, in both stacks alike: the per-key API rate limit
(600 requests a minute) is lifted, since the baseline posts a thousand invoices and the
latency figures poll with one key, and the benchmark would otherwise measure the limiter; and
the baseline stack runs with OUTBOX_BATCH_MAX=1.

Figures (targets printed, never asserted):

- **End to end**: --count invoices as ONE CSV (all-or-nothing mode) posted to
  `POST /api/v1/invoices/csv`; the clock runs from the POST until the API shows none of the
  supplier's invoices pending (`GET /invoices?as=supplier&status=pending&limit=1`, one cheap
  request every 50 ms), i.e. every registration is mined and indexed. Afterwards (untimed) the
  API's pages are counted: all --count invoices must be registered. Target >= 300 invoices/s.
- **Baseline, one transaction per invoice, same run**: a second stack (fresh instance, chain
  and database) with OUTBOX_BATCH_MAX=1; --baseline-count invoices each posted to
  `POST /api/v1/invoices` by four client threads, clocked the same way. Target: end to end
  >= 5x this.
- **Single latency** on the batching stack: --samples invoices posted one at a time; each from
  the POST until `GET /invoices/{id}` shows it registered (polled every 10 ms); p50 and p95.
- **Time to fund** on the batching stack: --samples receivables prepared through the API
  (registered by CSV, confirmed by the buyer, financing requested by the supplier), then, one
  at a time, the financier's `POST /financing-requests/{id}/fund` until
  `GET /financing-requests/{id}` shows it funded (polled every 10 ms); the invoice is then
  checked to be held by the financier. p95, target <= 2 s.

While waiting, any reverted or failed ledger write (`GET /transactions?status=...`) stops the
benchmark with its error: a figure is only reported when every write succeeded.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from backend import processes
from backend.chain import devnet
from backend.commands.demo import (
    DEMO_PARTICIPANTS,
    OPERATOR,
    ApiClient,
    DemoCredentials,
    DemoError,
    credentials_file,
)
from backend.config import WORKER_SETTINGS
from backend.paths import PROJECT_ROOT
from workers import redis_server

END_TO_END_TARGET = 300.0  # invoices/s
RATIO_TARGET = 5.0
TIME_TO_FUND_TARGET_SECONDS = 2.0
BASELINE_THREADS = 4
INVOICE_AMOUNT = "100.00"
ASKING_ADVANCE = "95.00"
HOST = "127.0.0.1"
# `up` starts Redis, anvil, deploys, migrates and waits for a worker's heartbeat.
START_TIMEOUT_SECONDS = 300.0
# A warm Celery shutdown may wait up to 30 s for running tasks (backend/commands/up.py).
STOP_TIMEOUT_SECONDS = 150.0
UPLOAD_TIMEOUT_SECONDS = 600.0
SETTLE_POLL_SECONDS = 0.05
SAMPLE_POLL_SECONDS = 0.01
FAILURE_CHECK_SECONDS = 1.0
# Lifts the per-key limit of `up` (600 a minute); see the module docstring.
BENCH_RATE_LIMIT = "1000000 per minute"
# Settings of the developer's environment that would point a stack elsewhere or change what is measured.
FOREIGN_SETTINGS = ("DATABASE_URL", "REDIS_URL", "ETH_RPC_URL", "RATELIMIT_STORAGE_URI", "DOCUMENTS_DIR",
                    "API_RATE_LIMIT", "MAX_CONTENT_LENGTH", "SECRET_KEY", "ANCHORLINE_MASTER_SECRET",
                    "DEPLOYER_PRIVATE_KEY", *WORKER_SETTINGS)
UP_READY = "running; press Ctrl-C to stop"
STARTED_CHILD = re.compile(r"^(Redis|devnet|worker|beat|web server) (?:started|already running) .*?pid (\d+)\)",
                           re.MULTILINE)
LISTENING_ADDRESS = re.compile(r"(?:Redis started at|devnet started at http://)(127\.0\.0\.1):(\d+)")


class BenchError(RuntimeError):
    """The benchmark could not produce a figure; the message says why."""


class BenchClient(ApiClient):
    """The demo's API client, plus a multipart upload (with a timeout fit for a large file)."""

    def upload(self, path: str, filename: str, data: bytes, form: dict[str, str]) -> Any:
        answer = self.session.post(self.base + path, files={"file": (filename, data, "text/csv")}, data=form,
                                   timeout=UPLOAD_TIMEOUT_SECONDS, headers={"Idempotency-Key": uuid.uuid4().hex})
        return self._answer(answer)


@dataclass
class RunningStack:
    """One `anchorline up` and what the benchmark needs of it."""

    folder: Path
    api_url: str
    credentials: DemoCredentials
    timeout: float

    def client(self, role: str) -> BenchClient:
        return BenchClient(self.api_url, self.credentials.logins[role], role)

    def organisation_id(self, role: str) -> int:
        return self.credentials.logins[role].organisation_id


# ---------------------------------------------------------------- the stack


@contextmanager
def database(server_url: str | None) -> Iterator[str | None]:
    """None (SQLite in the instance folder), or the URL of a new PostgreSQL database on
    `server_url`'s server, dropped when the block exits."""
    if server_url is None:
        yield None
        return
    server = make_url(server_url)
    if not server.drivername.startswith("postgresql"):
        raise BenchError(f"--database-url must name a PostgreSQL server, not {server.drivername}")
    name = f"anchorline_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def stack(database_url: str | None, *, batch_max: int | None, timeout: float) -> Iterator[RunningStack]:
    """`anchorline up --no-demo` in a temporary folder, until it is healthy and its demo
    participants are onboarded; stopped with SIGINT when the block exits, and checked to
    leave nothing running."""
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as temporary, database(database_url) as url:
        root = Path(temporary)
        folder = root / "instance"
        env = {name: value for name, value in os.environ.items() if name not in FOREIGN_SETTINGS}
        env.update(ANCHORLINE_INSTANCE=str(folder), ANCHORLINE_DEPLOYMENTS=str(root / "deployments"),
                   API_RATE_LIMIT=BENCH_RATE_LIMIT, PYTHONUNBUFFERED="1")
        if url is not None:
            env["DATABASE_URL"] = url
        if batch_max is not None:
            env["OUTBOX_BATCH_MAX"] = str(batch_max)
        devnet_port, api_port = processes.free_port(HOST), processes.free_port(HOST)
        log = root / "up.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "up", "--no-demo", "--port", str(devnet_port),
                 "--api-port", str(api_port)],
                cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_for_output(process, log, UP_READY, START_TIMEOUT_SECONDS)
            credentials = DemoCredentials.load(credentials_file(folder))
            if credentials is None or credentials.api_url is None:
                raise BenchError(f"`up` wrote no credentials with the API's URL in {folder}")
            running = RunningStack(folder, credentials.api_url, credentials, timeout)
            _wait_for_onboarding(running)
            yield running
        finally:
            _stop(process, log, folder, api_port)


def _wait_for_output(process: subprocess.Popen[bytes], log: Path, marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise BenchError(f"`anchorline up` exited with status {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"`anchorline up` was not running within {timeout:.0f}s:\n{_tail(log)}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes], log: Path, folder: Path, api_port: int) -> None:
    """SIGINT to `up`, as Ctrl-C; then every child it reported must be gone with its process
    group, and every port free. If `up` does not exit in time it is killed and its children
    are stopped here, and that is an error."""
    process.send_signal(signal.SIGINT)
    output = log.read_text(errors="replace")
    children = {name: int(pid) for name, pid in STARTED_CHILD.findall(output)}
    addresses = [(host, int(port)) for host, port in LISTENING_ADDRESS.findall(output)] + [(HOST, api_port)]
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        for name in ("web server", "beat", "worker"):
            if name in children:
                processes.kill_process_group(children[name], 5.0)
        devnet.stop(devnet.default_directory(folder))
        redis_server.stop(redis_server.default_directory(folder))
        raise BenchError(f"`anchorline up` did not stop within {STOP_TIMEOUT_SECONDS:.0f}s of SIGINT; "
                         f"killed it and its children:\n{_tail(log)}") from None
    left = [f"{name} (pid {pid})" for name, pid in children.items() if processes.live_process_args(pid) is not None]
    left += [f"a member of the {name}'s process group" for name, pid in children.items()
             if name in ("web server", "beat", "worker") and processes.process_group_members(pid)]
    left += [f"something on {host}:{port}" for host, port in addresses if processes.listening(host, port)]
    if left:
        raise BenchError(f"still running after `anchorline up` stopped: {', '.join(left)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_for_onboarding(running: RunningStack) -> None:
    operator = running.client(OPERATOR)
    for participant in DEMO_PARTICIPANTS:
        path = f"/organisations/{running.organisation_id(participant.role)}"
        _until(f"the {participant.role}'s onboarding", lambda: operator.get(path),
               lambda organisation: organisation["participant_id"] is not None, running.timeout)


def _until(what: str, read: Callable[[], Any], done: Callable[[Any], bool], timeout: float,
           poll: float = SETTLE_POLL_SECONDS, check: Callable[[], None] | None = None) -> Any:
    """Poll `read` until `done` holds; `check` (every second) raises on a failed write."""
    deadline = time.monotonic() + timeout
    checked = time.monotonic()
    while True:
        found = read()
        if done(found):
            return found
        if check is not None and time.monotonic() - checked > FAILURE_CHECK_SECONDS:
            check()
            checked = time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not happen within {timeout:.0f}s; the API shows {json.dumps(found)[:500]}")
        time.sleep(poll)


def _no_failed_writes(operator: ApiClient) -> Callable[[], None]:
    def check() -> None:
        for status in ("reverted", "failed"):
            page = operator.get("/transactions", status=status, limit=1)
            if page["items"]:
                row = page["items"][0]
                raise BenchError(f"a ledger write was {status}: {row['intent_key']} "
                                 f"{row.get('error_name') or ''} {row.get('error') or ''}".strip())
    return check


def _mint(running: RunningStack, role: str, amount: str) -> None:
    operator = running.client(OPERATOR)
    operation = operator.post("/token-operations", {
        "kind": "mint", "organisation_id": running.organisation_id(role), "amount": amount,
        "currency": running.credentials.currency, "reference": f"bench-deposit-{uuid.uuid4().hex[:12]}"})
    _until(f"the mint to the {role}", lambda: operator.get(f"/token-operations/{operation['id']}"),
           lambda found: found["status"] == "done", running.timeout, check=_no_failed_writes(operator))


# ---------------------------------------------------------------- the invoices


def _csv(prefix: str, count: int, buyer: str, currency: str) -> bytes:
    today = datetime.now(UTC).date()
    issue, due = today.isoformat(), (today + timedelta(days=60)).isoformat()
    rows = ["invoice_number,buyer,amount,currency,issue_date,due_date"]
    rows += [f"{prefix}-{number:06d},{buyer},{INVOICE_AMOUNT},{currency},{issue},{due}"
             for number in range(1, count + 1)]
    return ("\n".join(rows) + "\n").encode()


def _invoice(number: str, buyer_id: int, currency: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {"invoice_number": number, "buyer": buyer_id, "amount": INVOICE_AMOUNT, "currency": currency,
            "issue_date": today.isoformat(), "due_date": (today + timedelta(days=60)).isoformat()}


def _buyer_identifier() -> str:
    return next(p.legal_identifier for p in DEMO_PARTICIPANTS if p.role == "buyer")


def _upload(running: RunningStack, prefix: str, count: int) -> tuple[list[int], float]:
    """The ids of `count` invoices uploaded as one CSV, and the seconds the POST took."""
    supplier = running.client("supplier")
    started = time.perf_counter()
    answer = supplier.upload("/invoices/csv", f"{prefix}.csv", _csv(prefix, count, _buyer_identifier(),
                                                                      running.credentials.currency),
                             {"mode": "all-or-nothing"})
    seconds = time.perf_counter() - started
    if len(answer["invoice_ids"]) != count or answer["errors"]:
        raise BenchError(f"the CSV upload registered {len(answer['invoice_ids'])} of {count} invoices: "
                         f"{answer['errors'][:3]}")
    return answer["invoice_ids"], seconds


def _wait_until_none_pending(running: RunningStack) -> None:
    """Until the API shows none of the supplier's invoices pending (all registered on-chain and indexed)."""
    supplier = running.client("supplier")
    _until("the registrations", lambda: supplier.get("/invoices", **{"as": "supplier", "status": "pending",
                                                                      "limit": 1}),
           lambda page: not page["items"], running.timeout, check=_no_failed_writes(running.client(OPERATOR)))


def _count_registered(running: RunningStack) -> int:
    supplier = running.client("supplier")
    total, cursor = 0, None
    while True:
        page = supplier.get("/invoices", **{"as": "supplier", "status": "registered", "limit": 200,
                                            **({"cursor": cursor} if cursor else {})})
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


@dataclass
class Rate:
    invoices: int
    seconds: float
    intake_seconds: float  # of which the API took to accept them

    @property
    def per_second(self) -> float:
        return self.invoices / self.seconds


def end_to_end(running: RunningStack, count: int) -> Rate:
    started = time.perf_counter()
    _, intake = _upload(running, "BENCH-E2E", count)
    return _all_registered(running, count, started, intake)


def baseline(running: RunningStack, count: int) -> Rate:
    buyer_id, currency = running.organisation_id("buyer"), running.credentials.currency
    errors: list[BaseException] = []

    def post(numbers: range) -> None:
        supplier = running.client("supplier")
        try:
            for number in numbers:
                supplier.post("/invoices", _invoice(f"BENCH-ONE-TX-{number:06d}", buyer_id, currency))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(range(start, count, BASELINE_THREADS),))
               for start in range(BASELINE_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    intake = time.perf_counter() - started
    if errors:
        raise BenchError(f"posting the invoices failed: {errors[0]}") from errors[0]
    return _all_registered(running, count, started, intake)


def _all_registered(running: RunningStack, count: int, started: float, intake: float) -> Rate:
    """Waits until no invoice is pending, checks that `count` are registered, and returns the
    rate from `started` (perf_counter) on."""
    _wait_until_none_pending(running)
    seconds = time.perf_counter() - started
    registered = _count_registered(running)
    if registered != count:
        raise BenchError(f"{registered} invoices are registered, expected {count}")
    return Rate(count, seconds, intake)


def single_latencies(running: RunningStack, samples: int) -> list[float]:
    supplier = running.client("supplier")
    check = _no_failed_writes(running.client(OPERATOR))
    buyer_id, currency = running.organisation_id("buyer"), running.credentials.currency
    latencies = []
    for number in range(samples):
        started = time.perf_counter()
        invoice = supplier.post("/invoices", _invoice(f"BENCH-SINGLE-{number:06d}", buyer_id, currency))
        _until("a single registration", lambda: supplier.get(f"/invoices/{invoice['id']}"),
               lambda found: found["status"] == "registered", running.timeout, SAMPLE_POLL_SECONDS, check)
        latencies.append(time.perf_counter() - started)
    return latencies


def time_to_fund(running: RunningStack, samples: int) -> list[float]:
    """Prepares `samples` open financing requests (untimed), then funds them one at a time."""
    supplier, buyer, financier = running.client("supplier"), running.client("buyer"), running.client("financier")
    check = _no_failed_writes(running.client(OPERATOR))
    advance = float(ASKING_ADVANCE)
    _mint(running, "financier", f"{math.ceil(advance * samples) + 1:.2f}")
    invoice_ids, _ = _upload(running, "BENCH-FUND", samples)
    _wait_until_none_pending(running)

    for invoice_id in invoice_ids:
        buyer.post(f"/invoices/{invoice_id}/confirm")
    for invoice_id in invoice_ids:
        _until("a confirmation", lambda: buyer.get(f"/invoices/{invoice_id}"),
               lambda found: found["status"] == "confirmed", running.timeout, check=check)
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    request_ids = [supplier.post(f"/invoices/{invoice_id}/financing-requests", {
        "asking_advance": ASKING_ADVANCE, "currency": running.credentials.currency, "deadline": deadline,
        "recourse": False})["id"] for invoice_id in invoice_ids]
    for request_id in request_ids:
        _until("a financing request", lambda: supplier.get(f"/financing-requests/{request_id}"),
               lambda found: found["status"] == "open", running.timeout, check=check)

    financier_id = running.organisation_id("financier")
    seconds = []
    for request_id, invoice_id in zip(request_ids, invoice_ids):
        started = time.perf_counter()
        financier.post(f"/financing-requests/{request_id}/fund")
        _until("a funding", lambda: financier.get(f"/financing-requests/{request_id}"),
               lambda found: found["status"] == "funded", running.timeout, SAMPLE_POLL_SECONDS, check)
        seconds.append(time.perf_counter() - started)
        holder = financier.get(f"/invoices/{invoice_id}")["holder_id"]
        if holder != financier_id:
            raise BenchError(f"invoice {invoice_id}'s request is funded but it is held by {holder}")
    return seconds


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# ---------------------------------------------------------------- the run


def measure(count: int, baseline_count: int, samples: int, database_url: str | None, timeout: float) -> dict[str, Any]:
    with stack(database_url, batch_max=None, timeout=timeout) as running:
        batched = end_to_end(running, count)
        latencies = single_latencies(running, samples)
        funding = time_to_fund(running, samples)
    with stack(database_url, batch_max=1, timeout=timeout) as running:
        single = baseline(running, baseline_count)
    config = devnet.load_config()
    return {
        "end_to_end_invoices_per_s": round(batched.per_second, 1),
        "end_to_end_invoices": batched.invoices,
        "end_to_end_seconds": round(batched.seconds, 2),
        "end_to_end_intake_seconds": round(batched.intake_seconds, 2),
        "baseline_invoices_per_s": round(single.per_second, 1),
        "baseline_invoices": single.invoices,
        "baseline_seconds": round(single.seconds, 2),
        "baseline_intake_seconds": round(single.intake_seconds, 2),
        "ratio": round(batched.per_second / single.per_second, 2),
        "single_samples": samples,
        "single_p50_s": round(statistics.median(latencies), 3),
        "single_p95_s": round(percentile(latencies, 0.95), 3),
        "time_to_fund_samples": samples,
        "time_to_fund_p50_s": round(statistics.median(funding), 3),
        "time_to_fund_p95_s": round(percentile(funding, 0.95), 3),
        "database": "postgresql" if database_url else "sqlite",
        "mining": _mining(config),
        "cpus": os.cpu_count(),
    }


def _mining(config: devnet.DevnetConfig) -> str:
    interval = f"{config.block_time_seconds}s blocks" if config.block_time_seconds else None
    if config.mixed_mining and interval:
        return f"mixed (instant + {interval})"
    return f"interval ({interval})" if interval else "instant"


def print_report(r: dict[str, Any]) -> None:
    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    print(f"Anchorline throughput through `anchorline up` ({today}; {r['database']}, devnet {r['mining']} mining, "
          f"{r['cpus']} CPUs)")
    print("Clocked from the API call until the API shows the indexed ledger state.\n")
    print(f"{'figure':<40}{'value':>14}  {'target':<16}{'':<8}")
    rows = [
        (f"end to end, {r['end_to_end_invoices']:,} by one CSV", f"{r['end_to_end_invoices_per_s']:,.1f}/s",
         f">= {END_TO_END_TARGET:,.0f}/s", verdict(r["end_to_end_invoices_per_s"] >= END_TO_END_TARGET)),
        (f"  of which the upload (API intake)", f"{r['end_to_end_intake_seconds']:.2f} s", "", ""),
        (f"  all indexed after", f"{r['end_to_end_seconds']:.2f} s", "", ""),
        (f"one tx per invoice, {r['baseline_invoices']:,} POSTs", f"{r['baseline_invoices_per_s']:,.1f}/s", "", ""),
        (f"  all indexed after", f"{r['baseline_seconds']:.2f} s", "", ""),
        ("ratio", f"{r['ratio']:.1f}x", f">= {RATIO_TARGET:.0f}x", verdict(r["ratio"] >= RATIO_TARGET)),
        (f"single invoice latency p50 ({r['single_samples']})", f"{r['single_p50_s']:.3f} s", "", ""),
        (f"single invoice latency p95 ({r['single_samples']})", f"{r['single_p95_s']:.3f} s", "", ""),
        (f"time to fund p50 ({r['time_to_fund_samples']})", f"{r['time_to_fund_p50_s']:.3f} s", "", ""),
        (f"time to fund p95 ({r['time_to_fund_samples']})", f"{r['time_to_fund_p95_s']:.3f} s",
         f"<= {TIME_TO_FUND_TARGET_SECONDS:.0f} s", verdict(r["time_to_fund_p95_s"] <= TIME_TO_FUND_TARGET_SECONDS)),
    ]
    for figure, value, target, met in rows:
        print(f"{figure:<40}{value:>14}  {target:<16}{met:<8}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000,
                        help="invoices uploaded as one CSV on the batching stack (default 10,000)")
    parser.add_argument("--baseline-count", type=int, default=1_000,
                        help="invoices posted one by one on the one-transaction-per-invoice stack (default 1,000)")
    parser.add_argument("--samples", type=int, default=30,
                        help="single invoices timed, and receivables funded (default 30)")
    parser.add_argument("--database-url",
                        help="a PostgreSQL server (e.g. postgresql://127.0.0.1:5432/postgres) on which each stack "
                             "gets a throwaway database; default SQLite in each stack's instance folder")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds any one wait may take before the benchmark gives up (default 900)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    args = parser.parse_args(argv)
    for name in ("count", "baseline_count", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    try:
        devnet.anvil_binary()
    except devnet.AnvilNotFound as exc:
        parser.error(str(exc))
    try:
        result = measure(args.count, args.baseline_count, args.samples, args.database_url, args.timeout)
    except (BenchError, DemoError) as exc:  # DemoError: the API refused a call (ApiClient)
        print(f"bench.throughput: {exc}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"bench.throughput: the API stopped answering ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
