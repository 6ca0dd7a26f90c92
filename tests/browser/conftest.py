"""Fixtures of the browser tests (issue 5 §7).

One whole stack for the browser tests (package-scoped: it stops when they are done, before the
rest of the suite): `anchorline up --no-demo` in a temporary instance folder on free ports
(Redis, the devnet, the contracts, the database, the demo participants with their logins, a
Celery worker and beat, gunicorn), with the buyer and the financier funded through
the operator's API; stopped with Ctrl-C (SIGINT) after the last test, which must leave nothing
running. Debian's Chromium, launched by path through Playwright: CHROMIUM_BINARY, else the
`chromium` on PATH; never a downloaded browser. Each demo role signs in once, through the
sign-in form; each test then gets a `Journey`: pages signed in as a role, numbered screenshots
in artifacts/screenshots/<test>/ and, when it fails, a screenshot of every page it had open.

Without Chromium the tests fail, saying what to install (`make test` installs it): CI must run them.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from backend import processes
from backend.chain import devnet
from backend.commands.demo import CREDENTIALS_FILE, DemoCredentials
from backend.commands.up import LOGS_DIRECTORY
from backend.paths import PROJECT_ROOT
from tests.browser.support import Journey, RunningStack, SignIns, wait_for
from tests.db_fixtures import CONFIG_ENVIRONMENT
from workers import redis_server

CHROMIUM_BINARY_ENV = "CHROMIUM_BINARY"
SCREENSHOTS_DIR = PROJECT_ROOT / "artifacts" / "screenshots"
STACK_LOGS_DIR = PROJECT_ROOT / "artifacts" / "stack-logs"
HOST = "127.0.0.1"
# What `up` prints once every part reports healthy (backend/commands/up.py).
UP_RUNNING = "running; press Ctrl-C to stop"
# How `up` names each process it starts: "worker started (pid 123), log ...", "Redis started at
# 127.0.0.1:6380 (bundled redis-server, pid 124)".
STARTED = re.compile(r"^(\w[\w ]*?) started .*\(.*pid (\d+)\)", re.MULTILINE)
# `up` compiles nothing new, migrates a fresh SQLite file and waits for the worker's first
# heartbeat: about half a minute on a loaded 2-core machine.
START_TIMEOUT_SECONDS = 180.0
# `up` stops its children in turn, each within 30 s (up.CHILD_STOP_TIMEOUT_SECONDS).
STOP_TIMEOUT_SECONDS = 120.0
# Settlement tokens the operator mints to the buyer (to repay) and the financier (to advance).
FUNDS = "100000.00"

FAILED = pytest.StashKey[bool]()


# Package-scoped: the stack and the browser stop once the browser tests are done, not at the end
# of the whole suite (a Celery worker and beat, gunicorn, anvil and Chromium would otherwise take
# CPU from every later test).
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`anchorline up --no-demo` for the browser tests, in a temporary instance folder on free ports,
    ready when it says it runs and the participants are on the ledger and funded. Its logs are
    kept in artifacts/stack-logs/ once it stopped."""
    folder = tmp_path_factory.mktemp("stack")
    instance = folder / "instance"
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_ENVIRONMENT}
    env.update(ANCHORLINE_INSTANCE=str(instance), ANCHORLINE_DEPLOYMENTS=str(folder / "deployments"),
               PYTHONUNBUFFERED="1")
    api_port = processes.free_port(HOST)
    log = folder / "up.log"
    with log.open("wb") as output:
        # In pytest's own process group: a Ctrl-C at the terminal reaches `up` too, which stops its children.
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "up", "--no-demo", "--port", str(processes.free_port(HOST)),
             "--api-port", str(api_port)],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_running(process, log)
        credentials = DemoCredentials.load(instance / CREDENTIALS_FILE)
        base_url = f"http://{HOST}:{api_port}"
        running = RunningStack(base_url=base_url, api_url=f"{base_url}/api/v1", credentials=credentials)
        fund_participants(running)
        yield running
    finally:
        leftovers = stop_stack(process, log, instance)
        keep_logs(log, instance / LOGS_DIRECTORY)
    assert process.returncode == 0 and not leftovers, (
        f"`anchorline up` did not stop cleanly (exit status {process.returncode}; still running: {leftovers}); "
        f"{processes.log_tail(log)}")


def wait_until_running(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while UP_RUNNING not in log.read_text(errors="replace"):
        if process.poll() is not None:
            pytest.fail(f"`anchorline up` exited with status {process.returncode} before the stack ran; "
                        f"{processes.log_tail(log)}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"the stack was not running within {START_TIMEOUT_SECONDS:.0f}s; {processes.log_tail(log)}",
                        pytrace=False)
        try:
            process.wait(0.25)  # returns at once if `up` gives up
        except subprocess.TimeoutExpired:
            pass


def fund_participants(stack: RunningStack) -> None:
    """Waits until the supplier, the buyer and the financier are onboarded on the ledger (their
    KYC approval queued it), then has the operator mint FUNDS to the buyer and the financier."""
    operator = stack.api("operator")
    for role in ("supplier", "buyer", "financier"):
        wait_for(f"the {role}'s onboarding", partial(operator.get, f"/organisations/{stack.organisation_id(role)}"),
                 lambda organisation: organisation["participant_id"] is not None)
    mints = [operator.post("/token-operations", {
        "kind": "mint", "organisation_id": stack.organisation_id(role), "amount": FUNDS, "currency": stack.currency,
        "reference": f"browser-tests-{role}-{uuid.uuid4().hex[:12]}"}) for role in ("buyer", "financier")]
    for mint in mints:
        wait_for(f"token operation {mint['id']}", partial(operator.get, f"/token-operations/{mint['id']}"),
                 lambda operation: operation["status"] == "done")


def stop_stack(process: subprocess.Popen[bytes], log: Path, instance: Path) -> list[str]:
    """Ctrl-C to `up` (SIGKILL after STOP_TIMEOUT_SECONDS); then whatever it started that
    still runs (a process, or one of a child's process group), which is stopped now."""
    processes.terminate(process, STOP_TIMEOUT_SECONDS, signum=signal.SIGINT)
    leftovers = []
    for name, pid in STARTED.findall(log.read_text(errors="replace")):
        if processes.live_process_args(int(pid)) is not None or processes.process_group_members(int(pid)):
            leftovers.append(f"{name} (pid {pid})")
            processes.kill_process_group(int(pid), timeout=5)
    # Redis and the devnet, should `up` have died before stopping them.
    devnet.stop(devnet.default_directory(instance))
    redis_server.stop(redis_server.default_directory(instance))
    return leftovers


def keep_logs(up_log: Path, logs: Path) -> None:
    """`up`'s output and its children's logs (worker, beat, web server), in STACK_LOGS_DIR."""
    shutil.rmtree(STACK_LOGS_DIR, ignore_errors=True)
    if logs.is_dir():
        shutil.copytree(logs, STACK_LOGS_DIR)
    STACK_LOGS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(up_log, STACK_LOGS_DIR)


# ---------------------------------------------------------------- Chromium


def chromium_binary() -> str:
    """CHROMIUM_BINARY, else the `chromium` on PATH (Debian's package); a clear failure without one."""
    configured = os.environ.get(CHROMIUM_BINARY_ENV)
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"{CHROMIUM_BINARY_ENV}={configured} is not an executable file: set it to a Chromium binary, "
                        f"or unset it to use Debian's `chromium` on PATH.", pytrace=False)
        return configured
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail(f"no `chromium` on PATH: the browser tests drive Debian's Chromium. Install it with `sudo apt-get "
                    f"install chromium` (`make test` does), or set {CHROMIUM_BINARY_ENV} to a Chromium binary.",
                    pytrace=False)
    return binary


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the browser tests, launched by path: Playwright downloads no browser."""
    binary = chromium_binary()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=binary, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def sign_ins(browser: Browser, stack: RunningStack) -> SignIns:
    """The demo roles' signed-in states, for the browser tests."""
    return SignIns(browser, stack)


# ---------------------------------------------------------------- one test's journey


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Notes a test that failed, for `journey` to photograph its pages before they close."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def journey(
    request: pytest.FixtureRequest, browser: Browser, stack: RunningStack, sign_ins: SignIns
) -> Iterator[Journey]:
    """The test's pages and screenshots (Chromium first: without it, no stack is started)."""
    folder = SCREENSHOTS_DIR / request.node.name
    shutil.rmtree(folder, ignore_errors=True)  # only this run's screenshots
    folder.mkdir(parents=True)
    current = Journey(browser, stack, sign_ins, folder)
    yield current
    current.close(failed=request.node.stash.get(FAILED, False))
