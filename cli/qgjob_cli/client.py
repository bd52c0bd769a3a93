"""A small HTTP client for the qgjob /v1 API.

Every transport or HTTP failure leaves this module as a `QgjobError` subclass whose
message is one line and whose class names the exit code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from qgjob_cli.errors import (
    KeyInProgress,
    NotFound,
    QgjobError,
    RateLimited,
    RequestRejected,
    ServerError,
    ServerFailed,
    ServerUnreachable,
)

# A job record exactly as the server sends it (job_id, status, final, result, ...).
JobRecord = dict[str, Any]
# A run as GET /v1/runs/<id> sends it (run_id, counts, timings, finished, jobs, ...).
RunRecord = dict[str, Any]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # a submit answers only once the broker confirmed every job
_MAX_MESSAGE = 300
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The error code of a 409 while another request with the same key is in progress.
IN_PROGRESS = "idempotency_in_progress"
# A 429 is waited out as its Retry-After says, at most this long in all for one request
# (then the command ends with exit code 10); without a readable Retry-After, 1 s a time.
RATE_LIMIT_WAIT_S = 60.0
_DEFAULT_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class RunPage:
    runs: list[RunRecord]
    next_cursor: str | None


class Client:
    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        token: str | None = None,
        rate_limit_wait_s: float = RATE_LIMIT_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session if session is not None else requests.Session()
        self._rate_limit_wait_s = rate_limit_wait_s
        self._sleep = sleep
        # Warnings the server attached to its answers (e.g. a target with no live agent).
        self.warnings: list[str] = []
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def submit(
        self, jobs: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[JobRecord]:
        """Submit jobs in one request; return their records in the order given."""
        body = self._request("POST", "/v1/jobs", json=jobs, headers=_key(idempotency_key))
        self._keep_warning(body)
        records = _records(body)
        if len(records) != len(jobs):
            raise _unexpected(f"{len(records)} job records for {len(jobs)} jobs submitted")
        return records

    def get_job(self, job_id: str) -> JobRecord:
        return _record(self._request("GET", f"/v1/jobs/{quote(job_id, safe='')}"))

    def lookup_jobs(self, job_ids: list[str]) -> list[JobRecord]:
        """Many jobs in ONE request (POST /v1/jobs/lookup), in the order asked."""
        records = _records(self._request("POST", "/v1/jobs/lookup", json={"job_ids": job_ids}))
        if [job["job_id"] for job in records] != job_ids:
            raise _unexpected("the jobs looked up are not the ones asked for")
        return records

    def create_run(self, run: dict[str, Any], *, idempotency_key: str | None = None) -> RunRecord:
        """Submit a suite as one run (POST /v1/runs); return the run as the server shows it."""
        body = self._request("POST", "/v1/runs", json=run, headers=_key(idempotency_key))
        self._keep_warning(body)
        return _run(body.get("run") if isinstance(body, dict) else None)

    def cancel_jobs(
        self, *, job_ids: list[str] | None = None, run_id: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/jobs/cancel for these jobs or a run: {requested, already_final,
        not_found} (and run_id)."""
        request = {"run_id": run_id} if run_id is not None else {"job_ids": job_ids}
        body = self._request("POST", "/v1/jobs/cancel", json=request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), list) for key in ("requested", "already_final", "not_found")
        ):
            raise _unexpected("the cancel answer lacks requested/already_final/not_found")
        return body

    def _keep_warning(self, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("warning"), str):
            self.warnings.append(_one_line(body["warning"]))

    def get_run(self, run_id: str) -> RunRecord:
        return _run(self._request("GET", f"/v1/runs/{quote(run_id, safe='')}"))

    def list_runs(
        self, *, org_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> RunPage:
        filters = {"org_id": org_id, "limit": limit, "cursor": cursor}
        params = {name: value for name, value in filters.items() if value is not None}
        body = self._request("GET", "/v1/runs", params=params)
        runs = body.get("runs") if isinstance(body, dict) else None
        if not isinstance(runs, list) or not all(
            isinstance(run, dict) and isinstance(run.get("run_id"), str) for run in runs
        ):
            raise _unexpected("no 'runs' list in the answer")
        cursor = body.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise _unexpected("next_cursor is not a string")
        return RunPage(runs=runs, next_cursor=cursor)

    def list_jobs(
        self,
        *,
        org_id: str | None = None,
        status: str | None = None,
        app_version_id: str | None = None,
        target: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of jobs; filters left as None are not sent."""
        filters = {
            "org_id": org_id,
            "status": status,
            "app_version_id": app_version_id,
            "target": target,
            "limit": limit,
            "cursor": cursor,
        }
        params = {name: value for name, value in filters.items() if value is not None}
        body = self._request("GET", "/v1/jobs", params=params)
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if cursor is not None and not isinstance(cursor, str):
            raise _unexpected("next_cursor is not a string")
        return JobPage(jobs=_records(body), next_cursor=cursor)

    def dead_letters(self, limit: int) -> dict[str, Any]:
        """GET /v1/admin/dead-letters: {"total", "dead_letters": [...]}, newest first."""
        body = self._request("GET", "/v1/admin/dead-letters", params={"limit": limit})
        if not isinstance(body, dict) or not isinstance(body.get("dead_letters"), list):
            raise _unexpected("the dead-letter listing has no dead_letters list")
        return body

    def replay_dead_letters(self, event_ids: list[str] | None) -> dict[str, Any]:
        """POST /v1/admin/dead-letters/replay: these event ids, or every one (None)."""
        request = {"all": True} if event_ids is None else {"event_ids": event_ids}
        body = self._request("POST", "/v1/admin/dead-letters/replay", json=request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), list) for key in ("replayed", "missing", "unreplayable")
        ):
            raise _unexpected("the replay answer lacks replayed/missing/unreplayable")
        return body

    def create_token(
        self, org_id: str, role: str, *, name: str = "", expires_in_s: int | None = None
    ) -> dict[str, Any]:
        """POST /v1/admin/tokens: the new token (its secret, shown this once) and its record."""
        request: dict[str, Any] = {"org_id": org_id, "role": role, "name": name}
        if expires_in_s is not None:
            request["expires_in_s"] = expires_in_s
        body = self._request("POST", "/v1/admin/tokens", json=request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), str) for key in ("token", "token_id", "org_id", "role")
        ):
            raise _unexpected("the new token lacks token, token_id, org_id or role")
        return body

    def list_tokens(self, org_id: str | None = None) -> list[dict[str, Any]]:
        """GET /v1/admin/tokens: every token's record (never a secret), newest first."""
        params = {} if org_id is None else {"org_id": org_id}
        body = self._request("GET", "/v1/admin/tokens", params=params)
        listed = body.get("tokens") if isinstance(body, dict) else None
        if not isinstance(listed, list) or not all(
            isinstance(t, dict) and isinstance(t.get("token_id"), str) for t in listed
        ):
            raise _unexpected("no 'tokens' list in the answer")
        return listed

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """POST /v1/admin/tokens/<id>/revoke: the revoked token's record."""
        path = f"/v1/admin/tokens/{quote(token_id, safe='')}/revoke"
        body = self._request("POST", path)
        record = body.get("token") if isinstance(body, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("token_id"), str):
            raise _unexpected("the revoke answer has no token record")
        return record

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON body. A 429 (nothing was done: the limit is checked before any
        route runs) is sent again after the server's Retry-After, while the pauses stay
        within RATE_LIMIT_WAIT_S in all; past that, RateLimited."""
        waited = 0.0
        while True:
            response = self._send(method, path, **kwargs)
            if response.status_code != 429:
                return _body(response, f"{method} {path}")
            pause = _retry_after_s(response)
            if waited + pause > self._rate_limit_wait_s:
                message = _server_message(_json_or_none(response)) or "too many requests"
                raise RateLimited(
                    f"rate limited by the qgjob API (HTTP 429, retry after {pause:g} s; "
                    f"waited {waited:g} s of at most {self._rate_limit_wait_s:g} s): {message}"
                )
            self._sleep(pause)
            waited += pause

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        try:
            response = self._session.request(
                method, url, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S), **kwargs
            )
        except requests.ConnectTimeout as exc:
            raise ServerUnreachable(
                f"cannot reach the qgjob API at {self.base_url}: "
                f"no connection within {CONNECT_TIMEOUT_S:g} s"
            ) from exc
        except requests.Timeout as exc:
            raise ServerUnreachable(
                f"no answer from the qgjob API at {self.base_url} within {READ_TIMEOUT_S:g} s"
            ) from exc
        except requests.ConnectionError as exc:
            raise ServerUnreachable(
                f"cannot reach the qgjob API at {self.base_url}: {_reason(exc)} "
                "(is it running? set --api-url or QGJOB_API_URL)"
            ) from exc
        except requests.RequestException as exc:
            raise ServerError(f"bad response from the qgjob API: {_reason(exc)}") from exc
        return response


def _retry_after_s(response: requests.Response) -> float:
    """Seconds a 429 asks to wait: Retry-After as seconds or as an HTTP date."""
    value = (response.headers.get("Retry-After") or "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return _DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _body(response: requests.Response, what: str) -> Any:
    """The decoded JSON body of a 2xx answer; otherwise the matching QgjobError."""
    body = _json_or_none(response)
    status = response.status_code
    if 200 <= status < 300:
        if body is None:
            raise _unexpected(f"{what} answered HTTP {status} without a JSON body")
        return body
    message = _server_message(body) or f"HTTP {status} {response.reason or ''}".strip()
    error: type[QgjobError]
    if status == 404:
        error, text = NotFound, f"not found: {message}"
    elif status == 409 and isinstance(body, dict) and body.get("error") == IN_PROGRESS:
        error, text = KeyInProgress, f"the server is still processing this request: {message}"
    elif 400 <= status < 500:
        error, text = RequestRejected, f"the server rejected the request: {message}"
    elif status >= 500:
        error, text = ServerFailed, f"server error (HTTP {status}): {message}"
    else:
        error, text = ServerError, f"unexpected answer to {what}: HTTP {status}"
    raise error(text)


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {} if idempotency_key is None else {IDEMPOTENCY_HEADER: idempotency_key}


def _server_message(body: Any) -> str:
    """`message (field: x)` from an API error body, squeezed onto one short line."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return ""
    text = body["message"]
    if isinstance(body.get("field"), str) and body["field"]:
        text = f"{text} (field: {body['field']})"
    return _one_line(text)


def _records(body: Any) -> list[JobRecord]:
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise _unexpected("no 'jobs' list in the answer")
    return [_record(job) for job in jobs]


def _record(job: Any) -> JobRecord:
    """A job record with the three fields the CLI relies on: job_id, status and final."""
    if (
        not isinstance(job, dict)
        or not isinstance(job.get("job_id"), str)
        or not isinstance(job.get("status"), str)
        or not isinstance(job.get("final"), bool)
    ):
        raise _unexpected("a job record lacks job_id, status or final")
    return job


def _run(body: Any) -> RunRecord:
    """A run with what the CLI relies on: run_id, finished, and job records."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("run_id"), str)
        or not isinstance(body.get("finished"), bool)
    ):
        raise _unexpected("a run lacks run_id or finished")
    body["jobs"] = _records(body)
    return body


def _unexpected(detail: str) -> ServerError:
    return ServerError(f"unexpected response from the qgjob API: {detail}")


def _reason(exc: BaseException) -> str:
    """The innermost OS-level reason of a requests failure ('Connection refused')."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return _one_line(current.strerror)
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = current.__cause__ or next(
                (arg for arg in current.args if isinstance(arg, BaseException)), None
            )
        current = nested
    return type(exc).__name__


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
