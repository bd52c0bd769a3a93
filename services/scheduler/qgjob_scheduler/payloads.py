"""Validation of the event payloads the scheduler consumes.

The shapes are the TypedDicts of `qgjob_contract.events`; these models check that a payload
has their required fields with usable types before anything is written to Redis. A payload
that fails is an `InvalidEvent` (dead-lettered). Unknown extra fields are ignored, so
producers may add fields. Timestamps must carry a time zone and are normalised to
`qgjob_contract.events.utc_now`'s format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from qgjob_contract.statuses import FINAL_STATUSES, AgentState, JobStatus
from qgjob_contract.targets import Target
from qgjob_scheduler.errors import InvalidEvent

Id = Annotated[str, StringConstraints(min_length=1)]


def iso(moment: datetime) -> str:
    """A timestamp in the format every qgjob record uses (UTC, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class JobSubmittedPayload(_Payload):
    job_id: Id
    org_id: str
    app_version_id: Id
    test_path: str
    priority: int
    target: Target
    created_at: AwareDatetime


class JobStartedPayload(_Payload):
    job_id: Id
    batch_id: Id
    agent_id: Id
    started_at: AwareDatetime


class JobResultPayload(_Payload):
    outcome: JobStatus
    duration_s: float
    install_paid: bool
    install_s: float
    log_tail: str
    driver: str
    simulated: bool
    reason: str | None = None

    def as_result(self) -> dict[str, Any]:
        """The result as stored on the job (`qgjob_contract.events.JobResult`)."""
        return self.model_dump(mode="json", exclude_none=True)


class JobFinishedPayload(_Payload):
    job_id: Id
    batch_id: Id
    agent_id: Id
    finished_at: AwareDatetime
    result: JobResultPayload

    @field_validator("result")
    @classmethod
    def _outcome_is_final(cls, result: JobResultPayload) -> JobResultPayload:
        if result.outcome not in FINAL_STATUSES:
            raise ValueError(f"outcome must be a final status, got {result.outcome.value!r}")
        return result


class AgentCountersPayload(_Payload):
    agent_id: Id
    target: Target
    state: AgentState
    installed_app_version: str | None
    installs: int = Field(ge=0)
    jobs_run: int = Field(ge=0)


class BatchFinishedPayload(AgentCountersPayload):
    batch_id: Id


class AgentHeartbeatPayload(AgentCountersPayload):
    current_batch_id: str | None
    sent_at: AwareDatetime


_P = TypeVar("_P", bound=_Payload)


def parse(model: type[_P], payload: dict[str, Any]) -> _P:
    """Validate a payload; raise InvalidEvent naming what is wrong."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {model.__name__}: {exc}") from exc
