"""A run: a suite submitted as one request (POST /v1/runs), and how the API shows it.

The run record holds the request (org, app version, targets, tests, priority) and the ids of
its jobs, in submission order; the jobs' own records stay the one source of their status.
A run's counts, timings and `finished` are computed from those records when it is read,
so there is nothing to keep in step when a job changes. Pure: no Flask, no Redis.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from qgjob_api.redis_text import text
from qgjob_contract.events import parse_timestamp
from qgjob_contract.records import Job
from qgjob_contract.statuses import JobStatus, is_final

# Fields of a job's `result` kept in a run's compact job list. The log tail is kept only for
# jobs that did not pass: it is what a person (or a JUnit report) needs, and it is the bulk.
_RESULT_FIELDS = ("outcome", "duration_s", "install_paid", "install_s", "reason", "driver")


@dataclass(frozen=True)
class Run:
    run_id: str
    org_id: str
    app_version_id: str
    targets: list[str]
    tests: list[str]
    priority: int
    created_at: str
    job_ids: list[str]
    # The job options every job of the run was given (validation.JobOptions).
    retries: int = 0
    timeout_s: float | None = None
    queue_ttl_s: float | None = None

    def to_redis(self) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "org_id": self.org_id,
            "app_version_id": self.app_version_id,
            "targets": json.dumps(self.targets),
            "tests": json.dumps(self.tests),
            "priority": str(self.priority),
            "created_at": self.created_at,
            "job_ids": json.dumps(self.job_ids),
            "retries": str(self.retries),
            "timeout_s": _num(self.timeout_s),
            "queue_ttl_s": _num(self.queue_ttl_s),
        }

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> Run:
        f = {text(k): text(v) for k, v in raw.items()}
        return cls(
            run_id=f["run_id"],
            org_id=f["org_id"],
            app_version_id=f["app_version_id"],
            targets=json.loads(f["targets"]),
            tests=json.loads(f["tests"]),
            priority=int(f["priority"]),
            created_at=f["created_at"],
            job_ids=json.loads(f["job_ids"]),
            retries=int(f.get("retries") or 0),
            timeout_s=float(f["timeout_s"]) if f.get("timeout_s") else None,
            queue_ttl_s=float(f["queue_ttl_s"]) if f.get("queue_ttl_s") else None,
        )


def compact_job(job: Job) -> dict[str, Any]:
    """A job as a run lists it: what a progress line, a failure line or a JUnit case needs."""
    result: dict[str, Any] | None = None
    if job.result is not None:
        raw: dict[str, Any] = dict(job.result)
        result = {name: raw[name] for name in _RESULT_FIELDS if name in raw}
        if job.status != JobStatus.PASSED and raw.get("log_tail"):
            result["log_tail"] = raw["log_tail"]
    return {
        "job_id": job.job_id,
        "test_path": job.test_path,
        "target": job.target,
        "status": job.status,
        "final": is_final(job.status),
        "assigned_agent": job.assigned_agent,
        "attempts": job.attempts,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "result": result,
        "history": job.history,
    }


def counts(statuses: list[str]) -> dict[str, int]:
    """Jobs per status: every known status (0 included), then any other the records hold."""
    found = Counter(statuses)
    return {**{status.value: found.pop(status.value, 0) for status in JobStatus}, **found}


def summary(run: Run, statuses: list[str]) -> dict[str, Any]:
    """The run without its jobs (listing): its request, counts and whether it is finished."""
    return {
        **{key: value for key, value in asdict(run).items() if key != "job_ids"},
        "total": len(run.job_ids),
        "counts": counts(statuses),
        "finished": bool(statuses) and all(is_final(status) for status in statuses),
    }


def view(run: Run, jobs: list[Job], *, now: datetime) -> dict[str, Any]:
    """GET /v1/runs/<id>: the summary, the timings and every job (compact), in run order.

    `elapsed_s` runs from the run's creation to its last job's end once finished, and to
    `now` (the API's clock) before that.
    """
    body = summary(run, [job.status for job in jobs])
    started = [job.started_at for job in jobs if job.started_at]
    ended = [job.finished_at for job in jobs if job.finished_at]
    last_finished = max(ended, key=parse_timestamp) if ended else None
    until = parse_timestamp(last_finished) if body["finished"] and last_finished else now
    elapsed = max(until - parse_timestamp(run.created_at), timedelta(0))
    body["timings"] = {
        "created_at": run.created_at,
        "first_started_at": min(started, key=parse_timestamp) if started else None,
        "last_finished_at": last_finished,
        "elapsed_s": round(elapsed.total_seconds(), 3),
    }
    body["jobs"] = [compact_job(job) for job in jobs]
    return body


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))
