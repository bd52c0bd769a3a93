"""A fake qgjob /v1 API mounted as a requests transport adapter, a fake clock, and a runner.

The CLI's real client builds and sends every request; only the transport is replaced, so
URLs, query strings, bodies and error mapping are all exercised.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from click.testing import CliRunner, Result
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.response import HTTPResponse

from qgjob_cli.main import Deps, cli

# How a fake job's status moves, one step per GET, chosen by its test path the way the
# simulator's SIM_FAIL_PATTERN / SIM_ERROR_PATTERN do.
PROGRESS = {
    "fail": ["assigned", "running", "failed"],
    "infra": ["assigned", "running", "error"],
    "cancel": ["cancelled"],
    "slow": ["assigned", "running", "running", "running", "running", "running"],
}
DEFAULT_PROGRESS = ["assigned", "running", "passed"]
FINAL = {"passed", "failed", "error", "cancelled"}


@dataclass
class Answer:
    status: int
    body: Any  # JSON-encoded, unless bytes


class FakeApi(BaseAdapter):
    """An in-memory /v1 jobs API; `respond` or `fail` make every later request end so,
    `script` makes a few given requests end so."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[requests.PreparedRequest] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, list[str]] = {}
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self.error_from = 0  # index of the first request `error` applies to
        self.scripted: dict[int, Answer | BaseException] = {}  # by request index
        self.runs: dict[str, dict[str, Any]] = {}

    def respond(self, status: int, body: Any) -> None:
        self.answer = Answer(status, body)

    def fail(self, error: BaseException, *, from_request: int = 0) -> None:
        self.error, self.error_from = error, from_request

    def script(self, *outcomes: tuple[int, Any] | BaseException, from_request: int = 0) -> None:
        """Request `from_request` ends with the first outcome (an exception raised, or a
        `(status, body)` answer), the next with the second, ...; later ones as usual."""
        for index, outcome in enumerate(outcomes, start=from_request):
            self.scripted[index] = (
                outcome if isinstance(outcome, BaseException) else Answer(*outcome)
            )

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.requests.append(request)
        scripted = self.scripted.pop(len(self.requests) - 1, None)
        if isinstance(scripted, BaseException):
            raise scripted
        if self.error is not None and len(self.requests) > self.error_from:
            raise self.error
        answer = scripted or self.answer or self._route(request)
        data = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        raw = HTTPResponse(
            body=io.BytesIO(data),
            headers={"Content-Type": "application/json"},
            status=answer.status,
            preload_content=False,
        )
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass

    def bodies(self) -> list[Any]:
        return [json.loads(r.body or b"null") for r in self.requests if r.method == "POST"]

    def _route(self, request: requests.PreparedRequest) -> Answer:  # noqa: PLR0911
        path = urlsplit(request.url or "").path
        if request.method == "POST" and path == "/v1/runs":
            return Answer(201, self._create_run(json.loads(request.body or b"{}")))
        if request.method == "GET" and path == "/v1/runs":
            runs = [self._run_view(run_id, advance=False) for run_id in reversed(self.runs)]
            for run in runs:
                del run["jobs"]
            return Answer(200, {"runs": runs, "next_cursor": None})
        if request.method == "GET" and path.startswith("/v1/runs/"):
            run_id = path.removeprefix("/v1/runs/")
            if run_id not in self.runs:
                return Answer(404, {"error": "not_found", "message": f"no run {run_id}"})
            return Answer(200, self._run_view(run_id, advance=True))
        if request.method == "POST" and path == "/v1/jobs/lookup":
            ids = json.loads(request.body or b"{}")["job_ids"]
            missing = [job_id for job_id in ids if job_id not in self.jobs]
            if missing:
                return Answer(404, {"error": "not_found", "message": f"no job {missing[0]}"})
            return Answer(200, {"jobs": [self._advance(job_id) for job_id in ids]})
        if request.method == "POST" and path == "/v1/jobs":
            return Answer(201, {"jobs": [self._create(job) for job in json.loads(request.body)]})
        if request.method == "GET" and path == "/v1/jobs":
            query = dict(parse_qsl(urlsplit(request.url or "").query))
            jobs = [
                job
                for job in self.jobs.values()
                if all(job.get(k) == v for k, v in query.items() if k not in ("limit", "cursor"))
            ]
            return Answer(200, {"jobs": jobs, "next_cursor": None})
        if request.method == "GET" and path.startswith("/v1/jobs/"):
            job_id = path.removeprefix("/v1/jobs/")
            if job_id not in self.jobs:
                return Answer(404, {"error": "not_found", "message": f"no job {job_id}"})
            return Answer(200, self._advance(job_id))
        return Answer(404, {"error": "not_found", "message": "no such route"})

    def _create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = f"run-{len(self.runs) + 1}"
        jobs = [
            self._create(
                {
                    "org_id": body["org_id"],
                    "app_version_id": body["app_version_id"],
                    "test_path": test,
                    "priority": body.get("priority", 1),
                    "target": target,
                },
                run_id=run_id,
            )
            for test in body["tests"]
            for target in body.get("targets", ["emulator"])
        ]
        self.runs[run_id] = {
            **body,
            "run_id": run_id,
            "created_at": "2030-01-01T00:00:00.000+00:00",
            "job_ids": [job["job_id"] for job in jobs],
        }
        return {
            "run_id": run_id,
            "job_ids": self.runs[run_id]["job_ids"],
            "run": self._run_view(run_id, advance=False),
        }

    def _run_view(self, run_id: str, *, advance: bool) -> dict[str, Any]:
        """The run as GET /v1/runs/<id> answers it; `advance` moves its jobs one step."""
        run = self.runs[run_id]
        jobs = [
            self._advance(job_id) if advance else dict(self.jobs[job_id])
            for job_id in run["job_ids"]
        ]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        view = {key: value for key, value in run.items() if key != "job_ids"}
        return {
            **view,
            "total": len(jobs),
            "counts": counts,
            "finished": all(job["final"] for job in jobs),
            "jobs": jobs,
        }

    def _create(self, body: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = job = {
            **body,
            "job_id": job_id,
            "status": "queued",
            "final": False,
            "assigned_agent": None,
            "batch_id": None,
            "attempts": 0,
            "created_at": "2030-01-01T00:00:00.000+00:00",
            "assigned_at": None,
            "started_at": None,
            "finished_at": None,
            "result": None,
            "run_id": run_id,
            "history": [],
        }
        kind = next((k for k in PROGRESS if k in body["test_path"]), None)
        self.steps[job_id] = list(PROGRESS[kind] if kind else DEFAULT_PROGRESS)
        return dict(job)

    def _advance(self, job_id: str) -> dict[str, Any]:
        job, steps = self.jobs[job_id], self.steps[job_id]
        if steps:
            job["status"] = steps.pop(0)
            job["final"] = job["status"] in FINAL
            job["assigned_agent"] = f"{job['target']}-1"
            if job["final"]:
                job["result"] = {
                    "outcome": job["status"],
                    "duration_s": 0.5,
                    "install_paid": True,
                    "install_s": 3.0,
                    "log_tail": "line one\nline two",
                    "driver": "simulator",
                    "simulated": True,
                    **({"reason": "driver_error"} if job["status"] == "error" else {}),
                }
        return dict(job)


@dataclass
class FakeClock:
    now_s: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Run = Callable[..., Result]


@pytest.fixture
def qgjob(api: FakeApi, clock: FakeClock) -> Run:
    """Run `qgjob ARGS` against the fake API; `env` adds environment variables, `tty`
    makes stderr count as a terminal."""

    def run(*args: str, env: dict[str, str] | None = None, tty: bool = False) -> Result:
        session = requests.Session()
        session.mount("http://", api)
        session.mount("https://", api)
        deps = Deps(session=session, clock=clock.now, sleep=clock.sleep, isatty=lambda: tty)
        environment: dict[str, str | None] = {
            "QGJOB_API_URL": None,
            "QGJOB_TOKEN": None,
            "QGJOB_ORG_ID": None,
            **(env or {}),
        }
        return CliRunner().invoke(cli, list(args), obj=deps, env=environment, prog_name="qgjob")

    return run
