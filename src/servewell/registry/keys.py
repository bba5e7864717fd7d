"""API keys in the registry database (hashes only; the secret is shown once)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from servewell.core.apikey import SCOPES, generate_key
from servewell.core.llm_cost import SpendBudget
from servewell.core.rate import MAX_COUNT, Rate
from servewell.errors import InvalidInput, KeyAlreadyRevoked, KeyNameTaken, NotFound
from servewell.registry import schema
from servewell.registry.database import as_utc, map_sql_errors
from servewell.registry.sql import SqlRegistry

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never its secret."""

    key_id: str
    name: str
    secret_hash: str
    scopes: tuple[str, ...]
    models: tuple[str, ...] | None
    """Models it may call; None means every model."""
    rate: str | None
    """Its own rate limit ("100/minute"); None means the configured default."""
    created_at: datetime
    revoked_at: datetime | None
    budget: str | None = None
    """What it may spend on LLM calls per day or month (``"10/day"``, USD); None: no limit."""
    tpm: int | None = None
    """LLM tokens (prompt and completion) it may use per minute; None: no limit."""

    @property
    def display(self) -> str:
        return f"sw_{self.key_id}_…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeyStore:
    """Create, list and revoke keys; the server loads the active ones."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def create(
        self,
        name: str,
        scopes: tuple[str, ...] = ("predict",),
        models: tuple[str, ...] | None = None,
        rate: str | None = None,
        budget: str | None = None,
        tpm: int | None = None,
    ) -> tuple[ApiKey, str]:
        """The stored key and the whole token, which is never retrievable again."""
        if not _NAME.match(name):
            raise InvalidInput(f"key name {name!r} must be letters, digits, '.', '_' or '-'")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidInput(
                f"unknown scope(s) {', '.join(unknown) or '(none given)'}; "
                f"scopes are {', '.join(SCOPES)}"
            )
        if rate is not None:
            rate = str(Rate.parse(rate))
        if budget is not None:
            budget = str(SpendBudget.parse(budget))
        if tpm is not None and not 1 <= tpm <= MAX_COUNT:
            raise InvalidInput(f"--tpm {tpm}: tokens per minute must be from 1 to {MAX_COUNT}")
        new = generate_key()
        row = {
            "key_id": new.key_id,
            "name": name,
            "secret_hash": new.secret_hash,
            "scopes": list(scopes),
            "models": list(models) if models else None,
            "rate": rate,
            "budget": budget,
            "tpm": tpm,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        try:
            with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
                conn.execute(schema.api_keys.insert().values(**row))
        except IntegrityError:
            raise KeyNameTaken(name) from None
        return self.get(name), new.token

    def get(self, name: str) -> ApiKey:
        for key in self.list(include_revoked=True):
            if key.name == name:
                return key
        raise NotFound(f"no API key named '{name}'")

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        query = select(schema.api_keys).order_by(schema.api_keys.c.name)
        if not include_revoked:
            query = query.where(schema.api_keys.c.revoked_at.is_(None))
        with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
            rows = conn.execute(query).all()
        return [_to_key(row) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        table = schema.api_keys
        with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
            updated = conn.execute(
                table.update()
                .where(table.c.name == name, table.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if updated.rowcount == 0:
            key = self.get(name)  # raises NotFound for an unknown name
            raise KeyAlreadyRevoked(key.name)
        return self.get(name)


def check_models_exist(registry: SqlRegistry, models: tuple[str, ...]) -> None:
    """Refuse model names nobody registered (a typo would make a key that fits nothing)."""
    registered = sorted(summary.name for summary in registry.list_models())
    unknown = [name for name in models if name not in registered]
    if unknown:
        known = ", ".join(f"'{name}'" for name in registered) or "none yet"
        raise NotFound(
            f"unknown model(s) {', '.join(repr(name) for name in unknown)}; "
            f"registered models: {known} (--allow-unknown-models to create the key anyway)",
            models=unknown,
        )


def _to_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        secret_hash=row.secret_hash,
        scopes=tuple(row.scopes),
        models=tuple(row.models) if row.models else None,
        rate=row.rate,
        budget=row.budget,
        tpm=row.tpm,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at is not None else None,
    )
