"""Rate limits (flask-limiter), shared by every API worker through Redis.

Two budgets, each shared by the routes of its kind: SUBMIT (every route that creates or
changes something: submissions, cancels, replays, tokens) and READ (everything else but the
probes). The key is the caller's token id with QGJOB_AUTH=tokens, the client address with
auth off. Over the limit: 429 `{"error": "too_many_requests", ...}` with `Retry-After`.

Why flask-limiter: it is the maintained Flask extension, its `limits` storage keeps moving
windows in Redis (so gunicorn's workers share one count), and it sets `Retry-After` itself.
If Redis cannot be reached the limit is not applied (swallow_errors) and the route answers
503 on its own: a limiter outage never turns into a 500.
"""

from __future__ import annotations

from typing import Any, Final, cast

import limits as limits_lib
from flask import Flask, request
from flask_limiter import Limiter

from qgjob_api.auth import access_of, current
from qgjob_api.endpoints import ENDPOINTS, Access
from qgjob_contract.names import Keys

OFF: Final = "off"
DEFAULT_SUBMIT: Final = "6000/minute"
DEFAULT_READ: Final = "30000/minute"


def problem(value: str) -> str | None:
    """What is wrong with a limit setting ("off", or flask-limiter's notation such as
    "100/minute;10/second"), or None."""
    if value == OFF:
        return None
    try:
        limits_lib.parse_many(value)
    except ValueError:
        return (
            f"{value!r} is not a rate limit such as '600/minute' or '10/second;300/hour' (or 'off')"
        )
    return None


def caller_key() -> str:
    """The bucket of a request: its token id, else the client address."""
    token_id = current().token_id
    return f"token:{token_id}" if token_id else f"addr:{request.remote_addr or '-'}"


# Endpoints that create or change something (the rest are reads), from the endpoint table.
SUBMIT_ENDPOINTS: Final = frozenset(name for name, e in ENDPOINTS.items() if e.changes)


def budget_of(endpoint: str | None) -> str | None:
    """Which shared budget an endpoint counts against: "submit", "read", or None (probes)."""
    access = access_of(endpoint)
    if access is Access.PUBLIC:
        return None
    if endpoint in SUBMIT_ENDPOINTS:
        return "submit"
    return "read"


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a REDIS_URL: `limits` names a Unix socket `redis+unix://`
    where redis-py (and REDIS_URL) say `unix://`; the other schemes are the same."""
    return (
        "redis+unix://" + redis_url.removeprefix("unix://")
        if redis_url.startswith("unix://")
        else redis_url
    )


def install(app: Flask, *, storage_uri: str, submit: str, read: str) -> Limiter:
    """Wrap every routed view in its budget's shared limit. Call once every route exists
    and after auth.install (the key needs the request's principal)."""
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=limits_uri(storage_uri),
        # the `limits` Redis storage's own prefix (default "LIMITS"): keep under qgjob:;
        # short timeouts: a Redis outage costs a request at most about a second here
        storage_options={
            "key_prefix": Keys.RATE_LIMIT_PREFIX,
            "socket_connect_timeout": 1,
            "socket_timeout": 1,
        },
        strategy="moving-window",
        headers_enabled=True,
        swallow_errors=True,
    )
    settings = {"submit": submit, "read": read}
    for endpoint, view in list(app.view_functions.items()):
        budget = budget_of(endpoint)
        if budget is None:
            limiter.exempt(view)
            continue
        if settings[budget] == OFF:
            limiter.exempt(view)
            continue
        limited = limiter.shared_limit(settings[budget], scope=budget)(view)
        app.view_functions[endpoint] = cast("Any", limited)
    return limiter
