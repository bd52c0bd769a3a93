"""Idempotent submit: the `Idempotency-Key` header of POST /submit, /v1/jobs and /v1/runs.

The same key with the same request within the key's lifetime answers what the first request
answered (status and body, the same job ids) and creates nothing; the same key with another
request answers 422. A key is scoped to the org(s) of the body: two orgs may use the same key.

Atomic against concurrent requests with one key: the first to `SET NX` a *pending* marker
(with a short TTL) does the work and then replaces the marker with its answer (TTL
min(24 h, JOB_RETENTION_S)). A concurrent request with the same key and body waits for that
answer for up to WAIT_S, then answers 409 `idempotency_in_progress` (retry later: the CLI
does). A request that failed (503, an error) removes its marker, so a retry with the same
key runs afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import redis
from redis.commands.core import AsyncScript, Script

from qgjob_api.errors import HttpError, ValidationFailed
from qgjob_api.redis_text import text
from qgjob_contract.lua import script
from qgjob_contract.names import Keys

log = logging.getLogger(__name__)

HEADER: Final = "Idempotency-Key"
# Set on an answer replayed from an earlier request.
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255
# How long a request may hold a key before it counts as dead (longer than any submit takes:
# the broker's confirm waits at most a few seconds).
PENDING_TTL_S: Final = 60
# A concurrent request with the same key waits this long for the first one's answer.
WAIT_S: Final = 5.0
POLL_S: Final = 0.05
MAX_KEY_TTL_S: Final = 24 * 3600

_PENDING, _DONE = "pending", "done"

Answer = tuple[dict[str, Any], int]


class KeyReused(HttpError):
    """The key was used before with a different request."""

    status = 422
    code = "idempotency_key_reused"


class KeyInProgress(HttpError):
    """Another request with this key has not answered yet."""

    status = 409
    code = "idempotency_in_progress"


def key_ttl_s(retention_s: float) -> int:
    """A key lives 24 h, or the retention if shorter (never less than 1 s) (pure)."""
    return max(1, int(min(MAX_KEY_TTL_S, retention_s)))


def check_key(value: str) -> str:
    """A client's key: 1 to 255 printable ASCII characters (raises ValidationFailed)."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in value):
        raise ValidationFailed(HEADER, f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return value


def fingerprint(route: str, body: Any) -> str:
    """What makes two requests the same: the route and the JSON body, key order aside (pure)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()


def org_scope(orgs: Iterable[str]) -> str:
    """The scope of a key: the org of the body, or its orgs (sorted, comma separated: an
    org id never holds ','), for a batch that mixes orgs (pure)."""
    return ",".join(sorted(set(orgs)))


@dataclass(frozen=True)
class Stored:
    """A key's value: a pending marker, or the answer."""

    state: str
    fingerprint: str
    marker: str = ""  # a uuid per pending marker
    status: int = 0
    body: dict[str, Any] | None = None

    def encode(self) -> str:
        return json.dumps(
            {
                "state": self.state,
                "fingerprint": self.fingerprint,
                "marker": self.marker,
                "status": self.status,
                "body": self.body,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> Stored:
        value = json.loads(raw)
        return cls(
            state=value["state"],
            fingerprint=value["fingerprint"],
            marker=value.get("marker") or "",
            status=int(value.get("status") or 0),
            body=value.get("body"),
        )


class Idempotency:
    """Runs a request's work at most once per (org scope, key)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        retention_s: float,
        wait_s: float = WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._ttl_s = key_ttl_s(retention_s)
        self._wait_s = wait_s
        self._sleep = sleep

    @cached_property
    def _release(self) -> AsyncScript | Script:
        """Registered on first use: building the app touches no Redis."""
        return self._client.register_script(script("qgjob_api", "release_idempotency"))

    def run(
        self,
        *,
        key: str,
        scope: str,
        route: str,
        body: Any,
        work: Callable[[], Answer],
        compact: Callable[[dict[str, Any]], dict[str, Any]] = dict,
        replay: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ) -> tuple[dict[str, Any], int, bool]:
        """(answer body, status, replayed): `work()`'s answer, or the first request's.

        What is kept is `compact(answer)` (e.g. only the job ids: a run's answer holds
        every job record) and a repeat answers `replay(kept)` (the records read again)."""
        redis_key = Keys.idempotency(scope, hashlib.sha256(key.encode()).hexdigest())
        print_ = fingerprint(route, body)
        deadline = time.monotonic() + self._wait_s
        while True:
            pending = Stored(_PENDING, print_, marker=str(uuid.uuid4())).encode()
            if self._client.set(redis_key, pending, nx=True, ex=PENDING_TTL_S):
                answer, status = self._work(redis_key, pending, print_, work, compact)
                return answer, status, False
            raw = self._client.get(redis_key)
            if raw is None:
                continue  # expired or released since: try to take it
            stored = Stored.decode(text(raw))
            if stored.fingerprint != print_:
                raise KeyReused(
                    f"the {HEADER} was used before with a different request; "
                    "use a new key for a new request"
                )
            if stored.state == _DONE and stored.body is not None:
                return replay(stored.body), stored.status, True
            if time.monotonic() >= deadline:
                raise KeyInProgress(
                    f"a request with this {HEADER} is still being processed; retry shortly"
                )
            self._sleep(POLL_S)

    def _work(
        self,
        redis_key: str,
        pending: str,
        print_: str,
        work: Callable[[], Answer],
        compact: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Answer:
        try:
            answer, status = work()
        except BaseException:
            try:
                self._release(keys=[redis_key], args=[pending])
            except redis.RedisError:
                log.exception("could not release idempotency key %s (it expires)", redis_key)
            raise
        done = Stored(_DONE, print_, status=status, body=compact(answer)).encode()
        try:
            self._client.set(redis_key, done, ex=self._ttl_s)
        except redis.RedisError:
            # The work is done and its answer goes out; a retry with this key within
            # PENDING_TTL_S gets 409, after that it would run afresh.
            log.exception("could not store the answer of idempotency key %s", redis_key)
        return answer, status
