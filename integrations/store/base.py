"""The store interface: keyed, versioned records with conditional writes.

Every implementation (SQLite now, DynamoDB for several replicas later) must make `create`
and `replace` atomic, so two replicas racing on one record see exactly one winner.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from bot.records import StoredRecord

R = TypeVar("R", bound=StoredRecord)


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
