"""Who is asking, and what they may do: the auth modes, roles and org isolation (issue 9).

`QGJOB_AUTH=off` (the local default): nobody is asked for a token; every request acts as
`OPEN`, which sees every org (the seed's behaviour). `QGJOB_AUTH=tokens`: every route but
the PUBLIC ones needs `Authorization: Bearer <token>`, either the environment's
QGJOB_ADMIN_TOKEN or an org token (qgjob_api.tokens); none, or an unknown, revoked or expired
one, is 401. Each route's access is named in the endpoint table (qgjob_api.endpoints, ACCESS
here); a route missing from it is admin-only (deny by default: a new route is never open by
mistake).

Isolation lives in Principal: `sees(org_id)` (another org's job or run is answered 404, so
existence does not leak), `listing_org(query_org)` (a listing is filtered by the token's org
whatever the query says) and `check_submit(org_id)` (403 for another org).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import redis
from flask import Flask, g, request
from werkzeug.exceptions import MethodNotAllowed

from qgjob_api import tokens
from qgjob_api.endpoints import ENDPOINTS, Access
from qgjob_api.errors import Forbidden, Unauthorized
from qgjob_contract.roles import ANONYMOUS, ENV_ADMIN_TOKEN_ID, Role

log = logging.getLogger(__name__)

AUTH_OFF: Final = "off"
AUTH_TOKENS: Final = "tokens"
AUTH_MODES: Final = (AUTH_OFF, AUTH_TOKENS)
# The longest Authorization header value looked at (a token is 66 characters).
MAX_CREDENTIAL: Final = 512


# Flask endpoint -> what it needs (from the one endpoint table, qgjob_api.endpoints).
ACCESS: Final[dict[str, Access]] = {name: e.access for name, e in ENDPOINTS.items()}

_MAY: Final[dict[Role, frozenset[Access]]] = {
    Role.VIEWER: frozenset({Access.PUBLIC, Access.READ}),
    Role.SUBMITTER: frozenset({Access.PUBLIC, Access.READ, Access.SUBMIT}),
    Role.ADMIN: frozenset(Access),
}


@dataclass(frozen=True)
class Principal:
    """The caller: a token (its id, role, org) or, with auth off, OPEN."""

    token_id: str | None  # None: auth is off (nothing to attribute)
    role: Role
    org_id: str | None  # None: not bound to an org

    @property
    def org_scope(self) -> str | None:
        """The one org this caller may see, or None for every org (admin, auth off)."""
        return None if self.role is Role.ADMIN else self.org_id

    @property
    def actor(self) -> str:
        """What a record says did something: the token id, or "anonymous" with auth off."""
        return self.token_id or ANONYMOUS

    def may(self, access: Access) -> bool:
        return access in _MAY[self.role]

    def sees(self, org_id: str) -> bool:
        scope = self.org_scope
        return scope is None or scope == org_id

    def check_submit(self, org_id: str) -> None:
        """A submission for another org than the token's is refused (403)."""
        if not self.sees(org_id):
            raise Forbidden(f"this token may only submit for org {self.org_scope!r}")

    def listing_org(self, wanted: str | None) -> tuple[str | None, bool]:
        """The org filter a listing applies, and whether it must come back empty (the
        query asked for another org than the token's)."""
        scope = self.org_scope
        if scope is None:
            return wanted, False
        return scope, wanted is not None and wanted != scope


OPEN: Final = Principal(token_id=None, role=Role.ADMIN, org_id=None)


def current() -> Principal:
    """The caller of the request being served."""
    principal: Principal = g.get("principal", OPEN)
    return principal


def access_of(endpoint: str | None) -> Access:
    """What a request needs: its route's entry; admin for a route missing from ACCESS; a
    valid token for a URL that matches no route (so unknown paths do not leak as 404)."""
    if endpoint is None:
        return Access.READ
    return ACCESS.get(endpoint, Access.ADMIN)


class Authenticator:
    """Turns an Authorization header into a Principal (tokens mode)."""

    def __init__(self, client: redis.Redis, admin_token: str) -> None:
        self._client = client
        self._admin_digest = tokens.digest(admin_token)

    def principal(self, header: str | None) -> Principal:
        presented = _bearer(header)
        # Always hashed and compared, whatever the token looks like: constant-time.
        if tokens.same_digest(tokens.digest(presented), self._admin_digest):
            return Principal(token_id=ENV_ADMIN_TOKEN_ID, role=Role.ADMIN, org_id=None)
        parts = tokens.split(presented)
        if parts is None:
            raise Unauthorized("the token is not valid")
        token_id, secret = parts
        record = tokens.load(self._client, token_id)
        if record is None or not tokens.same_digest(tokens.digest(secret), record.digest):
            raise Unauthorized("the token is not valid")
        if not record.usable(_now_ms()):
            raise Unauthorized("the token was revoked or has expired")
        return Principal(token_id=record.token_id, role=record.role, org_id=record.org_id)


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthorized("this API needs 'Authorization: Bearer <token>'")
    if len(header) > MAX_CREDENTIAL:
        raise Unauthorized("the Authorization header is too long to hold a token")
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return credential.strip()


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def install(app: Flask, client: redis.Redis, *, mode: str, admin_token: str | None) -> None:
    """Check every request before its route runs (registered before the rate limiter, so
    the limiter keys on the token)."""
    if mode == AUTH_OFF:
        log.warning(
            "QGJOB_AUTH=off: no token is asked for; anyone who reaches this API reads and "
            "submits for every org (set QGJOB_AUTH=tokens, see README 'Security')"
        )
    if mode == AUTH_TOKENS and not admin_token:
        # Never fail open: tokens without an admin token would leave every route unchecked.
        raise ValueError("QGJOB_AUTH=tokens needs QGJOB_ADMIN_TOKEN")
    authenticator = (
        Authenticator(client, admin_token) if mode == AUTH_TOKENS and admin_token else None
    )

    @app.before_request
    def authenticate() -> None:
        access = access_of(request.endpoint)
        # A method a route does not have answers 405 to anyone: the routes are the
        # published contract, so the Allow header tells nothing secret.
        not_allowed = isinstance(request.routing_exception, MethodNotAllowed)
        if access is Access.PUBLIC or authenticator is None or not_allowed:
            g.principal = OPEN
            return
        principal = authenticator.principal(request.headers.get("Authorization"))
        g.principal = principal
        if not principal.may(access):
            raise Forbidden(f"a {principal.role.value} token may not do this")
