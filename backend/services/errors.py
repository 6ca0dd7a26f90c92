"""Refusals by business rules. Each kind has a stable machine-readable `code`, which the API
turns into a problem+json `type` (and the portal into a message); `detail` is for people, and
`errors` maps a field to what is wrong with it."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


class ServiceError(Exception):
    code = "service-error"

    def __init__(self, detail: str, *, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = {field: list(messages) for field, messages in (errors or {}).items()}


class NotFound(ServiceError):
    """No such object, or none the actor may see (the two are told apart to nobody)."""

    code = "not-found"


class PermissionDenied(ServiceError):
    """The actor sees the object but its roles, relation to it or key scope do not allow this."""

    code = "permission-denied"


class OrganisationInactive(PermissionDenied):
    """The actor's organisation is suspended or its KYC review is not approved: it can do nothing."""

    code = "organisation-inactive"


class InvalidInput(ServiceError):
    """The request itself is wrong: a bad amount, date, currency, counterparty or document."""

    code = "invalid-input"


class InvalidState(ServiceError):
    """The object is not in a state that allows this (an unconfirmed receivable, a closed request)."""

    code = "invalid-state"


class Duplicate(ServiceError):
    """The same thing exists already (an invoice with the same supplier, buyer and number)."""

    code = "duplicate"


class AuthenticationFailed(ServiceError):
    """The caller is not identified: no credentials, or ones that are wrong, revoked, expired or
    belong to an inactive user or organisation (which of these is told to nobody)."""

    code = "authentication-failed"
