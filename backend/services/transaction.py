"""One service call, one database transaction.

`@atomic` commits when the outermost decorated call returns and rolls everything back when it
raises, so a domain change, its outbox row and its audit entry are kept together or not at all.
A service that calls another joins the caller's transaction.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from backend.extensions import db

P = ParamSpec("P")
R = TypeVar("R")

_depth: ContextVar[int] = ContextVar("service_transaction_depth", default=0)


def atomic(service: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _depth.set(_depth.get() + 1)
        try:
            result = service(*args, **kwargs)
            if _depth.get() == 1:
                db.session.commit()
            return result
        except BaseException:
            if _depth.get() == 1:
                db.session.rollback()
            raise
        finally:
            _depth.reset(token)

    return run
