"""Cancel: `POST /v1/jobs/<id>/cancel` and the bulk `POST /v1/jobs/cancel`.

The API does not stop anything itself: it marks each job that is not final yet
(`cancel_requested_at`, `cancel_requested_by`, atomically with the check, in one Lua script)
and publishes ONE `jobs.cancel_requested` event for the request, with publisher confirms.
The scheduler takes a queued or assigned job back and ends it `cancelled`, and has the agent
stop a running one. A job already final is left unchanged (409 for one job; listed as
`already_final` in the bulk answer). Asking again for a job already asked for keeps the first
request's who/when and publishes the event again (harmless: the scheduler is idempotent), so
a client may retry a cancel whose answer it lost.

If the event cannot be published the marks this request set are taken back and the answer
is 503: as with submit, a 503 leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, cast

import redis
from flask import Blueprint
from pydantic import ValidationError
from redis.commands.core import AsyncScript, Script

from qgjob_api import answers, run_store, store
from qgjob_api.bodies import request_json
from qgjob_api.config import Config
from qgjob_api.errors import HttpError, NotFound, Unavailable, ValidationFailed
from qgjob_api.redis_text import text
from qgjob_api.submit import Publisher
from qgjob_api.validation import MAX_IDENTIFIER, CancelIn
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import EventType, JobsCancelRequested, make_event, utc_now
from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.roles import ANONYMOUS
from qgjob_contract.statuses import FINAL_STATUSES

log = logging.getLogger(__name__)

_REQUESTED_AT: Final = "cancel_requested_at"
_REQUESTED_BY: Final = "cancel_requested_by"
# Replies of request_cancel.lua, per job.
_MISSING, _MARKED, _ALREADY_ASKED, _FINAL = 0, 1, 2, 3


class AlreadyFinal(HttpError):
    """The job has a final status: a cancel changes nothing."""

    status = 409
    code = "already_final"


@dataclass(frozen=True)
class CancelOutcome:
    """What one cancel request did, job by job (ids in the order asked)."""

    requested: list[str] = field(default_factory=list)  # cancel asked (now or before)
    already_final: dict[str, str] = field(default_factory=dict)  # job_id -> its status
    not_found: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)  # marked by this request (for an undo)


def classify(job_ids: Sequence[str], replies: Sequence[Sequence[Any]]) -> CancelOutcome:
    """request_cancel.lua's replies, sorted into the answer's lists (pure)."""
    outcome = CancelOutcome()
    for job_id, reply in zip(job_ids, replies, strict=True):
        kind = int(reply[0])
        if kind == _MISSING:
            outcome.not_found.append(job_id)
        elif kind == _FINAL:
            outcome.already_final[job_id] = text(reply[1])
        else:
            outcome.requested.append(job_id)
            if kind == _MARKED:
                outcome.marked.append(job_id)
    return outcome


def parse_cancel(body: Any, *, max_jobs: int) -> CancelIn:
    """The bulk body: exactly one of `job_ids` (at most `max_jobs`, repeats dropped) and
    `run_id`."""
    if not isinstance(body, dict):
        raise ValidationFailed("body", 'must be {"job_ids": [...]} or {"run_id": "..."}')
    try:
        parsed = CancelIn.model_validate(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = str(error["loc"][0]) if error["loc"] else "body"
        if error["type"] == "extra_forbidden":
            raise ValidationFailed(name, "is not a known field (job_ids or run_id)") from None
        if name == "run_id":
            raise ValidationFailed(name, "must be a run id (a non-empty string)") from None
        raise ValidationFailed(
            "job_ids",
            "must be a non-empty list of job ids (1 to "
            f"{MAX_IDENTIFIER} letters, digits, '.', '_' or '-')",
        ) from None
    if (parsed.job_ids is None) == (parsed.run_id is None):
        raise ValidationFailed("body", "give exactly one of job_ids and run_id")
    if parsed.job_ids is not None:
        if len(parsed.job_ids) > max_jobs:
            raise ValidationFailed(
                "job_ids", f"at most {max_jobs} ids per request, got {len(parsed.job_ids)}"
            )
        return CancelIn(job_ids=list(dict.fromkeys(parsed.job_ids)))
    return parsed


class Canceller:
    """Marks jobs and publishes their jobs.cancel_requested event (or undoes the marks)."""

    def __init__(self, client: redis.Redis, publisher: Callable[[], Publisher]) -> None:
        self._client = client
        self._publisher = publisher

    # Registered on first use: building the app touches no Redis.
    @cached_property
    def _request(self) -> AsyncScript | Script:
        return self._client.register_script(script("qgjob_api", "request_cancel"))

    @cached_property
    def _undo(self) -> AsyncScript | Script:
        return self._client.register_script(script("qgjob_api", "undo_cancel"))

    def cancel(self, job_ids: Sequence[str], *, requested_by: str = ANONYMOUS) -> CancelOutcome:
        """Ask for the cancel of `job_ids`; raises Unavailable (nothing kept) on an outage."""
        if not job_ids:
            return CancelOutcome()
        requested_at = utc_now()
        finals = sorted(status.value for status in FINAL_STATUSES)
        replies = cast(
            "list[list[Any]]",
            self._request(
                keys=[Keys.job(job_id) for job_id in job_ids],
                args=[requested_at, requested_by, _REQUESTED_AT, _REQUESTED_BY, *finals],
            ),
        )
        outcome = classify(job_ids, replies)
        if outcome.requested:
            self._publish(outcome, requested_at=requested_at, requested_by=requested_by)
        return outcome

    def _publish(self, outcome: CancelOutcome, *, requested_at: str, requested_by: str) -> None:
        payload = JobsCancelRequested(
            job_ids=outcome.requested, requested_by=requested_by, requested_at=requested_at
        )
        event = make_event(EventType.JOBS_CANCEL_REQUESTED, payload)
        try:
            self._publisher().publish(event)
        except Exception as exc:
            log.error(
                "publishing %s event_id=%s failed (%s); taking back the cancel of job_ids=%s",
                event.type.value,
                event.event_id,
                exc,
                outcome.marked,
            )
            self._take_back(outcome.marked, requested_at=requested_at, requested_by=requested_by)
            if isinstance(exc, PublishError):
                raise Unavailable(
                    "the event broker (RabbitMQ) is unavailable; nothing was cancelled"
                ) from exc
            raise
        log.info(
            "cancel requested job_ids=%s by=%s (event_id=%s)",
            outcome.requested,
            requested_by,
            event.event_id,
        )

    def _take_back(self, job_ids: list[str], *, requested_at: str, requested_by: str) -> None:
        if not job_ids:
            return
        try:
            self._undo(
                keys=[Keys.job(job_id) for job_id in job_ids],
                args=[requested_at, requested_by, _REQUESTED_AT, _REQUESTED_BY],
            )
        except redis.RedisError:
            log.exception("could not take back the cancel marks of job_ids=%s", job_ids)


def cancel_blueprint(
    client: redis.Redis,
    publisher: Callable[[], Publisher],
    config: Config,
    *,
    requested_by: Callable[[], str] = lambda: ANONYMOUS,
    sees: Callable[[str], bool] = lambda _org_id: True,
) -> Blueprint:
    """The cancel routes. `requested_by` names who asks (a token id once tokens exist);
    `sees(org_id)` says whether the caller may touch that org's jobs: another org's job or
    run is answered as if it did not exist (qgjob_api.auth)."""
    routes = Blueprint("cancel", __name__)
    canceller = Canceller(client, publisher)

    def visible(job_ids: Sequence[str]) -> tuple[list[str], list[str]]:
        """The ids the caller may cancel, and the others (unknown, or another org's)."""
        jobs = run_store.get_jobs(client, list(job_ids))
        seen = [i for i, job in zip(job_ids, jobs, strict=True) if job and sees(job.org_id)]
        allowed = set(seen)
        return seen, [i for i in job_ids if i not in allowed]

    @routes.post("/v1/jobs/<job_id>/cancel")
    def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
        if not visible([job_id])[0]:
            raise NotFound(f"no job with id {job_id!r}")
        outcome = canceller.cancel([job_id], requested_by=requested_by())
        if outcome.not_found:
            raise NotFound(f"no job with id {job_id!r}")
        if job_id in outcome.already_final:
            status = outcome.already_final[job_id]
            raise AlreadyFinal(
                f"job {job_id} is already final ({status}): a cancel changes nothing"
            )
        job = store.get_job(client, job_id)
        if job is None:  # removed (retention) between the two reads
            raise NotFound(f"no job with id {job_id!r}")
        return answers.job_record(job), 202

    @routes.post("/v1/jobs/cancel")
    def cancel_jobs() -> tuple[dict[str, Any], int]:
        body = parse_cancel(request_json(), max_jobs=config.max_jobs_per_request)
        job_ids = body.job_ids
        if body.run_id is not None:
            run = run_store.get_run(client, body.run_id)
            if run is None or not sees(run.org_id):
                raise NotFound(f"no run with id {body.run_id!r}")
            job_ids = run.job_ids
        assert job_ids is not None  # parse_cancel: exactly one of the two
        job_ids, hidden = visible(job_ids)
        outcome = canceller.cancel(job_ids, requested_by=requested_by())
        outcome.not_found.extend(hidden)
        answer: dict[str, Any] = {
            "requested": outcome.requested,
            "already_final": [
                {"job_id": job_id, "status": status}
                for job_id, status in outcome.already_final.items()
            ],
            "not_found": outcome.not_found,
        }
        if body.run_id is not None:
            answer = {"run_id": body.run_id, **answer}
        return answers.shown(answers.CancelAnswer, answer), 202 if outcome.requested else 200

    return routes
