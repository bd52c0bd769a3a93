"""Read-check-write on Redis as one optimistic transaction (WATCH / MULTI / EXEC)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from redis import Redis, WatchError
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

_T = TypeVar("_T")


def transaction(store: Redis, key: str, body: Callable[[Pipeline], _T]) -> _T:
    """Run `body` with `key` watched, then execute what it queued; retry if `key` changed.

    `body` reads through the pipeline (immediate while watching), may watch more keys it
    learns of (`pipe.watch(...)`) before reading them, calls `pipe.multi()`, then queues its
    writes. Its return value is returned once the writes have been executed.
    """
    with store.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                result = body(pipe)
                pipe.execute()
            except WatchError:
                continue
            return result


def fields(record: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A record's `to_redis()` mapping, typed for `hset(mapping=...)`."""
    return {name: value for name, value in record.items()}
