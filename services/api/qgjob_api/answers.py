"""What the routes answer, as pydantic models: each route builds its answer through one of
these (`shown`), and the OpenAPI document (qgjob_api.openapi) is generated from the same
models, so an answer cannot say what the spec does not (issue 9, point 5).

The job, agent, run and dead-letter models are made from the contract's own dataclasses
(`_from_dataclass`): a field added to a record is in the answers and in the spec at once.
`shown(model, data)` validates `data` and serialises what was given, in the order given
(`exclude_unset`): the seed routes answer byte for byte what they answered before. A
record's `result` and `history` are the agent's and the scheduler's: documented by the
contract's types, passed through unchanged (SkipValidation), since the API does not own them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, SkipValidation, create_model

from qgjob_api.run_record import Run
from qgjob_contract.deadletters import DeadLetter
from qgjob_contract.records import Agent, Job
from qgjob_contract.statuses import is_final


def shown(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as `model` validates and serialises it: the answer the spec documents."""
    answer: dict[str, Any] = model.model_validate(data).model_dump(
        exclude_unset=True, warnings=False
    )
    return answer


class _Open(BaseModel):
    """An answer that may gain fields (clients must ignore the ones they do not know)."""

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error answer: a code, one line of message, and for a validation error the
    field that is wrong."""

    error: str
    message: str
    field: str | None = None


_PASSED_THROUGH = frozenset({"result", "history"})


def _from_dataclass(
    cls: type, name: str, *, skip: frozenset[str] = frozenset(), **more: Any
) -> type[_Open]:
    """A model with every field of a contract dataclass (as `asdict` shows it), in order."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind: Any = hints[f.name]
        passed = f.name in _PASSED_THROUGH
        skipped = Annotated[kind, SkipValidation()]
        fields[f.name] = (skipped if passed else kind, ...)
    model: type[_Open] = create_model(name, __base__=_Open, __doc__=cls.__doc__, **fields, **more)
    return model


JobRecord = _from_dataclass(Job, "JobRecord", final=(bool, ...))
AgentRecord = _from_dataclass(Agent, "AgentRecord", alive=(bool, ...))
DeadLetterView = _from_dataclass(
    DeadLetter,
    "DeadLetterView",
    skip=frozenset({"body_b64"}),
    body=(Any, Field(description="the message body: its JSON, else its text")),
)
RunSummary = _from_dataclass(
    Run,
    "RunSummary",
    skip=frozenset({"job_ids"}),
    total=(int, ...),
    counts=(dict[str, int], ...),
    finished=(bool, ...),
)


def job_record(job: Job) -> dict[str, Any]:
    """A job as every route shows it: every field of the record, plus `final`."""
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    return shown(JobRecord, {**fields, "final": is_final(job.status)})


def job_records(jobs: typing.Iterable[Job]) -> list[dict[str, Any]]:
    return [job_record(job) for job in jobs]


class SubmitAnswer(BaseModel):
    """The seed's answer to POST /submit, unchanged."""

    message: str
    job_id: str
    assigned_agent: str | None
    warning: str | None = Field(
        None, description="set when no live agent serves a target of the job (the job waits)"
    )


_WARNING = (
    str | None,
    Field(None, description="set when no live agent serves a target (the jobs wait)"),
)


class OneJob(_Open):
    job: JobRecord  # type: ignore[valid-type]
    warning: str | None = _WARNING[1]


class ManyJobs(_Open):
    jobs: list[JobRecord]  # type: ignore[valid-type]
    warning: str | None = _WARNING[1]


class JobsCreated(RootModel[OneJob | ManyJobs]):
    """One job object sent: `{"job"}`; a list (or `{"jobs"}`) sent: `{"jobs"}`."""


class JobPage(_Open):
    jobs: list[JobRecord]  # type: ignore[valid-type]
    next_cursor: str | None


class CompactJob(_Open):
    """A job as a run lists it (qgjob_api.run_record.compact_job)."""

    job_id: str
    test_path: str
    target: str
    status: str
    final: bool
    assigned_agent: str | None
    attempts: int
    started_at: str | None
    finished_at: str | None
    result: SkipValidation[dict[str, Any] | None]
    history: SkipValidation[list[dict[str, Any]]]


class Timings(_Open):
    created_at: str
    first_started_at: str | None
    last_finished_at: str | None
    elapsed_s: float


class RunView(RunSummary):  # type: ignore[valid-type,misc]
    timings: Timings
    jobs: list[CompactJob]


class RunCreated(_Open):
    run_id: str
    job_ids: list[str]
    run: RunView
    warning: str | None = _WARNING[1]


class RunPage(_Open):
    runs: list[RunSummary]  # type: ignore[valid-type]
    next_cursor: str | None


class Agents(_Open):
    agents: list[AgentRecord]  # type: ignore[valid-type]


class DeadLetters(_Open):
    total: int
    dead_letters: list[DeadLetterView]  # type: ignore[valid-type]


class Replayed(_Open):
    replayed: list[str]
    missing: list[str]
    unreplayable: list[str]


class TokenView(_Open):
    token_id: str
    org_id: str
    role: str
    name: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None


# The new token first, then its record (TokenView's fields).
_token_fields: dict[str, Any] = {
    name: (f.annotation, f) for name, f in TokenView.model_fields.items()
}
TokenCreated = create_model(
    "TokenCreated",
    __base__=_Open,
    token=(str, Field(description="the token itself: shown in this answer only")),
    **_token_fields,
)


class Tokens(_Open):
    tokens: list[TokenView]


class OneToken(_Open):
    token: TokenView


class AlreadyFinalJob(_Open):
    job_id: str
    status: str


class CancelAnswer(_Open):
    """What a bulk cancel did, job by job (and the run's id when a run was named)."""

    run_id: str | None = None
    requested: list[str]
    already_final: list[AlreadyFinalJob]
    not_found: list[str]


class Health(_Open):
    status: Literal["ok"]


class Ready(_Open):
    status: Literal["ready"]
    checks: dict[str, str]


class NotReady(ErrorBody):
    """503 from /readyz: the error, and which of Redis and RabbitMQ failed."""

    checks: dict[str, str]
