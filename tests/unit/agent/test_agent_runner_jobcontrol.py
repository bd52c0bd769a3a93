"""The batch runner's job control: a job cancelled before its test is skipped (reported
`cancelled`), one cancelled while it runs is stopped and the batch goes on, the job's own
`timeout_s` replaces AGENT_TEST_TIMEOUT_S, and the install learns the batch's attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qgjob_agent.drivers.base import JobRun, RunOutcome
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_agent.stopping import Stop
from qgjob_contract.events import EventType
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import JobStatus

if TYPE_CHECKING:
    from conftest import RecordingPublisher


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class RecordingSimulator(SimulatorDriver):
    """The real simulator on a fake clock, remembering what it was given."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(
            install_s=1.0, test_s=4.0, fail_pattern="*fail*", error_pattern="", sleep=clock.sleep
        )
        self.timeouts: list[float] = []
        self.install_attempts: list[int] = []
        self.ran: list[str] = []

    def install(self, app_version_id: str, target: str, *, attempt: int = 1) -> None:
        self.install_attempts.append(attempt)
        super().install(app_version_id, target, attempt=attempt)

    def run_test(self, job: JobRun, stop: Stop | None = None) -> RunOutcome:
        assert stop is not None
        self.timeouts.append(stop.timeout_s)
        self.ran.append(job.job_id)
        return super().run_test(job, stop)


def _runner(
    publisher: RecordingPublisher, clock: Clock, cancelled: set[str], driver: RecordingSimulator
) -> BatchRunner:
    def is_cancelled(job_id: str) -> bool:
        # "j1" is cancelled once it has run 1 s: while its test runs
        if job_id == "j1" and driver.ran[-1:] == ["j1"]:
            return clock.t >= started["j1"] + 1.0
        return job_id in cancelled

    started: dict[str, float] = {}
    original = driver.run_test

    def run_test(job: JobRun, stop: Stop | None = None) -> RunOutcome:
        started[job.job_id] = clock.t
        return original(job, stop)

    driver.run_test = run_test  # type: ignore[method-assign]
    return BatchRunner(
        driver,
        publisher,
        AgentStatus("emulator-a1", "emulator", instance_id="i-test"),
        cancelled=is_cancelled,
        test_timeout_s=3.0,
        cancel_poll_s=0.25,
        monotonic=clock.monotonic,
        now=lambda: "T",
    )


def _batch(*jobs: BatchJob) -> Batch:
    return Batch("b1", "emulator-a1", "emulator", "v1", "T0", list(jobs), org_id="org")


def _results(publisher: RecordingPublisher) -> dict[str, dict[str, Any]]:
    return {
        event.payload["job_id"]: event.payload["result"]
        for event in publisher.of(EventType.JOB_FINISHED)
    }


def test_cancels_and_timeouts_in_one_batch(publisher: RecordingPublisher) -> None:
    clock = Clock()
    driver = RecordingSimulator(clock)
    runner = _runner(publisher, clock, {"j0"}, driver)

    runner.run(
        _batch(
            BatchJob("j0", "org", "a.spec.js", 1, attempt=2),  # cancelled before it started
            BatchJob("j1", "org", "b.spec.js", 1, attempt=2, timeout_s=30.0),  # cancelled
            BatchJob("j2", "org", "c.spec.js", 1, attempt=2),  # AGENT_TEST_TIMEOUT_S: 3 s
            BatchJob("j3", "org", "d.spec.js", 1, attempt=2, timeout_s=10.0),  # passes
        )
    )

    results = _results(publisher)
    assert {job_id: r["outcome"] for job_id, r in results.items()} == {
        "j0": JobStatus.CANCELLED,
        "j1": JobStatus.CANCELLED,
        "j2": JobStatus.ERROR,
        "j3": JobStatus.PASSED,
    }
    assert results["j0"]["reason"] == "cancelled"
    assert results["j1"]["reason"] == "cancelled"
    assert results["j2"]["reason"] == "timeout"
    # j0 never started: no job.started, and the driver never saw it
    started = [e.payload["job_id"] for e in publisher.of(EventType.JOB_STARTED)]
    assert started == ["j1", "j2", "j3"]
    assert driver.ran == ["j1", "j2", "j3"]
    # j1 stopped within a poll of its cancel (1 s in), not at its 4 s simulated end
    assert 1.0 <= results["j1"]["duration_s"] <= 1.25
    assert driver.timeouts == [30.0, 3.0, 10.0]
    # the install was for a second attempt, and the first job that ran paid it
    assert driver.install_attempts == [2]
    assert [r["install_paid"] for r in results.values()] == [False, True, False, False]
    batch_reports = publisher.of(EventType.BATCH_FINISHED)[0].payload["reports"]
    assert list(batch_reports) == ["j0", "j1", "j2", "j3"]
