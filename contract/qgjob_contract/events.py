"""Event types, their payloads and the envelope that carries them.

Wire format: a JSON object
    {"event_id": str, "type": str, "version": int, "occurred_at": ISO-8601 UTC str,
     "payload": {...}}
published to `names.EXCHANGE` with routing key = `type`, content type application/json,
delivery mode persistent.

The payload TypedDicts are the one definition of each payload's fields: producers build them
and the scheduler validates incoming payloads against them (pydantic reads the `Annotated`
constraints below). Producers may add fields; consumers ignore the ones they do not know.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NotRequired

from annotated_types import Ge, MinLen, Predicate
from typing_extensions import TypedDict

from qgjob_contract.statuses import AgentState, JobStatus, is_final
from qgjob_contract.targets import Target


class EventType(StrEnum):
    # API -> scheduler: the jobs of one request were accepted and stored (status queued).
    # One event per request, so the scheduler sees a submitted suite whole and can batch it.
    JOBS_SUBMITTED = "jobs.submitted"
    # agent -> scheduler: a test began on an agent.
    JOB_STARTED = "job.started"
    # agent -> scheduler: a job reached a final outcome on an agent.
    JOB_FINISHED = "job.finished"
    # agent -> scheduler: an agent is done with a batch and free for the next.
    BATCH_FINISHED = "batch.finished"
    # agent -> scheduler: an agent is alive (periodic, and on every state change).
    AGENT_HEARTBEAT = "agent.heartbeat"
    # API -> scheduler: a cancel was asked for these jobs (one request, one or many jobs).
    JOBS_CANCEL_REQUESTED = "jobs.cancel_requested"


EVENT_VERSION = 1


def is_timestamp(text: str) -> bool:
    """True for an ISO-8601 date and time with a time zone (`utc_now` gives one)."""
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


Id = Annotated[str, MinLen(1)]  # a non-empty identifier
Timestamp = Annotated[str, Predicate(is_timestamp)]
Count = Annotated[int, Ge(0)]
FinalStatus = Annotated[JobStatus, Predicate(is_final)]


class JobSubmitted(TypedDict):
    job_id: Id
    org_id: str
    app_version_id: Id
    test_path: str
    priority: int
    target: Target
    created_at: Timestamp


class JobsSubmitted(TypedDict):
    jobs: Annotated[list[JobSubmitted], MinLen(1)]


class JobsCancelRequested(TypedDict):
    job_ids: Annotated[list[Id], MinLen(1)]
    requested_by: str  # a token id, or "anonymous" when auth is off
    requested_at: Timestamp


class JobStarted(TypedDict):
    job_id: Id
    batch_id: Id
    agent_id: Id
    started_at: Timestamp


class JobResult(TypedDict):
    """What an agent reports about one finished job; stored as the job's `result`."""

    outcome: FinalStatus  # passed | failed | error
    duration_s: float  # the test's own run time
    install_paid: bool  # True on the one job of a batch that paid the app install
    install_s: float  # seconds that install took (0 when not paid)
    log_tail: str
    driver: str  # "simulator" or "command"
    simulated: bool  # True when no real test ran
    reason: NotRequired[str]  # why an error happened (install_failed, driver_error, ...)


class JobFinished(TypedDict):
    job_id: Id
    batch_id: Id
    agent_id: Id
    finished_at: Timestamp
    result: JobResult


class AgentCounters(TypedDict):
    agent_id: Id
    # The agent process that sent the report (a uuid per start) and its place in the
    # process's reports (1, 2, ...): the scheduler applies an agent's reports in `seq` order
    # and ignores one it has already passed (duplicates, redeliveries, late arrivals).
    instance_id: Id
    seq: Annotated[int, Ge(1)]
    target: Target
    state: AgentState
    # The build installed on the device: (installed_org_id, installed_app_version).
    installed_app_version: str | None
    installed_org_id: str | None
    installs: Count  # app installs paid since the agent started
    jobs_run: Count  # jobs finished since the agent started


class JobReport(TypedDict):
    """What the agent reported of one job of a batch (its job.started and job.finished)."""

    started_at: Timestamp | None  # None: the job never started (its install failed)
    finished_at: Timestamp
    result: JobResult


class BatchFinished(AgentCounters):
    batch_id: Id
    # Every job of the batch the agent reported, by job id, as its job.started and
    # job.finished said. The batch's end applies them before it ends the other jobs as not
    # reported, so the outcome does not depend on the order in which those events arrive.
    reports: dict[str, JobReport]


class AgentHeartbeat(AgentCounters):
    current_batch_id: str | None  # the batch the agent is running now
    # The last batch the agent ended, finished or aborted. A scheduler that still holds the
    # agent bound to it learns here that the batch is over even if batch.finished was lost.
    last_batch_id: str | None
    sent_at: Timestamp


class EventDecodeError(ValueError):
    """The bytes are not a valid qgjob event envelope."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(text: str) -> datetime:
    """An ISO-8601 timestamp as an aware datetime (naive means UTC); ValueError if not one."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def timestamp_ms(text: str) -> int:
    """Whole milliseconds since the epoch of an ISO-8601 timestamp (naive means UTC).

    Integer arithmetic on the timedelta: no float in between.
    """
    return (parse_timestamp(text) - _EPOCH) // timedelta(milliseconds=1)


def format_timestamp(moment: datetime) -> str:
    """`moment` as every qgjob timestamp is written: ISO-8601 UTC with milliseconds.

    A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def utc_now() -> str:
    """Current time as ISO-8601 UTC with milliseconds, the format of every timestamp."""
    return format_timestamp(datetime.now(UTC))


@dataclass(frozen=True)
class Envelope:
    type: EventType
    payload: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = EVENT_VERSION
    occurred_at: str = field(default_factory=utc_now)

    @property
    def routing_key(self) -> str:
        return self.type.value

    def encode(self) -> bytes:
        return json.dumps(
            {
                "event_id": self.event_id,
                "type": self.type.value,
                "version": self.version,
                "occurred_at": self.occurred_at,
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()


def make_event(event_type: EventType, payload: Any) -> Envelope:
    """Wrap a payload (one of the TypedDicts above) in a new envelope."""
    return Envelope(type=event_type, payload=dict(payload))


def decode(body: bytes) -> Envelope:
    """Parse an envelope; raise EventDecodeError for anything that is not one."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventDecodeError("envelope is not a JSON object")
    try:
        event_type = EventType(raw["type"])
    except (KeyError, ValueError, TypeError) as exc:
        raise EventDecodeError(f"unknown or missing event type: {raw.get('type')!r}") from exc
    event_id, version = raw.get("event_id"), raw.get("version")
    occurred_at, payload = raw.get("occurred_at"), raw.get("payload")
    if not isinstance(event_id, str) or not event_id:
        raise EventDecodeError("missing event_id")
    if not isinstance(version, int) or version != EVENT_VERSION:
        raise EventDecodeError(f"unsupported version: {version!r}")
    if not isinstance(occurred_at, str):
        raise EventDecodeError("missing occurred_at")
    if not isinstance(payload, dict):
        raise EventDecodeError("payload is not a JSON object")
    return Envelope(
        type=event_type,
        payload=payload,
        event_id=event_id,
        version=version,
        occurred_at=occurred_at,
    )
