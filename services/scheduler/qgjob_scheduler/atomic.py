"""Read-check-write on Redis, atomically.

Two forms:
- `transaction`: one optimistic WATCH / MULTI / EXEC transaction (a round trip per read and
  per watch);
- `guarded`: the reads pipelined (one round trip for all of them), the decision in Python,
  then the writes in one Lua script (`lua/guarded_write.lua`) that applies them only if every
  hash they were computed from is still as it was read; otherwise the step is run again. The
  same guarantee as WATCH on those keys, in two round trips whatever the number of keys:
  what an agent report costs the scheduler (see `handlers`, `transitions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from redis import Redis, WatchError
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from qgjob_contract.lua import script

_T = TypeVar("_T")

_GUARDED_WRITE: Final = script("qgjob_scheduler", "guarded_write")


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


class Guard:
    """One attempt of a `guarded` step: the hashes it checks and the writes it queues."""

    def __init__(self, store: Redis) -> None:
        self._store = store
        self._checked: dict[str, dict[str, str]] = {}
        self._writes: list[tuple[str, str, tuple[str, ...]]] = []  # (command, key, args)

    def read(
        self, keys: Sequence[str], also: Callable[[Pipeline], object] | None = None
    ) -> tuple[list[dict[str, str]], list[Any]]:
        """The hashes at `keys` (checked at commit), and the replies of the unchecked reads
        `also` queues on the same pipeline: one round trip for all of them."""
        pipe = self._store.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        if also is not None:
            also(pipe)
        replies = pipe.execute()
        hashes = [dict(reply) for reply in replies[: len(keys)]]
        for key, raw in zip(keys, hashes, strict=True):
            self.check(key, raw)
        return hashes, replies[len(keys) :]

    def check(self, key: str, raw: Mapping[str, str]) -> None:
        """Commit only if the hash at `key` is still `raw` (as read; {}: absent)."""
        self._checked[key] = dict(raw)

    def hset(self, key: str, mapping: Mapping[str, str]) -> None:
        if mapping:
            self._writes.append(("HSET", key, tuple(p for item in mapping.items() for p in item)))

    def sadd(self, key: str, member: str) -> None:
        self._writes.append(("SADD", key, (member,)))

    def delete(self, key: str) -> None:
        self._writes.append(("DEL", key, ()))

    def zadd(self, key: str, member: str, score: int) -> None:
        self._writes.append(("ZADD", key, (str(score), member)))

    def zrem(self, key: str, member: str) -> None:
        self._writes.append(("ZREM", key, (member,)))

    def commit(self) -> bool:
        """Apply the writes if no checked hash changed; False (nothing written) otherwise.

        With no write queued there is nothing to apply, and no round trip.
        """
        if not self._writes:
            return True
        keys = list(self._checked)  # the checked keys first: KEYS[1..n] in the script
        index = {key: i for i, key in enumerate(keys, start=1)}
        for _, key, _ in self._writes:
            if key not in index:
                keys.append(key)
                index[key] = len(keys)
        expected = [[p for item in raw.items() for p in item] for raw in self._checked.values()]
        writes = [[command, index[key], *args] for command, key, args in self._writes]
        applied = self._store.register_script(_GUARDED_WRITE)(
            keys=keys,
            args=[
                len(expected),
                json.dumps(expected, ensure_ascii=False),
                json.dumps(writes, ensure_ascii=False),
            ],
        )
        return bool(applied)


def guarded(store: Redis, body: Callable[[Guard], _T]) -> _T:
    """Run `body` on a fresh `Guard` until its writes commit; return what `body` returned.

    `body` reads through `guard.read` (the hashes it bases its decision on), decides, and
    queues its writes on the guard; if one of those hashes changed before the writes were
    applied, nothing was written and `body` runs again on what Redis holds now.
    """
    while True:
        guard = Guard(store)
        result = body(guard)
        if guard.commit():
            return result


def fields(record: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A record's `to_redis()` mapping, typed for `hset(mapping=...)`."""
    return {name: value for name, value in record.items()}
