"""The SQLite store: conditional writes hold under concurrency, within and across instances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import StoreConflictError
from bot.records import BuildRecord
from integrations.store import SqliteStore, open_store

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(build_id: str, *, env: str = "dev", minutes: int = 0) -> BuildRecord:
    at = T0 + timedelta(minutes=minutes)
    return BuildRecord(
        build_id=build_id,
        build_arn=f"arn:aws:codebuild:ap-northeast-2:123456789012:build/{build_id}",
        project="frontend-dev",
        environment=env,
        source_version="dev",
        channel="C0DEV",
        console_url="https://example.invalid/",
        created_at=at,
        updated_at=at,
    )


@pytest.fixture
async def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


async def test_create_get_and_versioned_replace(store: SqliteStore) -> None:
    created = await store.create(record("p:1"))
    assert created.version == 1

    updated = await store.replace(created.model_copy(update={"status": "SUCCEEDED"}))

    assert updated.version == 2
    assert await store.get(BuildRecord, "p:1") == updated
    assert await store.get(BuildRecord, "p:missing") is None


async def test_create_twice_conflicts(store: SqliteStore) -> None:
    await store.create(record("p:1"))
    with pytest.raises(StoreConflictError):
        await store.create(record("p:1"))


async def test_stale_replace_conflicts(store: SqliteStore) -> None:
    created = await store.create(record("p:1"))
    await store.replace(created.model_copy(update={"status": "FAILED"}))

    with pytest.raises(StoreConflictError):
        await store.replace(created.model_copy(update={"status": "SUCCEEDED"}))
    stored = await store.get(BuildRecord, "p:1")
    assert stored is not None
    assert stored.status == "FAILED"


async def test_recent_is_newest_first_within_a_partition(store: SqliteStore) -> None:
    for i in range(5):
        await store.create(record(f"p:{i}", minutes=i))
    await store.create(record("p:other", env="prod", minutes=10))

    recent = await store.recent(BuildRecord, "dev", limit=3)

    assert [r.build_id for r in recent] == ["p:4", "p:3", "p:2"]


async def test_twenty_concurrent_writers_of_one_version_have_one_winner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.sqlite3"
    replicas = [SqliteStore(path), SqliteStore(path)]  # two bot processes on one file
    created = await replicas[0].create(record("p:1"))

    async def attempt(i: int) -> bool:
        try:
            await replicas[i % 2].replace(created.model_copy(update={"status": f"S{i}"}))
        except StoreConflictError:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(20)))

    assert results.count(True) == 1
    stored = await replicas[1].get(BuildRecord, "p:1")
    assert stored is not None
    assert stored.version == 2


def test_open_store_understands_sqlite_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'x.db'}"), SqliteStore)
    with pytest.raises(ValueError, match="unsupported"):
        open_store("redis://localhost")
