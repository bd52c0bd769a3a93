"""Routes for runs (a suite submitted as one) and for reading many jobs in one request.

Both exist so that a waiting client sends ONE request per poll whatever the suite's size:
`GET /v1/runs/<id>` answers every job of the run (pipelined reads), and
`POST /v1/jobs/lookup` answers the jobs a client names (`qgjob submit --wait`, `qgjob wait`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, request

from qgjob_api import answers, auth, run_record, run_store
from qgjob_api.bodies import request_json
from qgjob_api.config import Config
from qgjob_api.errors import NotFound
from qgjob_api.intake import Intake
from qgjob_api.submit import Publisher, submit_run
from qgjob_api.validation import parse_job_ids, parse_run, parse_run_query


def runs_blueprint(
    client: redis.Redis, publisher: Callable[[], Publisher], config: Config
) -> Blueprint:
    """The routes, bound to the app's Redis client and its per-thread publishers."""
    routes = Blueprint("runs", __name__)

    intake = Intake(client, config)

    @routes.post("/v1/runs")
    def create_run() -> tuple[dict[str, Any], int, dict[str, str]]:
        run_in = parse_run(raw := request_json(), max_jobs=config.max_jobs_per_request)
        auth.current().check_submit(run_in.org_id)

        def work() -> tuple[dict[str, Any], int]:
            run, jobs = submit_run(
                client, publisher(), run_in, submitted_by=auth.current().token_id
            )
            body = run_record.view(run, jobs, now=datetime.now(UTC))
            answer = {"run_id": run.run_id, "job_ids": run.job_ids, "run": body}
            return answers.shown(answers.RunCreated, answer), 201

        return intake.respond("runs", raw, orgs=[run_in.org_id], targets=run_in.targets, work=work)

    @routes.get("/v1/runs/<run_id>")
    def read_run(run_id: str) -> dict[str, Any]:
        run = run_store.get_run(client, run_id)
        if run is None or not auth.current().sees(run.org_id):
            raise NotFound(f"no run with id {run_id!r}")
        jobs = run_store.run_jobs(client, run)
        return answers.shown(answers.RunView, run_record.view(run, jobs, now=datetime.now(UTC)))

    @routes.get("/v1/runs")
    def list_runs() -> dict[str, Any]:
        query = parse_run_query(request.args)
        org_id, none = auth.current().listing_org(query.org_id)
        if none:
            return {"runs": [], "next_cursor": None}
        runs, next_cursor = run_store.list_runs(
            client, org_id=org_id, limit=query.limit, cursor=query.cursor
        )
        statuses = run_store.statuses(client, runs)
        page = {
            "runs": [
                run_record.summary(run, found) for run, found in zip(runs, statuses, strict=True)
            ],
            "next_cursor": None if next_cursor is None else next_cursor.encode(),
        }
        return answers.shown(answers.RunPage, page)

    @routes.post("/v1/jobs/lookup")
    def lookup_jobs() -> dict[str, Any]:
        job_ids = parse_job_ids(request_json(), max_jobs=config.max_jobs_per_request)
        caller = auth.current()
        jobs = [
            job if job is not None and caller.sees(job.org_id) else None
            for job in run_store.get_jobs(client, job_ids)
        ]
        missing = [job_id for job_id, job in zip(job_ids, jobs, strict=True) if job is None]
        if missing:
            raise NotFound(f"no job with id {missing[0]!r} ({len(missing)} unknown)")
        return {"jobs": answers.job_records(job for job in jobs if job is not None)}

    return routes
