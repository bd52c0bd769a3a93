"""Records kept in Redis and read by more than one process, with their codecs.

Redis hashes hold strings only: None is stored as "", numbers as decimal text, nested
values as JSON. `to_redis` / `from_redis` are the one place that mapping is written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from qgjob_contract.events import JobResult, JobSubmitted
from qgjob_contract.statuses import JobStatus, is_final
from qgjob_contract.targets import Target


def _s(value: str | None) -> str:
    return "" if value is None else value


def _opt(value: str | bytes | None) -> str | None:
    text = _text(value)
    return text or None


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _opt_int(value: str | None) -> int | None:
    return int(float(value)) if value else None


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


# The job field an agent reads to learn that the test it runs must stop (its cancel).
CANCEL_REQUESTED_AT: Final = "cancel_requested_at"


@dataclass
class Job:
    job_id: str
    org_id: str
    app_version_id: str
    test_path: str
    priority: int
    target: str
    created_at: str
    status: str = JobStatus.QUEUED.value
    assigned_agent: str | None = None
    batch_id: str | None = None
    attempts: int = 0
    assigned_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    result: JobResult | None = None
    # The run (a suite submitted as one) this job belongs to, if any.
    run_id: str | None = None
    # Every attempt that ended, the final one included (oldest first, capped): each
    # {attempt, agent_id, batch_id, instance_id, assigned_at, started_at, finished_at,
    # outcome, reason, retried}; `retried` says the job went back to its group after it.
    history: list[dict[str, Any]] = field(default_factory=list)
    # Job control (what the submitter asked for): reruns of a test that failed (0-5), a
    # per-test run timeout and a queue-wait expiry in seconds (None: the agent's and the
    # scheduler's defaults).
    retries: int = 0
    timeout_s: float | None = None
    queue_ttl_s: float | None = None
    # True when the test failed and then passed on the same build (a flaky test).
    flaky: bool = False
    # A cancel asked for this job: when and by whom (a token id, or "anonymous").
    cancel_requested_at: str | None = None
    cancel_requested_by: str | None = None
    # Who submitted it (a token id, never the secret; None when auth is off).
    submitted_by: str | None = None
    # A job retried after an infrastructure error waits for its backoff (Redis TIME, ms)
    # and avoids the agent it failed on until `avoid_until_ms` (the scheduler's retry).
    not_before_ms: int | None = None
    avoid_agent: str | None = None
    avoid_until_ms: int | None = None

    def to_redis(self) -> dict[str, str]:
        return {
            "job_id": self.job_id,
            "org_id": self.org_id,
            "app_version_id": self.app_version_id,
            "test_path": self.test_path,
            "priority": str(self.priority),
            "target": self.target,
            "created_at": self.created_at,
            "status": self.status,
            "assigned_agent": _s(self.assigned_agent),
            "batch_id": _s(self.batch_id),
            "attempts": str(self.attempts),
            "assigned_at": _s(self.assigned_at),
            "started_at": _s(self.started_at),
            "finished_at": _s(self.finished_at),
            "result": "" if self.result is None else json.dumps(self.result),
            "run_id": _s(self.run_id),
            "history": json.dumps(self.history) if self.history else "",
            "retries": str(self.retries),
            "timeout_s": _num(self.timeout_s),
            "queue_ttl_s": _num(self.queue_ttl_s),
            "flaky": "1" if self.flaky else "",
            "cancel_requested_at": _s(self.cancel_requested_at),
            "cancel_requested_by": _s(self.cancel_requested_by),
            "submitted_by": _s(self.submitted_by),
            "not_before_ms": _int(self.not_before_ms),
            "avoid_agent": _s(self.avoid_agent),
            "avoid_until_ms": _int(self.avoid_until_ms),
        }

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> Job:
        f = _fields(raw)
        return cls(
            job_id=f["job_id"],
            org_id=f["org_id"],
            app_version_id=f["app_version_id"],
            test_path=f["test_path"],
            priority=int(f["priority"]),
            target=f["target"],
            created_at=f["created_at"],
            status=f["status"],
            assigned_agent=_opt(f.get("assigned_agent")),
            batch_id=_opt(f.get("batch_id")),
            attempts=int(f.get("attempts") or 0),
            assigned_at=_opt(f.get("assigned_at")),
            started_at=_opt(f.get("started_at")),
            finished_at=_opt(f.get("finished_at")),
            result=json.loads(f["result"]) if f.get("result") else None,
            run_id=_opt(f.get("run_id")),
            history=json.loads(f["history"]) if f.get("history") else [],
            retries=int(f.get("retries") or 0),
            timeout_s=_float(f.get("timeout_s")),
            queue_ttl_s=_float(f.get("queue_ttl_s")),
            flaky=bool(f.get("flaky")),
            cancel_requested_at=_opt(f.get("cancel_requested_at")),
            cancel_requested_by=_opt(f.get("cancel_requested_by")),
            submitted_by=_opt(f.get("submitted_by")),
            not_before_ms=_opt_int(f.get("not_before_ms")),
            avoid_agent=_opt(f.get("avoid_agent")),
            avoid_until_ms=_opt_int(f.get("avoid_until_ms")),
        )

    def to_api(self) -> dict[str, Any]:
        """The job as the API shows it: every field, plus `final`."""
        body: dict[str, Any] = asdict(self)
        body["final"] = is_final(self.status)
        return body

    def submitted_payload(self) -> JobSubmitted:
        return JobSubmitted(
            job_id=self.job_id,
            org_id=self.org_id,
            app_version_id=self.app_version_id,
            test_path=self.test_path,
            priority=self.priority,
            target=Target(self.target),
            created_at=self.created_at,
        )


@dataclass
class Agent:
    """An agent as the scheduler knows it from heartbeats and batch events."""

    agent_id: str
    target: str
    state: str
    installed_app_version: str | None = None
    installed_org_id: str | None = None  # the org of the installed build
    installs: int = 0
    jobs_run: int = 0
    last_heartbeat: str | None = None
    # Batch the scheduler handed to this agent and has not seen finish; while set, the
    # agent is not free, whatever its heartbeats say.
    current_batch_id: str | None = None
    # The agent process (incarnation) and the sequence number of its last report applied:
    # a report of the same instance with a lower or equal `seq` is stale and changes nothing.
    instance_id: str | None = None
    seq: int = 0

    def to_redis(self) -> dict[str, str]:
        return {
            "agent_id": self.agent_id,
            "target": self.target,
            "state": self.state,
            "installed_app_version": _s(self.installed_app_version),
            "installed_org_id": _s(self.installed_org_id),
            "installs": str(self.installs),
            "jobs_run": str(self.jobs_run),
            "last_heartbeat": _s(self.last_heartbeat),
            "current_batch_id": _s(self.current_batch_id),
            "instance_id": _s(self.instance_id),
            "seq": str(self.seq),
        }

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> Agent:
        f = _fields(raw)
        return cls(
            agent_id=f["agent_id"],
            target=f["target"],
            state=f["state"],
            installed_app_version=_opt(f.get("installed_app_version")),
            installed_org_id=_opt(f.get("installed_org_id")),
            installs=int(f.get("installs") or 0),
            jobs_run=int(f.get("jobs_run") or 0),
            last_heartbeat=_opt(f.get("last_heartbeat")),
            current_batch_id=_opt(f.get("current_batch_id")),
            instance_id=_opt(f.get("instance_id")),
            seq=int(f.get("seq") or 0),
        )

    def to_api(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Lease:
    """An agent's lease: renewed by the agent process straight in Redis every heartbeat.

    `renewed_ms` is Redis TIME at the renewal (the agent's own clock plays no part), so
    liveness compares two readings of one clock. `instance_id` names the agent process that
    renewed it last: a restarted agent (same agent id) is a new instance.
    """

    agent_id: str
    instance_id: str
    renewed_ms: int
    started_ms: int  # Redis TIME when this instance first renewed

    @classmethod
    def from_redis(cls, agent_id: str, raw: dict[Any, Any]) -> Lease | None:
        f = _fields(raw)
        if not f.get("instance_id"):
            return None
        return cls(
            agent_id=agent_id,
            instance_id=f["instance_id"],
            renewed_ms=int(f.get("renewed_ms") or 0),
            started_ms=int(f.get("started_ms") or 0),
        )

    def is_fresh(self, now_ms: int, timeout_s: float) -> bool:
        """True while the last renewal is at most `timeout_s` old at Redis time `now_ms`."""
        return now_ms - self.renewed_ms <= timeout_s * 1000


def is_alive(lease: Lease | None, now_ms: int, timeout_s: float) -> bool:
    """An agent is alive while its lease is fresh; one that never renewed is not."""
    return lease is not None and lease.is_fresh(now_ms, timeout_s)


@dataclass
class BatchJob:
    job_id: str
    org_id: str
    test_path: str
    priority: int
    # Which attempt of the job this run is (1, 2, ...: the job's `attempts` once assigned),
    # and its own per-test run timeout (None: the agent's AGENT_TEST_TIMEOUT_S).
    attempt: int = 1
    timeout_s: float | None = None


@dataclass
class Batch:
    """Jobs of ONE app version and target, handed to one agent as one RQ job."""

    batch_id: str
    agent_id: str
    target: str
    app_version_id: str
    created_at: str
    jobs: list[BatchJob] = field(default_factory=list)
    # The build's org (a build is (org_id, app_version_id)) and the agent instance the batch
    # was bound to: another instance of the agent does not run it.
    org_id: str = ""
    instance_id: str = ""
    # Install the build even if the agent has it installed (the `fifo` baseline policy).
    force_install: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_redis(cls, raw: dict[Any, Any]) -> Batch:
        """A batch record as the scheduler stores it: a hash whose `jobs` field is JSON.

        The scheduler keeps fields of its own in that hash too (to take the batch back);
        they are not part of the record and are ignored here.
        """
        f = _fields(raw)
        return cls.from_json({**f, "jobs": json.loads(f["jobs"])})

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Batch:
        return cls(
            batch_id=raw["batch_id"],
            agent_id=raw["agent_id"],
            target=raw["target"],
            app_version_id=raw["app_version_id"],
            created_at=raw["created_at"],
            jobs=[BatchJob(**_batch_job(job)) for job in raw["jobs"]],
            org_id=raw.get("org_id") or "",
            instance_id=raw.get("instance_id") or "",
            force_install=raw.get("force_install") in (True, "1", "true"),
        )


def _batch_job(raw: dict[str, Any]) -> dict[str, Any]:
    """A batch job's fields as BatchJob takes them: the ones it does not know are dropped, so
    an agent reads batches from a newer scheduler."""
    known = BatchJob.__dataclass_fields__
    return {key: value for key, value in raw.items() if key in known}
