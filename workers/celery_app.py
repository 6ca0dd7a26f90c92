"""The Celery application, made from the Flask application so every task runs in its context.

`init_celery(flask_app)` configures a Celery app on Redis (REDIS_URL, or the bundled
redis-server `anchorline up` runs: workers/redis_server.py) and stores it in
`flask_app.extensions["celery"]`; tasks are declared with `worker_task`, which gives each the
house rules:

- tasks take ids and re-read rows, so running one twice is harmless (the database, with its
  unique intent keys and row locks, is the source of truth, never the queue);
- `acks_late` with a prefetch of one, so a worker that dies mid-task leaves the message to be
  redelivered, and `task_reject_on_worker_lost` so a killed child's message goes back too;
- transient errors (`TransientError`: the node or the database briefly unreachable) are
  retried with exponential backoff and jitter, capped well below the broker's visibility
  timeout, so no retry countdown outlives the message it belongs to;
- the beat schedule runs the sweepers that re-enqueue whatever a lost message left behind.

Each module of TASK_MODULES declares its tasks with `worker_task` and its beat entries in a
function `periodic_tasks(config) -> dict` (Celery beat_schedule entries).
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from celery import Celery, Task, shared_task
from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.services.outbox import OUTBOX_NUDGE

CELERY_EXTENSION = "celery"
QUEUE = "anchorline"
TASK_MODULES = ("workers.outbox", "workers.indexer", "workers.schedules", "workers.webhooks",
                "workers.monitoring")
# The longest a retry waits; far below BROKER_VISIBILITY_TIMEOUT_SECONDS (one hour by default).
MAX_RETRY_BACKOFF_SECONDS = 300
# A nudge is a hint, never worth slowing a request for: it gives up on Redis after this long.
NUDGE_TIMEOUT_SECONDS = 0.5
# A nudge nobody took within this long is dropped: the sweepers have done its work by then.
NUDGE_EXPIRES_SECONDS = 60
SUBMIT_TASK = "workers.outbox.submit_queued"
# Marks that keep at most one follow-up of a task scheduled at a time (send_follow_up).
FOLLOW_UP_KEY_PREFIX = "anchorline:follow-up:"

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Worth retrying later: the chain node, the database or a peer was briefly unavailable."""


def worker_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`shared_task` with Anchorline's defaults (see the module docstring); `options` override."""
    defaults: dict[str, Any] = {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (TransientError,),
        "retry_backoff": True,
        "retry_backoff_max": MAX_RETRY_BACKOFF_SECONDS,
        "retry_jitter": True,
        "max_retries": None,
        "ignore_result": True,
    }
    return shared_task(**{**defaults, **options})


def init_celery(flask_app: Flask, broker_url: str | None = None) -> Celery:
    """A Celery app for `flask_app`, whose tasks run inside `flask_app.app_context()`."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    config = flask_app.config
    celery_app = Celery(flask_app.import_name, task_cls=FlaskTask, set_as_current=True, include=TASK_MODULES)
    celery_app.conf.update(
        broker_url=broker_url or resolve_broker_url(flask_app),
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": config["BROKER_VISIBILITY_TIMEOUT_SECONDS"]},
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule=beat_schedule(config),
    )
    celery_app.set_default()
    flask_app.extensions[CELERY_EXTENSION] = celery_app
    if not event.contains(Session, "after_commit", _nudge_outbox_after_commit):
        event.listen(Session, "after_commit", _nudge_outbox_after_commit)
        event.listen(Session, "after_rollback", _forget_outbox_nudge)
    return celery_app


def send_nudge(flask_app: Flask, task_name: str) -> None:
    """Ask the workers to run `task_name` now rather than at its next beat. Never raises and
    never waits long: skipped when WORKER_NUDGES is off or no broker is known (no REDIS_URL and
    no bundled Redis running), given up after NUDGE_TIMEOUT_SECONDS, and any failure is only
    logged, since the beat's sweepers do the same work a moment later."""
    _send_hint(flask_app, task_name, countdown=None)


def send_follow_up(flask_app: Flask, task_name: str, countdown: float) -> None:
    """Run `task_name` in `countdown` seconds, unless a follow-up of it is scheduled already:
    a pass that leaves work which will be ready in a moment (a transaction about to be mined)
    looks again sooner than its beat would, and a Redis mark that expires with the countdown
    keeps the passes of many nudges from each starting a chain of follow-ups. A hint like
    `send_nudge`, under the same rules: it never raises and never waits long."""
    _send_hint(flask_app, task_name, countdown=countdown)


def _send_hint(flask_app: Flask, task_name: str, *, countdown: float | None) -> None:
    celery_app = flask_app.extensions.get(CELERY_EXTENSION)
    if celery_app is None or not flask_app.config.get("WORKER_NUDGES", True):
        return
    try:
        broker_url = resolve_broker_url(flask_app)
        if broker_url is None:
            return
        if countdown is not None and not _mark_follow_up(broker_url, task_name, countdown):
            return
        one_quick_try = {"socket_connect_timeout": NUDGE_TIMEOUT_SECONDS, "socket_timeout": NUDGE_TIMEOUT_SECONDS,
                         "max_retries": 0}
        with celery_app.connection_for_write(broker_url, connect_timeout=NUDGE_TIMEOUT_SECONDS,
                                             transport_options=one_quick_try) as connection:
            celery_app.send_task(task_name, connection=connection, retry=False, countdown=countdown,
                                 expires=(countdown or 0) + NUDGE_EXPIRES_SECONDS)
    except Exception as exc:  # a hint that did not arrive: the sweepers will do its work
        log.warning("could not nudge %s (%s: %s); its sweeper will run it", task_name, type(exc).__name__, exc)


def _mark_follow_up(broker_url: str, task_name: str, countdown: float) -> bool:
    """Whether this caller may schedule the follow-up (no other is scheduled for the next
    `countdown` seconds)."""
    client = redis.Redis.from_url(broker_url, socket_connect_timeout=NUDGE_TIMEOUT_SECONDS,
                                  socket_timeout=NUDGE_TIMEOUT_SECONDS)
    try:
        return bool(client.set(FOLLOW_UP_KEY_PREFIX + task_name, 1, nx=True, px=max(1, round(countdown * 1000))))
    finally:
        client.close()


def _nudge_outbox_after_commit(session: Session) -> None:
    """A commit that queued ledger writes has the outbox sender start on them at once."""
    if session.info.pop(OUTBOX_NUDGE, False) and has_app_context():
        send_nudge(current_app, SUBMIT_TASK)


def _forget_outbox_nudge(session: Session) -> None:
    """Rows that were rolled back were never queued."""
    session.info.pop(OUTBOX_NUDGE, None)


def resolve_broker_url(flask_app: Flask) -> str | None:
    """REDIS_URL, else the bundled redis-server's URL if one runs for this instance folder,
    else None (then nothing can be queued: workers refuse to start, and the web server's
    after-commit nudges are skipped; the sweepers pick the rows up once workers run)."""
    from workers import redis_server

    return flask_app.config.get("REDIS_URL") or redis_server.running_url(Path(flask_app.instance_path))


def beat_schedule(config: Any) -> dict[str, dict[str, Any]]:
    """What Celery beat runs, and how often: each task module's `periodic_tasks`. Each entry
    is a sweeper over database rows, so a missed or duplicated beat only delays or repeats
    harmless work."""
    schedule: dict[str, dict[str, Any]] = {}
    for name in TASK_MODULES:
        schedule.update(importlib.import_module(name).periodic_tasks(config))
    return schedule
