"""The store interface: keyed, versioned records with conditional writes.

Every implementation (SQLite now, DynamoDB for several replicas later) must make `create`
and `replace` atomic, so two replicas racing on one record see exactly one winner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from bot.errors import StoreConflictError
from bot.records import StoredRecord

R = TypeVar("R", bound=StoredRecord)
_MAX_ATTEMPTS = 20


class Store(Protocol):
    async def create(self, record: R) -> R:
        """Insert a new record at version 1; StoreConflictError if the key exists."""
        ...

    async def get(self, kind: type[R], key: str) -> R | None:
        """The record of this kind and key, or None."""
        ...

    async def replace(self, record: R) -> R:
        """Write `record` if the stored version still equals `record.version`.

        Returns the record at its new version; StoreConflictError when someone else wrote first.
        """
        ...

    async def recent(self, kind: type[R], partition: str, limit: int) -> list[R]:
        """Newest first (by `created_at`) records of a kind within one partition."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be used; for the health check."""
        ...

    async def close(self) -> None: ...


async def mutate(
    store: Store, kind: type[R], key: str, change: Callable[[R], R | None]
) -> tuple[R, R] | None:
    """Apply `change` to the stored record with optimistic concurrency, retrying lost races.

    `change` gets the current record and returns the new one, or None for "nothing to do".
    Returns (before, after) when a write happened, None when the record is missing or
    `change` declined. Safe across tasks and replicas: every write is conditional.
    """
    for _ in range(_MAX_ATTEMPTS):
        current = await store.get(kind, key)
        if current is None:
            return None
        changed = change(current)
        if changed is None:
            return None
        try:
            return current, await store.replace(changed)
        except StoreConflictError:
            continue
    raise StoreConflictError(f"{kind.KIND} {key}: still contended after {_MAX_ATTEMPTS} attempts")
