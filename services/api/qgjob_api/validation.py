"""Input validation: request bodies and query strings, turned into typed values or a
ValidationFailed naming the one field that is wrong (pure: no Flask, no Redis)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    RootModel,
    Strict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from qgjob_api import guards
from qgjob_api.errors import InvalidJson, ValidationFailed
from qgjob_api.store import Cursor
from qgjob_contract.roles import Role
from qgjob_contract.statuses import JobStatus
from qgjob_contract.targets import DEFAULT_TARGET, Target

MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 1, 10, 1
MAX_IDENTIFIER = guards.MAX_ID
MAX_TEST_PATH = 1024
DEFAULT_PAGE, MAX_PAGE = 50, 500
# Job control: reruns of a failed test, and the optional per-job limits (seconds).
MAX_RETRIES, DEFAULT_RETRIES = 5, 0
MAX_TIMEOUT_S = 24 * 3600  # a test may run at most a day
MAX_QUEUE_TTL_S = 7 * 24 * 3600  # and wait for an agent at most a week
# Each listed run costs one read per job (its counts), so run pages are smaller.
DEFAULT_RUN_PAGE, MAX_RUN_PAGE = 20, 100

_TEST_PATH_ERROR: Final = "test_path"
# Unicode categories refused in a test path: controls (NUL, newline, ...), format characters
# (bidi overrides that disguise a path, zero-width marks), line and paragraph separators.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _check_test_path(path: str) -> str:
    """A path relative to the test folder that cannot climb out of it."""
    if any(unicodedata.category(char) in _INVISIBLE for char in path):
        raise PydanticCustomError(
            _TEST_PATH_ERROR, "must not contain NUL, control, format or line-break characters"
        )
    if "\\" in path:
        raise PydanticCustomError(_TEST_PATH_ERROR, "must use '/' as separator, not '\\'")
    if path.startswith("/") or (len(path) >= 2 and path[1] == ":" and path[0].isalpha()):
        raise PydanticCustomError(_TEST_PATH_ERROR, "must be a relative path")
    if path.startswith("-"):
        # The command driver passes test_path as one argument; one that starts with '-'
        # would read as an option of the test runner.
        raise PydanticCustomError(_TEST_PATH_ERROR, "must not start with '-'")
    if ".." in path.split("/"):
        raise PydanticCustomError(_TEST_PATH_ERROR, "must not contain a '..' segment")
    if not path.strip():
        raise PydanticCustomError(_TEST_PATH_ERROR, "must not be blank")
    return path


# Every id a client sends (org, job, run): the rule of an id in a path too (guards.PATH_IDS).
Identifier = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=MAX_IDENTIFIER, pattern=guards.ID_PATTERN),
]
# An identifier that may also hold '+': semver build metadata such as `1.4.0+42`.
AppVersionId = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=MAX_IDENTIFIER, pattern=r"^[A-Za-z0-9._+-]+$"),
]
TestPath = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=MAX_TEST_PATH),
    AfterValidator(_check_test_path),
]
Priority = Annotated[int, Strict(), Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)]
Retries = Annotated[int, Strict(), Field(ge=0, le=MAX_RETRIES)]
# A JSON number of seconds (not a boolean, not text), above 0, at most the bound.
TimeoutS = Annotated[float, Strict(), Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)]
QueueTtlS = Annotated[float, Strict(), Field(gt=0, le=MAX_QUEUE_TTL_S, allow_inf_nan=False)]


class JobOptions(BaseModel):
    """What a job may ask of the platform (issue 7): reruns of a failed test, a run timeout
    and a queue-wait expiry; None leaves the agent's and the scheduler's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retries: Retries = DEFAULT_RETRIES
    timeout_s: TimeoutS | None = None
    queue_ttl_s: QueueTtlS | None = None


class JobIn(JobOptions):
    """One job as a client submits it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier
    app_version_id: AppVersionId
    test_path: TestPath
    priority: Priority = DEFAULT_PRIORITY
    target: Target = DEFAULT_TARGET


class JobQuery(BaseModel):
    """Filters and page of GET /v1/jobs (query string values, so numbers arrive as text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier | None = None
    app_version_id: AppVersionId | None = None
    status: JobStatus | None = None
    target: Target | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
    cursor: Annotated[Cursor, PlainValidator(Cursor.decode)] | None = None


class RunIn(JobOptions):
    """A suite submitted as one run: one job per (test, target), tests in the order given;
    the job options apply to every job of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier
    app_version_id: AppVersionId
    targets: Annotated[list[Target], Field(min_length=1)] = [DEFAULT_TARGET]
    tests: Annotated[list[TestPath], Field(min_length=1)]
    priority: Priority = DEFAULT_PRIORITY

    def jobs(self) -> list[JobIn]:
        return [
            JobIn(
                org_id=self.org_id,
                app_version_id=self.app_version_id,
                test_path=test,
                priority=self.priority,
                target=target,
                retries=self.retries,
                timeout_s=self.timeout_s,
                queue_ttl_s=self.queue_ttl_s,
            )
            for test in self.tests
            for target in self.targets
        ]


class RunQuery(BaseModel):
    """Filter and page of GET /v1/runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_RUN_PAGE)] = DEFAULT_RUN_PAGE
    cursor: Annotated[Cursor, PlainValidator(Cursor.decode)] | None = None


class JobIds(BaseModel):
    """The body of POST /v1/jobs/lookup: the jobs to read in one request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_ids: Annotated[
        list[Identifier],  # the same rule as a job id in a path (guards.PATH_IDS)
        Field(min_length=1),
    ]


class JobBatch(BaseModel):
    """`{"jobs": [...]}`: a batch of jobs (all or nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: list[JobIn]


JobList = list[JobIn]
_JOB_LIST: Final = TypeAdapter(JobList)
_M = TypeVar("_M", bound=BaseModel)


class JobsBody(RootModel[JobIn | JobList | JobBatch]):
    """POST /v1/jobs: one job, a list of jobs, or `{"jobs": [...]}` (all or nothing); at
    most API_MAX_JOBS_PER_REQUEST jobs. `parse_jobs` validates each form with its model."""


class CancelIn(BaseModel):
    """The body of POST /v1/jobs/cancel: job ids, or a run id (every unfinished job of it);
    exactly one of the two (qgjob_api.cancel.parse_cancel)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_ids: Annotated[list[Identifier], Field(min_length=1)] | None = None
    run_id: Identifier | None = None


MAX_DEAD_LETTERS = 1000
DEFAULT_DEAD_LETTERS = 100
EventId = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class DeadLetterQuery(BaseModel):
    """The query string of GET /v1/admin/dead-letters: how many, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: Annotated[int, Field(ge=1, le=MAX_DEAD_LETTERS)] = DEFAULT_DEAD_LETTERS


class ReplayIds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_ids: Annotated[list[EventId], Field(min_length=1, max_length=MAX_DEAD_LETTERS)]


class ReplayAll(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: Literal[True]


class ReplayBody(RootModel[ReplayIds | ReplayAll]):
    """The dead letters to replay: chosen ones (`event_ids`), or every one (`all`)."""


MAX_TOKEN_NAME = 128
# Longest life a token may be given (10 years); without expires_in_s it does not expire.
MAX_EXPIRES_IN_S = 10 * 365 * 24 * 3600


class TokenIn(BaseModel):
    """The body of POST /v1/admin/tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier
    role: Role
    name: Annotated[
        str, Strict(), StringConstraints(max_length=MAX_TOKEN_NAME, pattern=r"^[ -~]*$")
    ] = ""
    expires_in_s: Annotated[int, Strict(), Field(ge=1, le=MAX_EXPIRES_IN_S)] | None = None


class TokenQuery(BaseModel):
    """The query string of GET /v1/admin/tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    org_id: Identifier | None = None


def _limit_rule(most: int) -> str:
    return f"must be an integer from 1 to {most}"


_IDENTIFIER_RULE = (
    f"must be a string of 1 to {MAX_IDENTIFIER} characters: letters, digits, '.', '_' or '-'"
)
_APP_VERSION_RULE = (
    f"must be a string of 1 to {MAX_IDENTIFIER} characters: letters, digits, '.', '_', '+' or '-'"
)
# What a field must be, shown whatever pydantic found wrong with it.
_RULES: Final = {
    "org_id": _IDENTIFIER_RULE,
    "app_version_id": _APP_VERSION_RULE,
    "test_path": f"must be a string of 1 to {MAX_TEST_PATH} characters",
    "priority": (f"must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY} (higher runs first)"),
    "target": "must be one of: " + ", ".join(Target),
    "status": "must be one of: " + ", ".join(JobStatus),
    "limit": _limit_rule(MAX_PAGE),
    "targets": "must be a non-empty list of: " + ", ".join(Target),
    "tests": "must be a non-empty list of test paths",
    "job_ids": f"must be a non-empty list of job ids (1 to {MAX_IDENTIFIER} characters)",
    "cursor": "must be a next_cursor value returned by this API",
    "retries": f"must be an integer from 0 to {MAX_RETRIES} (reruns of a failed test)",
    "timeout_s": f"must be a number of seconds above 0, at most {MAX_TIMEOUT_S}",
    "queue_ttl_s": f"must be a number of seconds above 0, at most {MAX_QUEUE_TTL_S}",
    "event_ids": f"must be a list of 1-{MAX_DEAD_LETTERS} event ids",
    "all": "must be true",
}


def parse_json(data: bytes, *, is_json: bool) -> Any:
    """The request body as JSON; `is_json` says whether the Content-Type was JSON."""
    if not is_json:
        raise InvalidJson("send the body as JSON with Content-Type: application/json")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    guards.check_depth(value)
    return value


def parse_job(body: Any) -> JobIn:
    """The body of POST /submit: one job object."""
    try:
        return JobIn.model_validate(body)
    except ValidationError as exc:
        raise _failure(exc, prefix="") from None


def parse_jobs(body: Any, *, max_jobs: int) -> tuple[list[JobIn], bool]:
    """The body of POST /v1/jobs: a job object, a list of jobs, or `{"jobs": [...]}`.

    Returns the jobs and whether the body was a batch (a list) rather than one object.
    All or nothing: any invalid job fails the whole body.
    """
    batch = isinstance(body, dict) and "jobs" in body
    if batch:
        extra = sorted(set(body) - {"jobs"})
        if extra:
            raise ValidationFailed(extra[0], "is not a known field (a batch body has only 'jobs')")
        if not isinstance(body["jobs"], list):
            raise ValidationFailed("jobs", "must be a list of job objects")
    elif isinstance(body, dict):
        return [parse_job(body)], False
    elif not isinstance(body, list):
        raise ValidationFailed("body", 'must be a job object, a list of jobs, or {"jobs": [...]}')
    jobs = body["jobs"] if batch else body
    if not jobs:
        raise ValidationFailed("jobs", "must contain at least one job")
    if len(jobs) > max_jobs:
        raise ValidationFailed("jobs", f"at most {max_jobs} jobs per request, got {len(jobs)}")
    try:
        if batch:
            return list(JobBatch.model_validate(body).jobs), True
        return _JOB_LIST.validate_python(jobs), True
    except ValidationError as exc:
        raise _failure(exc, prefix="" if batch else "jobs") from None


def parse_job_query(args: Mapping[str, str]) -> JobQuery:
    """The query string of GET /v1/jobs; an empty value counts as absent."""
    return parse_query(JobQuery, {name: value for name, value in args.items() if value})


def parse_query(
    model: type[_M], args: Mapping[str, str], *, rules: Mapping[str, str] | None = None
) -> _M:
    """A query string as `model` (its values arrive as text); `rules` says what a field
    must be where _RULES' general wording does not fit."""
    try:
        return model.model_validate(dict(args.items()))
    except ValidationError as exc:
        raise _failure(exc, prefix="", rules=rules) from None


def parse_body(model: type[_M], body: Any) -> _M:
    """A JSON body as `model`."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _failure(exc, prefix="") from None


def parse_run(body: Any, *, max_jobs: int) -> RunIn:
    """The body of POST /v1/runs. Duplicates are refused (a (test, target) pair names one
    job of the run); so is a matrix of more than `max_jobs` jobs."""
    if not isinstance(body, dict):
        raise ValidationFailed("body", "must be a JSON object")
    try:
        run = RunIn.model_validate(body)
    except ValidationError as exc:
        raise _failure(exc, prefix="") from None
    for name, values in (("targets", run.targets), ("tests", run.tests)):
        seen: dict[str, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                raise ValidationFailed(f"{name}[{index}]", f"repeats {name}[{seen[value]}]")
            seen[value] = index
    total = len(run.tests) * len(run.targets)
    if total > max_jobs:
        raise ValidationFailed(
            "tests",
            f"at most {max_jobs} jobs per run, got {len(run.tests)} tests x "
            f"{len(run.targets)} targets = {total}",
        )
    return run


def parse_run_query(args: Mapping[str, str]) -> RunQuery:
    """The query string of GET /v1/runs; an empty value counts as absent."""
    present = {name: value for name, value in args.items() if value}
    return parse_query(RunQuery, present, rules={"limit": _limit_rule(MAX_RUN_PAGE)})


def parse_job_ids(body: Any, *, max_jobs: int) -> list[str]:
    """The body of POST /v1/jobs/lookup: `{"job_ids": [...]}`, at most `max_jobs`, no repeat."""
    try:
        ids = JobIds.model_validate(body).job_ids
    except ValidationError as exc:
        raise _failure(exc, prefix="") from None
    if len(ids) > max_jobs:
        raise ValidationFailed("job_ids", f"at most {max_jobs} ids per request, got {len(ids)}")
    return list(dict.fromkeys(ids))


def _failure(
    exc: ValidationError, *, prefix: str, rules: Mapping[str, str] | None = None
) -> ValidationFailed:
    """The first error, with the field's path (`jobs[3].priority`) and what it must be."""
    error = exc.errors(include_url=False)[0]
    return ValidationFailed(
        _path(prefix, error["loc"]), _problem(error, {**_RULES, **(rules or {})})
    )


# For the routes of other modules that validate with their own models.
failure = _failure


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or "body"


def _problem(error: ErrorDetails, rules: Mapping[str, str]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a JSON object"
    if kind == _TEST_PATH_ERROR:
        return error["msg"]
    names = [part for part in error["loc"] if isinstance(part, str)]
    return rules.get(names[-1], error["msg"]) if names else error["msg"]
