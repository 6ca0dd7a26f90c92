"""`anchorline up` (what `make run` calls): the whole stack in the foreground, until Ctrl-C.

In order: Redis (REDIS_URL, else the bundled redis-server, workers/redis_server.py), the devnet
(unless ETH_RPC_URL names a chain), the contracts' deployment, the database's migrations, the
demo organisations with their users and API keys (backend/commands/demo.py), a Celery worker,
Celery beat and the web server (gunicorn). When the stack reports healthy (GET /api/v1/health)
it prints the URLs and the demo logins, runs the demo through the API (--demo, the default)
and waits.

Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal closed), at any moment, stops everything `up` started, in reverse order:
each child runs in a process group of its own, which is emptied after the child exits, so no
pool process or web worker outlives it. A devnet or bundled Redis that was already running is
left so. If a child dies on its own, `up` stops the rest and exits with status 1.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
import redis
import requests
from sqlalchemy.engine import make_url

from backend import paths, processes
from backend.chain import devnet as chain_devnet
from backend.chain.compiler import CompilationError
from backend.chain.connection import RPC_URL_ENV, ChainError, connect, redact_url
from backend.chain.deploy import DeploymentError
from backend.chain.transactions import TransactionReverted
from backend.commands.demo import (
    DemoCredentials,
    DemoError,
    credentials_file,
    ensure_demo_participants,
    login_lines,
    run_demo,
)
from backend.commands.deploy import ensure_deployed, summary
from backend.commands.serve import DEFAULT_HOST, DEFAULT_PORT, ensure_local_operator, prepared_app
from backend.commands.workers import beat_command, worker_command
from workers import redis_server

# gunicorn's (sync) worker processes, each serving one request at a time.
WEB_WORKERS = 2
# From the children's start until the health document says every part works: the worker's
# first heartbeat comes a few seconds after beat starts.
READY_TIMEOUT_SECONDS = 120.0
# gunicorn restarts a worker whose request runs longer than this: a bulk upload of the largest
# CSV the intake takes (10,000 rows) needs well under it, even on a slow machine.
REQUEST_TIMEOUT_SECONDS = 120
# A warm Celery shutdown waits for the running tasks; gunicorn for the requests in flight.
CHILD_STOP_TIMEOUT_SECONDS = 30.0
# SIGKILL takes effect at once; the wait is for the kernel to reap them.
GROUP_KILL_TIMEOUT_SECONDS = 5.0
LOGS_DIRECTORY = "logs"
# The bundled Redis's second database holds the API's rate-limit counters, shared by the web
# server's processes (the first is the Celery queue).
RATE_LIMIT_DATABASE = 1


class StartupInterrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


@dataclass
class Child:
    """A process `up` runs in the foreground, in a process group of its own."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        processes.terminate(self.process, CHILD_STOP_TIMEOUT_SECONDS)
        # Whatever it forked and left behind (its group's id is its pid: start_new_session).
        processes.kill_process_group(self.process.pid, GROUP_KILL_TIMEOUT_SECONDS)
        return f"stopped (exit status {self.process.returncode})"


class Stack:
    """What `up` has started, to be stopped in reverse order."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self.started: list[tuple[str, Callable[[], str]]] = []
        self.children: list[Child] = []

    def check(self) -> None:
        """Between start-up steps: give up at once when asked to stop, or when a child died."""
        if self.stopping.is_set():
            raise StartupInterrupted
        self.require_children_alive()

    def require_children_alive(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise click.ClickException(
                    f"the {child.name} exited with status {child.process.returncode}; "
                    f"{processes.log_tail(child.log)}"
                )

    def spawn(self, name: str, command: list[str], env: dict[str, str], logs: Path) -> Child:
        log = logs / f"{name.replace(' ', '-')}.log"
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))
        with log.open("wb") as handle:
            process = subprocess.Popen(command, cwd=paths.PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, process, log)
        self.children.append(child)
        self.started.append((name, child.stop))
        click.echo(f"{name} started (pid {process.pid}), log {log}")
        return child

    def stop_all(self) -> None:
        while self.started:
            name, stop = self.started.pop()
            try:
                click.echo(f"{name}: {stop()}")
            except Exception as exc:  # one piece that will not stop must not keep the rest running
                click.echo(f"{name}: could not be stopped: {exc}", err=True)


@click.command()
@click.option("--detach", is_flag=True,
              help="Start Redis and the devnet, deploy, migrate and make the demo participants, then return and "
                   "leave Redis and the devnet running (run `anchorline worker`, `beat` and `serve` yourself).")
@click.option("--port", type=click.IntRange(1, 65535), help="Devnet RPC port (default: devnet.json's).")
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Once the stack is up, drive one invoice through its whole lifecycle through the API and "
                   "print the timeline (`anchorline demo` does it on demand).")
@click.option("--api-port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port of the web server (the REST API, /metrics).")
def up(detach: bool, port: int | None, demo: bool, api_port: int) -> None:
    """Start the whole stack: Redis, the devnet, the contracts, the database, the demo
    participants, a Celery worker and beat, and the web server; run until Ctrl-C."""
    stopping = threading.Event()
    if not detach:
        # SIGHUP too: closing the terminal must not leave the children (in sessions of their
        # own) running.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: stopping.set())
    stack = Stack(stopping)
    try:
        running = _start(stack, detach=detach, devnet_port=port, api_port=api_port)
        if running is None:
            return
        if demo:
            run_demo(*running, stopping=stopping)
        click.echo("running; press Ctrl-C to stop")
        while not stopping.wait(0.5):
            stack.require_children_alive()
    except StartupInterrupted:
        click.echo("interrupted during start-up")
    except DemoError as exc:
        if not stopping.is_set():
            stack.stop_all()
            raise click.ClickException(f"the demo failed: {exc.message}") from exc
        click.echo("demo interrupted")
    except BaseException as exc:
        stack.stop_all()
        if isinstance(exc, (chain_devnet.DevnetError, redis_server.RedisServerError, ChainError, DeploymentError,
                            TransactionReverted, CompilationError)):
            raise click.ClickException(str(exc)) from exc
        if isinstance(exc, requests.RequestException):
            raise click.ClickException(f"the web server stopped answering: {type(exc).__name__}") from exc
        raise
    stack.stop_all()
    click.echo("stopped")


def _start(
    stack: Stack, *, detach: bool, devnet_port: int | None, api_port: int
) -> tuple[str, DemoCredentials] | None:
    """Start the stack's pieces in order; the API's base URL and the demo logins, or None
    after --detach (which leaves what it started running: `stack.started` is not stopped)."""
    instance = paths.INSTANCE_DIR.absolute()
    redis_url = _redis(stack)
    stack.check()
    rpc_url = os.environ.get(RPC_URL_ENV)
    on_devnet = not rpc_url
    if devnet_port and not on_devnet:
        raise click.UsageError(f"--port is for the local devnet; {RPC_URL_ENV} is set, so no devnet is started")
    if on_devnet:
        directory = chain_devnet.default_directory()
        node, started = chain_devnet.start(directory, port=devnet_port)
        if started:
            stack.started.append(("devnet", lambda: chain_devnet.stop(directory).outcome.value))
        rpc_url = node.rpc_url
        click.echo(f"devnet {'started' if started else 'already running'} at {node.rpc_url} (pid {node.pid})")
    stack.check()
    w3 = connect(rpc_url)
    # On the devnet, edited contracts are simply deployed anew; elsewhere that needs `deploy --force`.
    deployment, deployed = ensure_deployed(w3, redeploy_stale=on_devnet)
    click.echo(("deployed" if deployed else "found the existing deployment of") + " Anchorline:")
    for line in summary(w3, deployment):
        click.echo(f"  {line}")
    stack.check()

    settings = {"ETH_RPC_URL": rpc_url, "REDIS_URL": redis_url}
    app = prepared_app(settings)
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(hide_password=True)
    click.echo(f"database migrated: {database}")
    credentials = ensure_demo_participants(app, ensure_local_operator(app))
    click.echo(f"demo participants ready; logins in {credentials_file(instance)} (readable by you only)")
    stack.check()

    if detach:
        _print_logins(credentials)
        click.echo("detached: Redis and the devnet keep running. Start the rest with `anchorline worker`, "
                   "`anchorline beat` and `anchorline serve`; stop Redis with `anchorline redis stop` and the "
                   "devnet with `anchorline devnet stop`")
        return None

    logs = instance / LOGS_DIRECTORY
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ANCHORLINE_INSTANCE": str(instance),
        RPC_URL_ENV: rpc_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or _database(redis_url, RATE_LIMIT_DATABASE),
        "PYTHONUNBUFFERED": "1",
    }
    if processes.listening(DEFAULT_HOST, api_port):
        raise click.ClickException(f"{DEFAULT_HOST}:{api_port} is in use by another process; choose --api-port")
    stack.spawn("worker", worker_command(), env, logs)
    stack.spawn("beat", beat_command(instance), env, logs)
    stack.spawn("web server", [
        sys.executable, "-m", "gunicorn", "backend.app:create_app()",
        "--bind", f"{DEFAULT_HOST}:{api_port}", "--workers", str(WEB_WORKERS),
        "--graceful-timeout", str(int(CHILD_STOP_TIMEOUT_SECONDS) // 2), "--timeout", str(REQUEST_TIMEOUT_SECONDS),
        "--access-logfile", "-",
    ], env, logs)
    base = f"http://{DEFAULT_HOST}:{api_port}"
    api_url = f"{base}/api/v1"
    _wait_until_healthy(stack, api_url)

    credentials.api_url = api_url
    credentials.save(credentials_file(instance))
    click.echo("Anchorline is up:")
    click.echo(f"  portal   {base}/ (sign in with a demo login below; English or Simplified Chinese)")
    click.echo(f"  API      {api_url} (interactive docs at {api_url}/docs)")
    click.echo(f"  health   {api_url}/health (or `anchorline status`)")
    click.echo(f"  metrics  {base}/metrics")
    click.echo(f"  chain    {redact_url(rpc_url)}")
    click.echo(f"  logs     {logs}")
    _print_logins(credentials)
    return api_url, credentials


def _redis(stack: Stack) -> str:
    """REDIS_URL if set (it must answer), else the bundled Redis of the instance folder."""
    external = os.environ.get("REDIS_URL")
    if external:
        client = redis.Redis.from_url(external, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise click.ClickException(f"REDIS_URL={redact_url(external)} does not answer ({type(exc).__name__})") from exc
        finally:
            client.close()
        click.echo(f"Redis at {redact_url(external)} (REDIS_URL)")
        return external
    directory = redis_server.default_directory()
    server, started = redis_server.start(directory)
    if started:
        stack.started.append(("Redis", lambda: redis_server.stop(directory).outcome.value))
    click.echo(f"Redis {'started' if started else 'already running'} at {server.address} "
               f"(bundled redis-server, pid {server.pid})")
    return server.url


def _wait_until_healthy(stack: Stack, api_url: str) -> None:
    """Until GET /health answers 200: the web server serves, and the database, chain, queue and
    a worker's heartbeat all work."""
    click.echo("waiting for the stack to report healthy ...")
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    last: str = "the web server does not answer yet"
    while time.monotonic() < deadline:
        stack.check()
        try:
            answer = requests.get(f"{api_url}/health", timeout=5)
            if answer.status_code == 200:
                return
            last = ", ".join(f"{part}: {problem}" for part, problem in answer.json().get("problems", {}).items())
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    raise click.ClickException(f"the stack did not become healthy within {READY_TIMEOUT_SECONDS:.0f}s ({last}); "
                               f"see the logs in {stack.children[0].log.parent}")


def _print_logins(credentials: DemoCredentials) -> None:
    click.echo("demo logins (role, organisation, email, password, API key):")
    for line in login_lines(credentials):
        click.echo(f"  {line}")


def _database(url: str, number: int) -> str:
    """The Redis URL `url` naming database `number` instead of its own."""
    return urlsplit(url)._replace(path=f"/{number}").geturl()
