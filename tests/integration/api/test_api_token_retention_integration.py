"""Token records are bounded (README "Bounded state"): a revoked or expired token's record
is removed JOB_RETENTION_S after it stopped working, and its index entry with the next
listing; a working token is kept."""

from __future__ import annotations

import time
from typing import Any

import pika
import pytest
import redis
from flask.testing import FlaskClient

from qgjob_contract.names import Keys
from tests.integration.api.conftest import MakeClient

ADMIN = "admin-secret-for-tests-0123456789abcdef"
_AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
RETENTION_S = 1.0


@pytest.fixture
def api(
    make_client: MakeClient, amqp_channel: pika.adapters.blocking_connection.BlockingChannel
) -> FlaskClient:
    return make_client(auth_mode="tokens", admin_token=ADMIN, job_retention_s=RETENTION_S)


def _create(api: FlaskClient, **extra: Any) -> dict[str, Any]:
    response = api.post(
        "/v1/admin/tokens", json={"org_id": "acme", "role": "viewer", **extra}, headers=_AS_ADMIN
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _listed(api: FlaskClient) -> set[str]:
    response = api.get("/v1/admin/tokens", headers=_AS_ADMIN)
    assert response.status_code == 200
    return {token["token_id"] for token in response.get_json()["tokens"]}


def test_revoked_and_expired_tokens_go_after_the_retention(
    api: FlaskClient, redis_client: redis.Redis
) -> None:
    kept = _create(api)
    revoked = _create(api)
    expiring = _create(api, expires_in_s=1)
    assert (
        api.post(f"/v1/admin/tokens/{revoked['token_id']}/revoke", headers=_AS_ADMIN).status_code
        == 200
    )
    assert redis_client.ttl(Keys.token(kept["token_id"])) == -1  # a working token has no TTL
    deadline = time.monotonic() + 60
    while {revoked["token_id"], expiring["token_id"]} & _listed(api):
        assert time.monotonic() < deadline, "the revoked and expired tokens were never removed"
        time.sleep(0.2)
    assert _listed(api) == {kept["token_id"]}
    indexed = {
        m.decode() if isinstance(m, bytes) else m for m in redis_client.zrange(Keys.TOKENS, 0, -1)
    }
    assert indexed == {kept["token_id"]}
    gone = api.get("/v1/jobs", headers={"Authorization": f"Bearer {revoked['token']}"})
    assert gone.status_code == 401
