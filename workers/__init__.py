"""Anchorline workers: the Celery app and its tasks (transaction outbox, indexer, schedules, webhooks)."""
