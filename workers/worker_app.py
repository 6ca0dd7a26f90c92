"""The Celery entry point: `celery -A workers.worker_app worker|beat`.

The Celery app is made from the Flask application (workers/celery_app.py), so every task runs
in its application context with the same settings as the web server.
"""
from __future__ import annotations

from backend.app import create_app
from workers.celery_app import CELERY_EXTENSION

flask_app = create_app()
celery_app = flask_app.extensions[CELERY_EXTENSION]
