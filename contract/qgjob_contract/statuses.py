"""Job statuses, agent states and the allowed status transitions (pure logic)."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # the test itself failed
    ERROR = "error"  # infrastructure failure (install, driver, agent)
    CANCELLED = "cancelled"


FINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.PASSED, JobStatus.FAILED, JobStatus.ERROR, JobStatus.CANCELLED}
)

# Which status may follow which. A final status is never left. `assigned -> queued` and
# `running -> queued` are the road back to a group (the scheduler's requeue script): for the
# jobs of a batch no agent will run (not enqueued, or its agent went offline before starting
# it), and for the unfinished jobs of a batch whose agent was lost or restarted.
_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    # queued -> error: its queue wait expired (reason `expired`) before an agent took it.
    JobStatus.QUEUED: frozenset({JobStatus.ASSIGNED, JobStatus.CANCELLED, JobStatus.ERROR}),
    # assigned -> final without running: the batch's install failed before the test began.
    JobStatus.ASSIGNED: FINAL_STATUSES | {JobStatus.RUNNING, JobStatus.QUEUED},
    JobStatus.RUNNING: FINAL_STATUSES | {JobStatus.QUEUED},
}


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def can_transition(current: str, new: str) -> bool:
    """True when a job in `current` may move to `new`.

    Unknown statuses are never allowed; a job never moves to the status it already has.
    """
    try:
        cur, nxt = JobStatus(current), JobStatus(new)
    except ValueError:
        return False
    return nxt in _ALLOWED.get(cur, frozenset())


class AgentState(StrEnum):
    IDLE = "idle"  # waiting for a batch
    BUSY = "busy"  # running a batch
    OFFLINE = "offline"  # stopped cleanly; takes no batch


class ErrorReason(StrEnum):
    """Why a job ended `error`: the `reason` of its JobResult."""

    INSTALL_FAILED = "install_failed"  # the batch's app install failed; no test ran
    DRIVER_ERROR = "driver_error"  # the driver crashed or could not start the test
    TIMEOUT = "timeout"  # the test ran longer than the agent's per-test timeout
    NOT_REPORTED = "not_reported"  # its batch ended without the agent reporting the job
    EXPIRED = "expired"  # no agent took the job within its queue-wait limit
    CANCELLED = "cancelled"  # a cancel was asked (the reason of a `cancelled` result)


class RequeueReason(StrEnum):
    """Why a batch's unfinished jobs went back to their group (an attempt's `reason`)."""

    AGENT_LOST = "agent_lost"  # its lease expired: the agent died or vanished
    AGENT_RESTARTED = "agent_restarted"  # a new instance of the agent renewed its lease
    NOT_ENQUEUED = "not_enqueued"  # the batch never reached the agent's RQ queue
    TAKEN_BACK = "taken_back"  # the agent went offline before it started the batch


# The default of the scheduler's JOB_MAX_ATTEMPTS: a job whose infrastructure errors (install
# failed, driver error, not reported, agent lost or restarted) reach this many attempts ends
# `error` with the last reason instead of going back to its group (an agent that dies on one
# test every time must not loop forever).
MAX_ATTEMPTS = 3


class DriverName(StrEnum):
    """The drivers every agent offers; a JobResult's `driver` names the one that ran the job.

    A target's plugin may add drivers of its own, so `driver` may name one not listed here.
    """

    SIMULATOR = "simulator"  # sleeps and decides the outcome from the test path: no real test
    COMMAND = "command"  # runs a real process per test from a command template
