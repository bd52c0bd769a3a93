"""The client's wait on HTTP 429 (pure logic, with a recorded transport and a recorded sleep):
Retry-After in seconds or as an HTTP date, a default without one, and the bounded total."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from qgjob_cli.client import Client
from qgjob_cli.errors import RateLimited
from qgjob_cli.exit_codes import ExitCode


class _Answers(BaseAdapter):
    """Answers each request with the next (status, headers) given."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__()
        self.answers = answers
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        status, headers = self.answers[min(self.sent, len(self.answers) - 1)]
        self.sent += 1
        response = requests.Response()
        response.status_code = status
        response.headers.update({"Content-Type": "application/json", **headers})
        body = (
            b'{"jobs": [], "next_cursor": null}'
            if status == 200
            else (b'{"error": "too_many_requests", "message": "100 per 1 minute"}')
        )
        response._content = body
        response.request = request
        return response

    def close(self) -> None: ...


def _client(
    answers: list[tuple[int, dict[str, str]]], wait_s: float
) -> tuple[Client, list[float], _Answers]:
    adapter = _Answers(answers)
    session = requests.Session()
    session.mount("http://", adapter)
    pauses: list[float] = []
    return (
        Client("http://qgjob.test", session=session, rate_limit_wait_s=wait_s, sleep=pauses.append),
        pauses,
        adapter,
    )


def test_retry_after_seconds_then_the_answer() -> None:
    client, pauses, adapter = _client(
        [(429, {"Retry-After": "3"}), (429, {"Retry-After": "2"}), (200, {})], 60
    )
    assert client.list_jobs().jobs == []
    assert pauses == [3.0, 2.0]
    assert adapter.sent == 3


def test_retry_after_as_an_http_date_and_missing() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    client, pauses, _ = _client([(429, {"Retry-After": when}), (429, {}), (200, {})], 60)
    client.list_jobs()
    assert 25 <= pauses[0] <= 30
    assert pauses[1] == 1.0


def test_past_the_bound_one_line_and_exit_10() -> None:
    client, pauses, adapter = _client([(429, {"Retry-After": "40"})], 60)
    with pytest.raises(RateLimited) as raised:
        client.list_jobs()
    assert pauses == [40.0]  # the second 40 s would pass the 60 s bound: no wait, refused
    assert adapter.sent == 2
    assert raised.value.exit_code == ExitCode.RATE_LIMITED == 10
    assert "\n" not in str(raised.value)
    assert "100 per 1 minute" in str(raised.value)
