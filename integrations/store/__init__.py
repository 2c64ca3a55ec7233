"""Where the bot keeps its records: an interface and its implementations."""

from __future__ import annotations

from integrations.store.base import Store, mutate
from integrations.store.sqlite import SqliteStore


def open_store(url: str) -> Store:
    """Open the store named by SHIPBOT_STORE (`sqlite:///PATH`)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")


__all__ = ["SqliteStore", "Store", "mutate", "open_store"]
