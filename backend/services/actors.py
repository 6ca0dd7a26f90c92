"""Who is acting: an organisation, through one of its users (the portal) or one of its API
keys (machine clients). The CLI acts as an operator user; the indexer is not an actor."""
from __future__ import annotations

from dataclasses import dataclass

from backend.models import ApiKey, Organisation, Role, User


@dataclass(frozen=True)
class Actor:
    organisation: Organisation
    user: User | None = None
    api_key: ApiKey | None = None
    # Correlates the audit entries of one request (the API's X-Request-ID).
    request_id: str | None = None

    @property
    def roles(self) -> Role:
        return self.organisation.roles

    def has_any(self, roles: Role) -> bool:
        return bool(self.organisation.roles & roles)

    @property
    def person(self) -> User | None:
        """The person who answers for what the actor does: the signed-in user, or whoever
        issued the API key (None for a key no user issued)."""
        return self.user or (self.api_key.created_by if self.api_key is not None else None)

    @property
    def principal(self) -> str:
        """Whose idempotency keys and rate limits these are: the key, else the user."""
        if self.api_key is not None:
            return f"apikey:{self.api_key.id}"
        if self.user is not None:
            return f"user:{self.user.id}"
        return f"organisation:{self.organisation.id}"
