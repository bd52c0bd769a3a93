"""Every route of the API, once: who may call it (auth), which rate-limit budget it counts
against (ratelimits) and its contract: the models its body, query and answer are validated
with, from which the OpenAPI document is generated (openapi). The three are read from
ENDPOINTS, so they cannot disagree; a route missing from it fails at start (openapi.install).

Keys are Flask endpoints (`<blueprint>.<function>` for a blueprint's routes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from pydantic import BaseModel

from qgjob_api import answers as a
from qgjob_api import validation as v


class Access(Enum):
    PUBLIC = "public"  # no token (probes)
    READ = "read"  # any valid token; org-scoped reads
    SUBMIT = "submit"  # submitter or admin; org-scoped writes
    ADMIN = "admin"  # admin only: every org, agents, dead letters, tokens


@dataclass(frozen=True)
class Endpoint:
    access: Access
    ok: int  # the status of a success
    answer: type[BaseModel] | None  # its body (None: not JSON, e.g. the docs page)
    tags: tuple[str, ...]
    json: type[BaseModel] | None = None  # the request body's model
    query: type[BaseModel] | None = None  # the query string's model
    # Creates or changes something: counts against the submit budget (else the read one).
    changes: bool = False
    # Takes an Idempotency-Key (qgjob_api.idempotency): a repeat is answered from the first.
    idempotent: bool = False
    legacy: bool = False  # the seed's contract, kept unchanged
    also_ok: int | None = None  # a second success status (a bulk cancel that changed nothing)


_JOBS, _RUNS, _ADMIN = ("jobs",), ("runs",), ("admin",)

ENDPOINTS: Final[dict[str, Endpoint]] = {
    "submit": Endpoint(
        Access.SUBMIT,
        201,
        a.SubmitAnswer,
        _JOBS,
        json=v.JobIn,
        changes=True,
        idempotent=True,
        legacy=True,
    ),
    "status": Endpoint(Access.READ, 200, a.JobRecord, _JOBS, legacy=True),
    "job_record": Endpoint(Access.READ, 200, a.JobRecord, _JOBS),
    "create_jobs": Endpoint(
        Access.SUBMIT, 201, a.JobsCreated, _JOBS, json=v.JobsBody, changes=True, idempotent=True
    ),
    "list_jobs": Endpoint(Access.READ, 200, a.JobPage, _JOBS, query=v.JobQuery),
    "runs.lookup_jobs": Endpoint(Access.READ, 200, a.ManyJobs, _JOBS, json=v.JobIds),
    "runs.create_run": Endpoint(
        Access.SUBMIT, 201, a.RunCreated, _RUNS, json=v.RunIn, changes=True, idempotent=True
    ),
    "runs.read_run": Endpoint(Access.READ, 200, a.RunView, _RUNS),
    "runs.list_runs": Endpoint(Access.READ, 200, a.RunPage, _RUNS, query=v.RunQuery),
    # the org check of a cancel: cancel_blueprint(sees=...)
    "cancel.cancel_job": Endpoint(Access.SUBMIT, 202, a.JobRecord, _JOBS, changes=True),
    "cancel.cancel_jobs": Endpoint(
        Access.SUBMIT, 202, a.CancelAnswer, _JOBS, json=v.CancelIn, changes=True, also_ok=200
    ),
    "list_agents": Endpoint(Access.ADMIN, 200, a.Agents, _ADMIN),
    "admin.list_dead_letters": Endpoint(
        Access.ADMIN, 200, a.DeadLetters, _ADMIN, query=v.DeadLetterQuery
    ),
    "admin.replay_dead_letters": Endpoint(
        Access.ADMIN, 200, a.Replayed, _ADMIN, json=v.ReplayBody, changes=True
    ),
    "tokens.create_token": Endpoint(
        Access.ADMIN, 201, a.TokenCreated, _ADMIN, json=v.TokenIn, changes=True
    ),
    "tokens.list_tokens": Endpoint(Access.ADMIN, 200, a.Tokens, _ADMIN, query=v.TokenQuery),
    "tokens.revoke_token": Endpoint(Access.ADMIN, 200, a.OneToken, _ADMIN, changes=True),
    "healthz": Endpoint(Access.PUBLIC, 200, a.Health, ("probes",)),
    "readyz": Endpoint(Access.PUBLIC, 200, a.Ready, ("probes",)),
    "contract.spec": Endpoint(Access.READ, 200, None, ("contract",)),
    "contract.docs": Endpoint(Access.READ, 200, None, ("contract",)),
}
