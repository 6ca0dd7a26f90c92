"""The schedules: thin Celery tasks over backend.services.schedules, run by Celery beat.

Each task finds its own work in the database and is idempotent, so a missed beat only delays it
and a doubled one repeats nothing (see the service module for how each rule makes sure). The
servicing rules run every few seconds; reconciliation every RECONCILE_INTERVAL_SECONDS; expired
idempotency records are purged, and every organisation screened against the watch lists, daily.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from backend.chain import runtime
from backend.chain.connection import ChainUnreachable
from backend.chain.runtime import NotDeployed
from backend.models import utcnow
from backend.services import early_payment, schedules, screening
from backend.services.idempotency import purge_expired_idempotency_records
from workers.celery_app import TransientError, worker_task

logger = logging.getLogger(__name__)

SERVICING_INTERVAL_SECONDS = 5.0
PURGE_INTERVAL_SECONDS = 86_400.0
SCREENING_INTERVAL_SECONDS = 86_400.0


@worker_task()
def announce_due_invoices() -> int:
    return schedules.announce_due_invoices()


@worker_task()
def send_maturity_reminders() -> int:
    return schedules.send_maturity_reminders()


@worker_task()
def mark_delinquent_invoices() -> int:
    return len(schedules.mark_delinquent_invoices())


@worker_task()
def expire_financing() -> int:
    """Expired requests go to the ledger; expired offers, and early payment offers, lapse here."""
    return (len(schedules.expire_financing_requests()) + len(schedules.lapse_expired_offers())
            + len(early_payment.lapse_expired_early_payment_offers()))


@worker_task()
def reconcile_ledger() -> int | None:
    """One reconciliation run against the configured chain; returns the run's id. An unreachable
    node is retried with backoff; a chain without a recorded deployment is skipped (logged)."""
    try:
        ledger = runtime.ledger(current_app.config)
    except ChainUnreachable as exc:
        raise TransientError(str(exc)) from exc
    except NotDeployed as exc:
        logger.warning("reconciliation skipped: %s", exc)
        return None
    return schedules.reconcile(ledger).id


@worker_task()
def purge_idempotency_records() -> int:
    return purge_expired_idempotency_records(utcnow())


@worker_task()
def screen_organisations() -> int:
    """Every organisation not rejected against every watch list: the hits new today."""
    return screening.screen_all_organisations()


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    every_few_seconds = {
        "schedules.due": announce_due_invoices,
        "schedules.maturity_reminders": send_maturity_reminders,
        "schedules.delinquency": mark_delinquent_invoices,
        "schedules.expiry": expire_financing,
    }
    entries = {name: {"task": task.name, "schedule": SERVICING_INTERVAL_SECONDS}
               for name, task in every_few_seconds.items()}
    entries["schedules.reconcile"] = {"task": reconcile_ledger.name,
                                      "schedule": float(config["RECONCILE_INTERVAL_SECONDS"])}
    entries["schedules.purge_idempotency"] = {"task": purge_idempotency_records.name,
                                              "schedule": PURGE_INTERVAL_SECONDS}
    entries["schedules.screening"] = {"task": screen_organisations.name, "schedule": SCREENING_INTERVAL_SECONDS}
    return entries
