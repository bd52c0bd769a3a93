"""Admin routes for org tokens: create (the secret is in this answer only), list, revoke.

A revoke takes effect on the next request: every request reads the token's record, nothing
is cached. Revoked records are kept (listed with `revoked_at`), so the `submitted_by` of old
jobs still names a token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import Blueprint, request

from qgjob_api import answers, tokens
from qgjob_api.auth import current
from qgjob_api.bodies import request_json
from qgjob_api.errors import HttpError, NotFound, ValidationFailed
from qgjob_api.validation import TokenIn, TokenQuery, parse_body, parse_query
from qgjob_contract.events import format_timestamp, utc_now

log = logging.getLogger(__name__)


class TokensNeedAuth(HttpError):
    """With QGJOB_AUTH=off every caller acts as an admin: a token minted then could be
    anyone's, and it would still work once the API runs with QGJOB_AUTH=tokens."""

    status = 409
    code = "auth_off"


def tokens_blueprint(client: redis.Redis, *, retention_s: float, minting: bool) -> Blueprint:
    """The token routes; a revoked or expired token's record is kept `retention_s`. Tokens
    are created only when `minting` (QGJOB_AUTH=tokens, the caller proven an admin)."""
    routes = Blueprint("tokens", __name__, url_prefix="/v1/admin/tokens")

    @routes.post("")
    def create_token() -> tuple[dict[str, Any], int]:
        if not minting:
            raise TokensNeedAuth(
                "tokens are created only when the API runs with QGJOB_AUTH=tokens "
                "(with auth off any caller is an admin)"
            )
        token_in = parse_body(TokenIn, request_json())
        token_id, secret, hashed = tokens.mint()
        now = datetime.now(UTC)
        expires_at = (
            None
            if token_in.expires_in_s is None
            else format_timestamp(now + timedelta(seconds=token_in.expires_in_s))
        )
        record = tokens.TokenRecord(
            token_id=token_id,
            org_id=token_in.org_id,
            role=token_in.role,
            name=token_in.name,
            created_at=format_timestamp(now),
            digest=hashed,
            expires_at=expires_at,
        )
        tokens.store(client, record, retention_s=retention_s)
        log.info(
            "token created token_id=%s org_id=%s role=%s by=%s",
            token_id,
            record.org_id,
            record.role.value,
            current().actor,
        )
        return answers.shown(answers.TokenCreated, {"token": secret, **record.to_api()}), 201

    @routes.get("")
    def list_tokens() -> dict[str, Any]:
        query = parse_query(TokenQuery, request.args)
        listed = [r.to_api() for r in tokens.listing(client, query.org_id)]
        return answers.shown(answers.Tokens, {"tokens": listed})

    @routes.post("/<token_id>/revoke")
    def revoke_token(token_id: str) -> dict[str, Any]:
        if not tokens.is_token_id(token_id):
            raise ValidationFailed("token_id", "must be 16 hex digits (a token id)")
        record = tokens.revoke(client, token_id, utc_now(), retention_s=retention_s)
        if record is None:
            raise NotFound(f"no token with id {token_id!r}")
        log.info("token revoked token_id=%s by=%s", token_id, current().actor)
        return answers.shown(answers.OneToken, {"token": record.to_api()})

    return routes
