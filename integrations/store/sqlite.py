"""SQLite store: one table of JSON records, conditional writes inside IMMEDIATE transactions."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import TypeVar

from bot.errors import StoreConflictError
from bot.records import StoredRecord

R = TypeVar("R", bound=StoredRecord)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS records_by_partition
    ON records (kind, partition_key, created_at DESC);
"""


class SqliteStore:
    """Safe from many tasks (one connection, serialised) and many processes (file locks)."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None, timeout=10
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.executescript(_SCHEMA)

    async def create(self, record: R) -> R:
        stored = record.model_copy(update={"version": 1})
        await asyncio.to_thread(self._insert, stored)
        return stored

    async def get(self, kind: type[R], key: str) -> R | None:
        row = await asyncio.to_thread(
            self._query_one, "SELECT body FROM records WHERE kind = ? AND key = ?", (kind.KIND, key)
        )
        return None if row is None else kind.model_validate_json(row)

    async def replace(self, record: R) -> R:
        stored = record.model_copy(update={"version": record.version + 1})
        await asyncio.to_thread(self._update, stored, record.version)
        return stored

    async def recent(self, kind: type[R], partition: str, limit: int) -> list[R]:
        rows = await asyncio.to_thread(self._query_bodies, kind.KIND, partition, limit)
        return [kind.model_validate_json(body) for body in rows]

    async def ping(self) -> None:
        await asyncio.to_thread(self._query_one, "SELECT 1", ())

    async def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _insert(self, record: StoredRecord) -> None:
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO records (kind, key, partition_key, created_at, version, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.KIND,
                        record.key,
                        record.partition,
                        record.created_at.isoformat(),
                        record.version,
                        record.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreConflictError(f"{record.KIND} {record.key} already exists") from exc

    def _update(self, record: StoredRecord, expected_version: int) -> None:
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE records SET version = ?, body = ?, partition_key = ?"
                " WHERE kind = ? AND key = ? AND version = ?",
                (
                    record.version,
                    record.model_dump_json(),
                    record.partition,
                    record.KIND,
                    record.key,
                    expected_version,
                ),
            )
            if cursor.rowcount != 1:
                raise StoreConflictError(
                    f"{record.KIND} {record.key} changed since version {expected_version}"
                )

    def _query_one(self, sql: str, params: tuple[object, ...]) -> str | None:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return None if row is None else str(row[0])

    def _query_bodies(self, kind: str, partition: str, limit: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM records WHERE kind = ? AND partition_key = ?"
                " ORDER BY created_at DESC LIMIT ?",
                (kind, partition, limit),
            ).fetchall()
        return [str(row[0]) for row in rows]
