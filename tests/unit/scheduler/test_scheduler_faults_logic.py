"""Pure decisions of the fault handling: when the reaper requeues a batch, when an agent
report moves the agent record, how a batch's end settles its jobs, the retry backoff."""

from __future__ import annotations

import pytest

from qgjob_contract.events import JobReport, JobResult
from qgjob_contract.records import Agent, Batch, Job, Lease
from qgjob_contract.statuses import ErrorReason, JobStatus, RequeueReason
from qgjob_scheduler.consumer import retry_backoff_s
from qgjob_scheduler.dispatch import Formed
from qgjob_scheduler.handlers import applies
from qgjob_scheduler.reaper import verdict
from qgjob_scheduler.transitions import end_batch_job, started

NOW_MS = 1_800_000_000_000
TIMEOUT_S = 8.0


def formed(*, age_ms: int = 1000, enqueued: bool = True, instance_id: str = "i1") -> Formed:
    batch = Batch("b1", "emu-1", "emulator", "v1", "T", [], org_id="org", instance_id=instance_id)
    return Formed(batch, {}, None, NOW_MS - age_ms, enqueued)


def lease(*, age_ms: int = 1000, instance_id: str = "i1") -> Lease:
    return Lease("emu-1", instance_id, NOW_MS - age_ms, NOW_MS - 600_000)


def test_a_batch_whose_agent_renews_its_lease_is_left_alone() -> None:
    assert verdict(formed(), lease(), NOW_MS, TIMEOUT_S) is None


def test_a_batch_whose_agent_lease_expired_is_lost() -> None:
    assert verdict(formed(age_ms=20_000), lease(age_ms=8_001), NOW_MS, TIMEOUT_S) == (
        RequeueReason.AGENT_LOST
    )
    assert verdict(formed(age_ms=20_000), lease(age_ms=8_000), NOW_MS, TIMEOUT_S) is None
    assert verdict(formed(age_ms=20_000), None, NOW_MS, TIMEOUT_S) == RequeueReason.AGENT_LOST


def test_an_expired_lease_loses_the_batch_however_young_the_batch_is() -> None:
    assert verdict(formed(age_ms=2_000), lease(age_ms=9_000), NOW_MS, TIMEOUT_S) == (
        RequeueReason.AGENT_LOST
    )


def test_without_a_lease_a_batch_younger_than_the_timeout_is_not_lost_yet() -> None:
    assert verdict(formed(age_ms=2_000), None, NOW_MS, TIMEOUT_S) is None


def test_no_lease_expires_while_agents_could_not_reach_redis() -> None:
    # Redis came back (restarted, or reachable again) 3 s ago: every lease looks old, but
    # no agent could renew before; they get the whole timeout from then.
    back = NOW_MS - 3_000
    old = lease(age_ms=30_000)
    assert verdict(formed(age_ms=40_000), old, NOW_MS, TIMEOUT_S, renewable_since_ms=back) is None
    assert verdict(
        formed(age_ms=40_000), old, NOW_MS + 5_001, TIMEOUT_S, renewable_since_ms=back
    ) == (RequeueReason.AGENT_LOST)


def test_a_new_instance_of_the_agent_ends_its_former_instances_batch_at_once() -> None:
    assert verdict(formed(age_ms=10), lease(instance_id="i2"), NOW_MS, TIMEOUT_S) == (
        RequeueReason.AGENT_RESTARTED
    )


def test_a_batch_never_enqueued_is_requeued_after_the_grace() -> None:
    assert verdict(formed(age_ms=4_000, enqueued=False), lease(), NOW_MS, TIMEOUT_S) is None
    assert verdict(formed(age_ms=5_001, enqueued=False), lease(), NOW_MS, TIMEOUT_S) == (
        RequeueReason.NOT_ENQUEUED
    )


def _agent(instance_id: str | None, seq: int) -> Agent:
    return Agent("emu-1", "emulator", "idle", instance_id=instance_id, seq=seq)


def test_reports_of_one_instance_apply_in_sequence_order_only() -> None:
    assert applies(None, None, "i1", 1)
    assert applies(_agent("i1", 4), lease(), "i1", 5)
    assert not applies(_agent("i1", 5), lease(), "i1", 5)  # a duplicate
    assert not applies(_agent("i1", 5), lease(), "i1", 3)  # a late arrival


def test_a_new_instance_applies_from_its_first_report_and_a_replaced_one_no_more() -> None:
    assert applies(_agent("i1", 40), lease(instance_id="i2"), "i2", 1)
    assert not applies(_agent("i2", 3), lease(instance_id="i2"), "i1", 41)
    assert applies(_agent("i1", 40), None, "i2", 1)  # no lease names another instance


RESULT = JobResult(
    outcome=JobStatus.PASSED,
    duration_s=1.0,
    install_paid=False,
    install_s=0.0,
    log_tail="ok",
    driver="simulator",
    simulated=True,
)


def _job(status: JobStatus, batch_id: str | None = "b1") -> Job:
    return Job(
        "j1", "org", "v1", "t.js", 1, "emulator", "T0", status=status.value, batch_id=batch_id
    )


def test_a_batch_end_gives_a_reported_job_its_reported_outcome() -> None:
    report = JobReport(started_at="T1", finished_at="T2", result=RESULT)
    ended = end_batch_job(_job(JobStatus.RUNNING), "b1", "emu-1", report, "T3")
    assert ended is not None
    assert (ended.status, ended.started_at, ended.finished_at) == ("passed", "T1", "T2")
    assert ended.result == RESULT


def test_a_batch_end_applies_a_report_no_job_event_told_and_names_the_instance() -> None:
    # The agent's outbox folded the job's job.started and job.finished into batch.finished.
    report = JobReport(started_at="T1", finished_at="T2", result=RESULT)
    ended = end_batch_job(_job(JobStatus.ASSIGNED), "b1", "emu-1", report, "T3", instance_id="i7")
    assert ended is not None
    assert (ended.status, ended.started_at, ended.finished_at) == ("passed", "T1", "T2")
    entry = ended.history[-1]
    assert (entry["batch_id"], entry["agent_id"], entry["instance_id"]) == ("b1", "emu-1", "i7")
    assert (entry["started_at"], entry["finished_at"]) == ("T1", "T2")


def test_started_moves_a_job_to_running_at_the_reported_time_in_the_records_format() -> None:
    job = started(_job(JobStatus.ASSIGNED), "2026-11-29T10:00:00Z")
    assert (job.status, job.started_at) == (JobStatus.RUNNING, "2026-11-29T10:00:00.000+00:00")
    assert (job.job_id, job.batch_id, job.finished_at) == ("j1", "b1", None)


def test_a_batch_end_ends_an_unreported_job_as_not_reported() -> None:
    ended = end_batch_job(_job(JobStatus.ASSIGNED), "b1", "emu-1", None, "T3")
    assert ended is not None
    assert ended.status == JobStatus.ERROR
    assert ended.result is not None
    assert ended.result["reason"] == ErrorReason.NOT_REPORTED


@pytest.mark.parametrize(
    "job",
    [_job(JobStatus.PASSED), _job(JobStatus.RUNNING, batch_id="another-batch"), None],
    ids=["final", "other-batch", "gone"],
)
def test_a_batch_end_leaves_final_foreign_and_missing_jobs_alone(job: Job | None) -> None:
    report = JobReport(started_at="T1", finished_at="T2", result=RESULT)
    assert end_batch_job(job, "b1", "emu-1", report, "T3") is None
    assert end_batch_job(job, "b1", "emu-1", None, "T3") is None


def test_a_failing_handler_backs_off_more_each_delivery_up_to_a_cap() -> None:
    assert [retry_backoff_s(n) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 3.0, 3.0]
