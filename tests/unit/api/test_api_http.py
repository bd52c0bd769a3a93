"""HTTP behaviour that needs no working Redis or broker: errors are JSON, never a 500 for bad
input, and an unreachable store gives 503. The happy paths run against real servers in
tests/integration/api."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from qgjob_api.app import ThreadPublishers, create_app
from qgjob_api.config import Config
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import Envelope, EventType, JobsSubmitted, make_event

VALID_JOB = {"org_id": "qualgent", "app_version_id": "xyz123", "test_path": "tests/a.spec.js"}


class FakePublisher:
    def __init__(self, *, reachable: bool = True) -> None:
        self.reachable = reachable
        self.published: list[Envelope] = []
        self.closed = False

    def publish(self, envelope: Envelope) -> None:
        if not self.reachable:
            raise PublishError("broker unreachable: fake")
        self.published.append(envelope)

    def check(self) -> None:
        if not self.reachable:
            raise PublishError("broker unreachable: fake")

    def close(self) -> None:
        self.closed = True


class BrokenRedis:
    """A client whose every read fails with a bug, not a connection error."""

    def hgetall(self, key: str) -> dict[str, str]:
        raise RuntimeError(f"bug reading {key}")


@pytest.fixture
def publishers() -> list[FakePublisher]:
    return []


@pytest.fixture
def app(publishers: list[FakePublisher]) -> Flask:
    def factory() -> FakePublisher:
        publishers.append(FakePublisher(reachable=False))
        return publishers[-1]

    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), retries=0))
    return create_app(
        Config(max_jobs_per_request=5), redis_client=unreachable, publisher_factory=factory
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _assert_json_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def test_healthz_touches_nothing(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/submit", "/v1/jobs"])
def test_bad_json_is_400_invalid_json(client: FlaskClient, path: str) -> None:
    response = client.post(path, data=b"{not json", content_type="application/json")
    _assert_json_error(response, 400, "invalid_json")


def test_form_body_is_400_invalid_json(client: FlaskClient) -> None:
    response = client.post("/submit", data={"org_id": "qualgent"})
    body = _assert_json_error(response, 400, "invalid_json")
    assert "application/json" in body["message"]


def test_invalid_job_is_400_naming_the_field_and_publishes_nothing(
    client: FlaskClient, publishers: list[FakePublisher]
) -> None:
    response = client.post("/submit", json={**VALID_JOB, "priority": 11})
    body = _assert_json_error(response, 400, "validation_error")
    assert body["field"] == "priority"
    assert body["message"].startswith("priority: ")
    assert publishers == []


def test_batch_over_the_limit_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/jobs", json=[VALID_JOB] * 6)
    body = _assert_json_error(response, 400, "validation_error")
    assert body["field"] == "jobs"


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    _assert_json_error(client.get("/nope"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/submit")
    _assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_oversize_body_is_json_413(client: FlaskClient) -> None:
    response = client.post(
        "/v1/jobs", data=b"[" + b" " * 200_000 + b"]", content_type="application/json"
    )
    _assert_json_error(response, 413, "request_entity_too_large")


@pytest.mark.parametrize(("path", "body"), [("/submit", VALID_JOB), ("/v1/jobs", [VALID_JOB] * 2)])
def test_unreachable_redis_on_submit_is_503_and_nothing_is_published(path: str, body: Any) -> None:
    # The broker is reachable here: an API that published before (or despite) the failed
    # store write would leave the event in `published`, and this test would fail.
    publishers: list[FakePublisher] = []

    def factory() -> FakePublisher:
        publishers.append(FakePublisher(reachable=True))
        return publishers[-1]

    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), retries=0))
    app = create_app(
        Config(max_jobs_per_request=5), redis_client=unreachable, publisher_factory=factory
    )
    response = app.test_client().post(path, json=body)
    result = _assert_json_error(response, 503, "unavailable")
    assert "Redis" in result["message"]
    assert [publisher.published for publisher in publishers] in ([], [[]])


def test_the_reachable_fake_broker_does_record_what_is_published() -> None:
    """The check above can fail: the same fake, given an event, records it."""
    publisher = FakePublisher(reachable=True)
    envelope = make_event(EventType.JOBS_SUBMITTED, JobsSubmitted(jobs=[]))
    publisher.publish(envelope)
    assert publisher.published == [envelope]


@pytest.mark.parametrize("path", ["/status/abc", "/v1/jobs/abc", "/v1/jobs", "/v1/agents"])
def test_unreachable_redis_on_reads_is_503(client: FlaskClient, path: str) -> None:
    _assert_json_error(client.get(path), 503, "unavailable")


def test_readyz_names_what_is_unreachable(
    client: FlaskClient, publishers: list[FakePublisher]
) -> None:
    body = _assert_json_error(client.get("/readyz"), 503, "unavailable")
    assert body["checks"] == {"redis": "unreachable", "rabbitmq": "unreachable"}
    assert "redis" in body["message"]
    assert "rabbitmq" in body["message"]
    assert publishers[-1].closed  # the probe's connection is not kept


def test_a_bug_is_a_json_500_not_html() -> None:
    app = create_app(Config(), redis_client=BrokenRedis(), publisher_factory=FakePublisher)  # type: ignore[arg-type]
    response = app.test_client().get("/status/abc")
    _assert_json_error(response, 500, "internal_error")


NASTY_BODIES: list[Any] = [
    None,
    0,
    -1,
    1e308,
    "",
    "x" * 10_000,
    [],
    [[]],
    [None],
    {},
    {"jobs": None},
    {"jobs": [[]]},
    {"jobs": "x"},
    {"": ""},
    {**VALID_JOB, "priority": 10**400},
    {**VALID_JOB, "priority": -(10**30)},
    {**VALID_JOB, "priority": {"$gt": 1}},
    {**VALID_JOB, "target": ["emulator"]},
    {**VALID_JOB, "target": {"value": "emulator"}},
    {**VALID_JOB, "test_path": "tests/\u2028x.js"},
    {**VALID_JOB, "test_path": "é" * 1025},
    {**VALID_JOB, "org_id": "ünïcode"},
    {**VALID_JOB, "org_id": {"a": 1}},
    [VALID_JOB, {**VALID_JOB, "extra": 1}],
]


@pytest.mark.parametrize("path", ["/submit", "/v1/jobs"])
@pytest.mark.parametrize("body", NASTY_BODIES)
def test_no_body_produces_a_500(client: FlaskClient, path: str, body: Any) -> None:
    # Every one of these bodies is invalid: validation must refuse it (400) before the store
    # is touched. A body that wrongly passed validation would reach the unreachable Redis
    # and answer 503, which fails here.
    response = client.post(path, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()
    assert error["error"] in {"validation_error", "invalid_json"}
    assert set(error) == {"error", "message", "field"} or set(error) == {"error", "message"}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=-5", 400),
        ("limit=1e9", 400),
        ("limit=%00", 400),
        ("status=%ff", 400),
        ("cursor=" + "A" * 5000, 400),
        ("a=b", 400),
        # An empty value counts as absent (README): the query is valid, so it reaches the
        # store, which is unreachable in this module.
        ("target=", 503),
    ],
)
def test_no_query_produces_a_500(client: FlaskClient, query: str, status: int) -> None:
    response = client.get(f"/v1/jobs?{query}")
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()
    assert error["error"] == ("validation_error" if status == 400 else "unavailable")
    assert error["message"]


def test_each_thread_gets_its_own_publisher() -> None:
    publishers = ThreadPublishers(FakePublisher)
    mine = publishers.get()
    assert publishers.get() is mine
    theirs: list[Any] = []
    thread = threading.Thread(target=lambda: theirs.append(publishers.get()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine


@pytest.mark.parametrize("limit", ["%C2%B2", "%E2%91%A0", "%D9%A3"])  # ², ①, Arabic-Indic 3
def test_a_unicode_digit_limit_is_a_400_not_a_500(client: FlaskClient, limit: str) -> None:
    """str.isdigit() accepts these, int() does not: the dead-letter listing must say 400."""
    response = client.get(f"/v1/admin/dead-letters?limit={limit}")
    _assert_json_error(response, 400, "validation_error")
