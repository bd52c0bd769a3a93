"""API tokens: minted at random, shown once, kept only as a hash.

Bounded: a revoked or expired token's record is removed JOB_RETENTION_S after it stopped
working (as long as the jobs it submitted are kept); its index entry with the next listing.

A token reads `qgjob_<token_id>_<secret>`: the id (16 hex digits) names the record
`qgjob:token:{token_id}`, so a token is checked with ONE Redis read, and the secret
(32 random bytes, URL-safe base64) is what proves it. The record keeps sha256(secret),
never the secret.

Why a plain sha256 and not bcrypt/argon2: slow password hashes exist because passwords are
guessable (low entropy), so each guess of an attacker who stole the hashes must cost. A
256-bit random secret cannot be guessed whatever the hash costs, and a slow hash would add
tens of milliseconds to every request. The comparison of digests is constant-time
(`hmac.compare_digest`), so the time of a refusal does not tell how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, cast

import redis

from qgjob_api import guards
from qgjob_api.redis_text import text
from qgjob_contract.events import timestamp_ms
from qgjob_contract.names import Keys
from qgjob_contract.roles import Role

TOKEN_PREFIX: Final = "qgjob_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES: Final = 32
_TOKEN_ID: Final = re.compile(guards.TOKEN_ID_PATTERN)  # the path id's rule too
# qgjob_ + 16 hex + _ + 43 characters of URL-safe base64 (32 bytes, unpadded)
_TOKEN: Final = re.compile(r"qgjob_(?P<token_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})")
# Most tokens one listing returns.
MAX_LISTED: Final = 1000


def digest(secret: str) -> str:
    """sha256 of a secret, hex: what a record keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(presented: str, stored: str) -> bool:
    """Constant-time equality of two hex digests."""
    return hmac.compare_digest(presented.encode(), stored.encode())


def is_token_id(value: str) -> bool:
    return _TOKEN_ID.fullmatch(value) is not None


def mint() -> tuple[str, str, str]:
    """A fresh token: (token_id, the token as the client sends it, the digest to keep)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", digest(secret)


def split(token: str) -> tuple[str, str] | None:
    """(token_id, secret) of a well-formed token; None for anything else (checked before
    the id is used in a Redis key)."""
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    return found["token_id"], found["secret"]


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored and listed (the digest is never shown)."""

    token_id: str
    org_id: str
    role: Role
    name: str
    created_at: str
    digest: str
    expires_at: str | None = None
    revoked_at: str | None = None

    def to_redis(self) -> dict[str, str]:
        return {
            "token_id": self.token_id,
            "org_id": self.org_id,
            "role": self.role.value,
            "name": self.name,
            "created_at": self.created_at,
            "digest": self.digest,
            "expires_at": self.expires_at or "",
            "revoked_at": self.revoked_at or "",
        }

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> TokenRecord:
        f = {text(k): text(v) for k, v in raw.items()}
        return cls(
            token_id=f["token_id"],
            org_id=f["org_id"],
            role=Role(f["role"]),
            name=f.get("name", ""),
            created_at=f["created_at"],
            digest=f["digest"],
            expires_at=f.get("expires_at") or None,
            revoked_at=f.get("revoked_at") or None,
        )

    def to_api(self) -> dict[str, Any]:
        body = asdict(self)
        del body["digest"]
        body["role"] = self.role.value
        return body

    def usable(self, now_ms: int) -> bool:
        """Not revoked and not expired at `now_ms`."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now_ms < timestamp_ms(self.expires_at)


def store(client: redis.Redis, record: TokenRecord, *, retention_s: float) -> None:
    """Keep a new token; one that expires is removed `retention_s` after it expired."""
    key = Keys.token(record.token_id)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping=dict(record.to_redis().items()))
    if record.expires_at is not None:
        pipe.pexpireat(key, timestamp_ms(record.expires_at) + _ms(retention_s))
    pipe.zadd(Keys.TOKENS, {record.token_id: timestamp_ms(record.created_at)})
    pipe.execute()


def load(client: redis.Redis, token_id: str) -> TokenRecord | None:
    if not is_token_id(token_id):
        return None
    raw = client.hgetall(Keys.token(token_id))
    return TokenRecord.from_redis(raw) if raw else None


def listing(client: redis.Redis, org_id: str | None) -> list[TokenRecord]:
    """Every token (of `org_id` when given), newest first, at most MAX_LISTED. The index
    entries of records gone past their retention are dropped on the way."""
    ids = [
        text(token_id) for token_id in cast("Sequence[Any]", client.zrevrange(Keys.TOKENS, 0, -1))
    ]
    pipe = client.pipeline(transaction=False)
    for token_id in ids:
        pipe.hgetall(Keys.token(token_id))
    raws = pipe.execute()
    gone = [token_id for token_id, raw in zip(ids, raws, strict=True) if not raw]
    if gone:
        client.zrem(Keys.TOKENS, *gone)
    records = [TokenRecord.from_redis(raw) for raw in raws if raw]
    return [r for r in records if org_id is None or r.org_id == org_id][:MAX_LISTED]


def revoke(
    client: redis.Redis, token_id: str, revoked_at: str, *, retention_s: float
) -> TokenRecord | None:
    """Mark the token revoked (once: a second revoke keeps the first time); None if unknown.

    The record stays `retention_s` (as long as the jobs it submitted are kept), so that
    `submitted_by` ids keep naming a token; then it is removed (Redis TTL)."""
    record = load(client, token_id)
    if record is None:
        return None
    if record.revoked_at is None:
        key = Keys.token(token_id)
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, "revoked_at", revoked_at)
        pipe.pexpireat(key, timestamp_ms(revoked_at) + _ms(retention_s))
        pipe.execute()
    return load(client, token_id)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
