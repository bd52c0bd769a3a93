"""The seed's `GET /status/<job_id>` answers an id that cannot name a job as the seed
answered any unknown id, 404 `not_found` (issue 9, point 7 and the seed contract), and such
an id never reaches Redis: with Redis away it is still a 404, while a well-formed id is 503."""

from __future__ import annotations

import socket
import uuid

import pytest
from flask.testing import FlaskClient

from tests.integration.api.conftest import MakeClient

HOSTILE = ["a%0Ab", "a%20b", "%2A", "x" * 129, "%C3%A9", "a%1B%5B31m", "%C2%85"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("job_id", HOSTILE)
def test_a_malformed_id_is_404_on_the_seed_route_and_400_on_v1(
    client: FlaskClient, job_id: str
) -> None:
    legacy = client.get(f"/status/{job_id}")
    assert legacy.status_code == 404, legacy.get_data(as_text=True)
    body = legacy.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "not_found"
    assert "\n" not in body["message"]
    assert len(body["message"]) < 200
    v1 = client.get(f"/v1/jobs/{job_id}")
    assert v1.status_code == 400
    assert v1.get_json()["field"] == "job_id"


def test_a_malformed_id_never_reaches_redis(make_client: MakeClient) -> None:
    away = make_client(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    for job_id in HOSTILE:
        assert away.get(f"/status/{job_id}").status_code == 404, job_id
    # a well-formed id is looked up, and Redis is away: the real outage answer
    unknown = away.get(f"/status/{uuid.uuid4()}")
    assert unknown.status_code == 503
    assert unknown.headers["Retry-After"].isdigit()
