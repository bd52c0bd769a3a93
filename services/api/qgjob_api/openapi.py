"""The API's contract as OpenAPI 3.1 (spectree), at GET /openapi.json, and a page at /docs.

The document is generated from the pydantic models the routes validate with
(qgjob_api.validation, qgjob_api.token_routes) and from response models built here: the job
and agent records are made from the contract's own dataclasses, so a field added there is in
the spec too. Nothing is a second hand-written schema.

Why spectree and not flask-openapi3: flask-openapi3 replaces the Flask app and its routes'
signatures, and validates requests itself with its own 422 body; spectree only decorates a
view, and with `skip_validation` it documents the models while the routes keep validating
as they did, so every error keeps our `{"error", "message"}` shape and the seed routes
(`POST /submit`, `GET /status/<id>`) answer exactly what they answered before.

Each route's documentation lives in OPERATIONS, by Flask endpoint; `install` wraps every
routed view once all routes exist (a route missing from OPERATIONS fails at start, so none is
left out of the spec). The seed routes are tagged `legacy` and marked deprecated.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from typing import Annotated, Any, Final

from flask import Blueprint, Flask, Response, current_app
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from spectree import Response as Responses
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from qgjob_api import guards
from qgjob_api.cancel import CancelIn
from qgjob_api.token_routes import TokenIn, TokenQuery
from qgjob_api.validation import JobIds, JobIn, JobQuery, RunIn, RunQuery
from qgjob_contract.records import Agent, Job

TITLE: Final = "qgjob API"
SPEC_PATH: Final = "/openapi.json"
DOCS_PATH: Final = "/docs"
LEGACY: Final = "legacy"


class ErrorBody(BaseModel):
    """Every error answer: a code, one line of message, and for a validation error the
    field that is wrong."""

    error: str
    message: str
    field: str | None = None


def _from_dataclass(cls: type, name: str, **more: Any) -> type[BaseModel]:
    """A response model with every field of a contract dataclass (as `asdict` shows it)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {f.name: (hints[f.name], ...) for f in dataclasses.fields(cls)}
    model: type[BaseModel] = create_model(
        name, __config__=ConfigDict(extra="allow"), **fields, **more
    )
    return model


JobRecord = _from_dataclass(Job, "JobRecord", final=(bool, ...))
AgentRecord = _from_dataclass(Agent, "AgentRecord", alive=(bool, ...))


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SubmitAnswer(BaseModel):
    """The seed's answer to POST /submit, unchanged."""

    message: str
    job_id: str
    assigned_agent: str | None
    warning: str | None = Field(
        None, description="set when no live agent serves a target of the job (the job waits)"
    )


class OneJob(_Open):
    job: JobRecord  # type: ignore[valid-type]


class ManyJobs(_Open):
    jobs: list[JobRecord]  # type: ignore[valid-type]


class JobsCreated(RootModel[OneJob | ManyJobs]):
    """One job object sent: `{"job"}`; a list (or `{"jobs"}`) sent: `{"jobs"}`."""


class JobBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[JobIn]


class JobsBody(RootModel[JobIn | list[JobIn] | JobBatch]):
    """POST /v1/jobs: one job, a list of jobs, or `{"jobs": [...]}` (all or nothing)."""


class JobPage(_Open):
    jobs: list[JobRecord]  # type: ignore[valid-type]
    next_cursor: str | None


class CompactJob(_Open):
    job_id: str
    status: str
    final: bool


class RunView(_Open):
    run_id: str
    org_id: str
    total: int
    finished: bool
    counts: dict[str, int]
    jobs: list[CompactJob] = []


class RunCreated(_Open):
    run_id: str
    job_ids: list[str]
    run: RunView


class RunSummary(_Open):
    run_id: str
    org_id: str
    total: int
    finished: bool


class RunPage(_Open):
    runs: list[RunSummary]
    next_cursor: str | None


class Agents(_Open):
    agents: list[AgentRecord]  # type: ignore[valid-type]


class DeadLetterQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class DeadLetters(_Open):
    total: int
    dead_letters: list[dict[str, Any]]


class ReplayIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_ids: Annotated[list[str], Field(min_length=1, max_length=1000)]


class ReplayAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: typing.Literal[True]


class ReplayBody(RootModel[ReplayIds | ReplayAll]):
    """The dead letters to replay: chosen ones, or every one."""


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


class TokenCreated(TokenView):
    token: str = Field(description="the token itself: shown in this answer only")


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
    status: str


class Ready(_Open):
    status: str
    checks: dict[str, str]


class NotReady(ErrorBody):
    """503 from /readyz: the error, and which of Redis and RabbitMQ failed."""

    checks: dict[str, str]


# Error answers any operation may give (a 400 only where there is input to refuse).
_ERRORS: Final = {
    f"HTTP_{code}": ErrorBody for code in (401, 403, 404, 405, 409, 413, 415, 422, 429, 431, 503)
}

# Listings whose query strings treat an empty value as absent (`?status=`): their query
# parameters say `allowEmptyValue`, so a client (and the fuzzer) knows "" is accepted.
EMPTY_IS_ABSENT: Final = frozenset({"list_jobs", "runs.list_runs"})


def _op(
    ok: int,
    model: type[BaseModel] | None,
    *,
    tags: tuple[str, ...],
    json: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    legacy: bool = False,
    public: bool = False,
    also_ok: int | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {f"HTTP_{ok}": model, **_ERRORS, "HTTP_400": ErrorBody}
    if also_ok is not None:
        responses[f"HTTP_{also_ok}"] = model
    if public:
        responses = {f"HTTP_{ok}": model, "HTTP_503": NotReady if model is Ready else ErrorBody}
    return {
        "json": json,
        "query": query,
        "resp": Responses(**responses),
        "tags": (LEGACY, *tags) if legacy else tags,
        "deprecated": legacy,
        "security": {} if public else None,
    }


OPERATIONS: Final[dict[str, dict[str, Any]]] = {
    "submit": _op(201, SubmitAnswer, tags=("jobs",), json=JobIn, legacy=True),
    "status": _op(200, JobRecord, tags=("jobs",), legacy=True),
    "job_record": _op(200, JobRecord, tags=("jobs",)),
    "create_jobs": _op(201, JobsCreated, tags=("jobs",), json=JobsBody),
    "list_jobs": _op(200, JobPage, tags=("jobs",), query=JobQuery),
    "runs.lookup_jobs": _op(200, ManyJobs, tags=("jobs",), json=JobIds),
    "runs.create_run": _op(201, RunCreated, tags=("runs",), json=RunIn),
    "runs.read_run": _op(200, RunView, tags=("runs",)),
    "runs.list_runs": _op(200, RunPage, tags=("runs",), query=RunQuery),
    "cancel.cancel_job": _op(202, JobRecord, tags=("jobs",)),
    "cancel.cancel_jobs": _op(202, CancelAnswer, tags=("jobs",), json=CancelIn, also_ok=200),
    "list_agents": _op(200, Agents, tags=("admin",)),
    "admin.list_dead_letters": _op(200, DeadLetters, tags=("admin",), query=DeadLetterQuery),
    "admin.replay_dead_letters": _op(200, Replayed, tags=("admin",), json=ReplayBody),
    "tokens.create_token": _op(201, TokenCreated, tags=("admin",), json=TokenIn),
    "tokens.list_tokens": _op(200, Tokens, tags=("admin",), query=TokenQuery),
    "tokens.revoke_token": _op(200, OneToken, tags=("admin",)),
    "healthz": _op(200, Health, tags=("probes",), public=True),
    "readyz": _op(200, Ready, tags=("probes",), public=True),
    "contract.spec": _op(200, None, tags=("contract",)),
    "contract.docs": _op(200, None, tags=("contract",)),
}


def make_spec() -> SpecTree:
    return SpecTree(
        "flask",
        title=TITLE,
        version="1",
        description=(
            "qgjob's HTTP API. Every error body is JSON {error, message[, field]}. With "
            "QGJOB_AUTH=tokens every route but /healthz and /readyz needs "
            "'Authorization: Bearer <token>'. The `legacy` routes are the seed's contract, "
            "kept unchanged."
        ),
        validation_error_status=400,
        validation_error_model=ErrorBody,
        naming_strategy=lambda model: model.__name__,
        security_schemes=[
            SecurityScheme(
                name="bearer",
                data=SecuritySchemeData(
                    type=SecureType.HTTP, scheme="bearer", description="QGJOB_AUTH=tokens"
                ),
            )
        ],
        security={"bearer": []},
    )


def install(app: Flask) -> SpecTree:
    """Document every routed view and add the spec and docs routes. Call once every other
    route exists, before ratelimits.install."""
    tree = make_spec()
    # Not named "openapi...": spectree leaves endpoints of that name out of the document.
    routes = Blueprint("contract", __name__)

    document: dict[str, Any] = {}

    @routes.get(SPEC_PATH)
    def spec() -> Any:
        if not document:  # built once, on first use (every route exists by then)
            document.update(finish(tree.spec, app))
        return current_app.json.response(document)

    @routes.get(DOCS_PATH)
    def docs() -> Response:
        page = tree.config.page_templates["redoc"].format(
            spec_url=SPEC_PATH,
            spec_path=DOCS_PATH.strip("/"),
            **tree.config.swagger_oauth2_config(),
        )
        return Response(page, mimetype="text/html")

    app.register_blueprint(routes)
    missing = sorted(set(app.view_functions) - set(OPERATIONS))
    if missing:
        raise RuntimeError(f"routes without an OpenAPI operation: {', '.join(missing)}")
    for endpoint, view in list(app.view_functions.items()):
        documented = tree.validate(**OPERATIONS[endpoint], skip_validation=True)(view)
        app.view_functions[endpoint] = typing.cast("Any", documented)
    tree.app = app
    return tree


def _operation_keys(app: Flask) -> dict[str, list[tuple[str, str]]]:
    """Flask endpoint -> the (path as in the spec, method) pairs it serves."""
    found: dict[str, list[tuple[str, str]]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        found.setdefault(rule.endpoint, []).extend((path, m.lower()) for m in methods)
    return found


def finish(spec: dict[str, Any], app: Flask) -> dict[str, Any]:
    """What spectree cannot say from the models: path ids' patterns (guards.PATH_IDS, checked
    before any route runs) and the listings where an empty query value counts as absent."""
    document = copy.deepcopy(spec)
    keys = _operation_keys(app)
    for endpoint, pairs in keys.items():
        for path, method in pairs:
            operation = document["paths"].get(path, {}).get(method)
            if operation is None:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in guards.PATH_IDS:
                    pattern, max_length = guards.PATH_IDS[parameter["name"]]
                    parameter["schema"] = {
                        "type": "string",
                        "pattern": pattern,
                        "minLength": 1,
                        "maxLength": max_length,
                    }
                if parameter["in"] == "query" and endpoint in EMPTY_IS_ABSENT:
                    parameter["allowEmptyValue"] = True
    return document
