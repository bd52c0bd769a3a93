"""What every submit route (POST /submit, /v1/jobs, /v1/runs) does around its own work:
the Idempotency-Key (idempotency.py) and the warning when a target has no live agent
(liveness.py). The routes stay as they were; each hands its work to `Intake.respond`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from flask import request

from qgjob_api import answers, idempotency, liveness, run_record, run_store
from qgjob_api.config import Config
from qgjob_api.errors import NotFound

Answer = tuple[dict[str, Any], int]
Compact = Callable[[dict[str, Any]], dict[str, Any]]
Response = tuple[dict[str, Any], int, dict[str, str]]


class Intake:
    def __init__(self, client: redis.Redis, config: Config) -> None:
        self._client = client
        self._live_targets = liveness.LiveTargets(client, timeout_s=config.agent_timeout_s)
        self._keys = idempotency.Idempotency(client, retention_s=config.job_retention_s)
        # What a key keeps of each route's answer, and how a repeat rebuilds it: the job
        # records of /v1/jobs and /v1/runs are read again (a 1,000-job answer is not kept
        # for a day); the seed /submit answer is small and kept whole.
        self._replays: dict[str, tuple[Compact, Compact]] = {
            "jobs": (_ids_of_jobs, self._jobs_again),
            "runs": (_id_of_run, self._run_again),
        }

    def _jobs_again(self, kept: dict[str, Any]) -> dict[str, Any]:
        jobs = [job for job in run_store.get_jobs(self._client, kept["job_ids"]) if job]
        if len(jobs) != len(kept["job_ids"]):
            raise NotFound("the jobs this Idempotency-Key created are gone (retention)")
        records = answers.job_records(jobs)
        answer = {"jobs": records} if kept["batch"] else {"job": records[0]}
        return _with_warning(answer, kept)

    def _run_again(self, kept: dict[str, Any]) -> dict[str, Any]:
        run = run_store.get_run(self._client, kept["run_id"])
        if run is None:
            raise NotFound("the run this Idempotency-Key created is gone (retention)")
        jobs = run_store.run_jobs(self._client, run)
        body = run_record.view(run, jobs, now=datetime.now(UTC))
        return _with_warning({"run_id": run.run_id, "job_ids": run.job_ids, "run": body}, kept)

    def respond(
        self,
        route: str,
        body: Any,
        *,
        orgs: Iterable[str],
        targets: Iterable[str],
        work: Callable[[], Answer],
    ) -> Response:
        """`work()`'s answer, with a `warning` when a target has no live agent; once per
        Idempotency-Key (a repeat gets the first answer, header Idempotent-Replayed)."""
        wanted = [str(target) for target in targets]  # Target is a StrEnum

        def warned_work() -> Answer:
            # Read before the work: an outage here is a 503 with nothing accepted.
            live = self._live_targets()
            answer, status = work()
            warning = liveness.no_agent_warning(wanted, live)
            return ({**answer, "warning": warning} if warning else answer), status

        key = request.headers.get(idempotency.HEADER)
        if key is None:
            answer, status = warned_work()
            return answer, status, {}
        compact, replay = self._replays.get(route, (dict, dict))
        answer, status, replayed = self._keys.run(
            key=idempotency.check_key(key),
            scope=idempotency.org_scope(orgs),
            route=route,
            body=body,
            work=warned_work,
            compact=compact,
            replay=replay,
        )
        return answer, status, {idempotency.REPLAYED_HEADER: "true"} if replayed else {}


def _ids_of_jobs(answer: dict[str, Any]) -> dict[str, Any]:
    """What a key keeps of a /v1/jobs answer: the job ids, its shape and its warning."""
    batch = "jobs" in answer
    records = answer["jobs"] if batch else [answer["job"]]
    kept = {"job_ids": [record["job_id"] for record in records], "batch": batch}
    return _with_warning(kept, answer)


def _id_of_run(answer: dict[str, Any]) -> dict[str, Any]:
    return _with_warning({"run_id": answer["run_id"]}, answer)


def _with_warning(target: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return {**target, "warning": source["warning"]} if "warning" in source else target
