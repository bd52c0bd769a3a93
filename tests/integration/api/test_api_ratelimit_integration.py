"""Rate limits on the real Redis: per token with auth on, per address with auth off, shared
by every API instance on the same Redis, 429 with Retry-After in the JSON error shape."""

from __future__ import annotations

from typing import Any

import pika
import pytest
import redis

from qgjob_contract.names import Keys
from tests.integration.api.conftest import MakeClient

ADMIN = "admin-secret-for-tests-0123456789abcdef"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def broker(amqp_channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    """The scheduler queue exists (declared by amqp_channel) before submitting."""


def _assert_limited(response: Any) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) >= 1


def test_reads_over_the_limit_are_429_per_address_with_auth_off(
    make_client: MakeClient, redis_client: redis.Redis
) -> None:
    first = make_client(rate_limit_read="3/minute")
    second = make_client(rate_limit_read="3/minute")  # another worker, same Redis
    assert [first.get("/v1/jobs").status_code for _ in range(2)] == [200, 200]
    assert second.get("/v1/runs").status_code == 200  # the read budget is shared
    _assert_limited(first.get("/v1/jobs/x"))
    assert first.get("/healthz").status_code == 200  # probes are never limited
    assert redis_client.keys(f"{Keys.RATE_LIMIT_PREFIX}:*"), "the counters live in Redis"


def test_submissions_have_their_own_budget(make_client: MakeClient, broker: None) -> None:
    api = make_client(rate_limit_submit="2/minute", rate_limit_read="100/minute")
    job = {"org_id": "acme", "app_version_id": "v1", "test_path": "a.js"}
    assert api.post("/v1/jobs", json=job).status_code == 201
    assert api.post("/submit", json=job).status_code == 201
    run = {"org_id": "acme", "app_version_id": "v1", "tests": ["a.js"]}
    _assert_limited(api.post("/v1/runs", json=run))
    assert api.get("/v1/jobs").status_code == 200


def test_each_token_has_its_own_budget(make_client: MakeClient) -> None:
    api = make_client(auth_mode="tokens", admin_token=ADMIN, rate_limit_read="2/minute")
    made = [
        api.post(
            "/v1/admin/tokens", json={"org_id": org, "role": "viewer"}, headers=_bearer(ADMIN)
        ).get_json()["token"]
        for org in ("acme", "beta")
    ]
    acme, beta = made
    assert [api.get("/v1/jobs", headers=_bearer(acme)).status_code for _ in range(2)] == [
        200,
        200,
    ]
    _assert_limited(api.get("/v1/jobs", headers=_bearer(acme)))
    assert api.get("/v1/jobs", headers=_bearer(beta)).status_code == 200


def test_limits_off_never_limit(make_client: MakeClient) -> None:
    api = make_client(rate_limit_read="off")
    assert {api.get("/v1/jobs").status_code for _ in range(20)} == {200}
