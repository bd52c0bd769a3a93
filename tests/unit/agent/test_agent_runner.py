"""The batch runner: install once per batch, skip when warm, event order, failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from qgjob_agent.drivers.base import JobRun, RunOutcome
from qgjob_agent.drivers.simulator import SimulatorDriver
from qgjob_agent.errors import InstallError
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_agent.stopping import Stop
from qgjob_contract.events import AgentHeartbeat, EventType
from qgjob_contract.records import Batch, BatchJob
from qgjob_contract.statuses import AgentState, ErrorReason, JobStatus

if TYPE_CHECKING:
    from conftest import RecordingPublisher

INSTALL_S = 3.0


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class FakeDriver:
    """Counts installs; fails installs of `bad_versions`; crashes on tests named *crash*."""

    name = "fake"
    simulated = False

    def __init__(self, clock: Clock, status: AgentStatus) -> None:
        self.clock = clock
        self.status = status
        self.installs: list[str] = []
        self.bad_versions: set[str] = set()
        self.seen_during_test: list[AgentHeartbeat] = []
        self.during_test: Callable[[], None] = lambda: None  # runs inside each test

    def install(self, app_version_id: str, target: str, *, attempt: int = 1) -> None:
        self.clock.sleep(INSTALL_S)
        if app_version_id in self.bad_versions:
            raise InstallError("adb: INSTALL_FAILED_INSUFFICIENT_STORAGE")
        self.installs.append(app_version_id)

    def run_test(self, job: JobRun, stop: Stop | None = None) -> RunOutcome:
        self.seen_during_test.append(self.status.heartbeat("now"))
        self.during_test()
        if "crash" in job.test_path:
            raise RuntimeError("device vanished")
        self.clock.sleep(1.0)
        status = JobStatus.FAILED if "fail" in job.test_path else JobStatus.PASSED
        return RunOutcome(status, 1.0, f"ran {job.test_path}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def status() -> AgentStatus:
    return AgentStatus("emulator-a1", "emulator", instance_id="i-test")


@pytest.fixture
def driver(clock: Clock, status: AgentStatus) -> FakeDriver:
    return FakeDriver(clock, status)


@pytest.fixture
def runner(
    driver: FakeDriver, publisher: RecordingPublisher, status: AgentStatus, clock: Clock
) -> BatchRunner:
    return BatchRunner(driver, publisher, status, monotonic=clock.monotonic, now=lambda: "T")


def _batch(batch_id: str, version: str, *paths: str) -> Batch:
    jobs = [BatchJob(f"{batch_id}-j{i}", "org", path, 1) for i, path in enumerate(paths)]
    return Batch(batch_id, "emulator-a1", "emulator", version, "T0", jobs, org_id="org")


def _results(publisher: RecordingPublisher) -> list[dict[str, Any]]:
    return [event.payload["result"] for event in publisher.of(EventType.JOB_FINISHED)]


def test_cold_batch_installs_once_then_runs_each_test_in_order(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher
) -> None:
    finished = runner.run(_batch("b1", "v1", "a.spec.js", "b_fail.spec.js", "c.spec.js"))

    assert driver.installs == ["v1"]
    assert publisher.types() == [
        EventType.JOB_STARTED,
        EventType.JOB_FINISHED,
        EventType.JOB_STARTED,
        EventType.JOB_FINISHED,
        EventType.JOB_STARTED,
        EventType.JOB_FINISHED,
        EventType.BATCH_FINISHED,
    ]
    job_ids = [e.payload["job_id"] for e in publisher.events[:-1]]
    assert job_ids == ["b1-j0", "b1-j0", "b1-j1", "b1-j1", "b1-j2", "b1-j2"]
    results = _results(publisher)
    assert [r["outcome"] for r in results] == ["passed", "failed", "passed"]
    assert [r["install_paid"] for r in results] == [True, False, False]
    assert [r["install_s"] for r in results] == [INSTALL_S, 0.0, 0.0]
    assert all(r["driver"] == "fake" and r["simulated"] is False for r in results)
    assert results[1]["log_tail"] == "ran b_fail.spec.js"
    assert "reason" not in results[0]

    batch_finished = publisher.events[-1].payload
    assert batch_finished == finished
    # every state snapshot takes the next number (the driver took some during the tests)
    assert batch_finished.pop("seq") == len(driver.seen_during_test) + 1
    # it says what the agent reported of each job, as its job.started/job.finished did
    reports = batch_finished.pop("reports")
    assert list(reports) == ["b1-j0", "b1-j1", "b1-j2"]
    assert [r["result"] for r in reports.values()] == results
    assert all(r["started_at"] == "T" and r["finished_at"] == "T" for r in reports.values())
    assert batch_finished == {
        "agent_id": "emulator-a1",
        "instance_id": "i-test",
        "target": "emulator",
        "state": "idle",
        "installed_app_version": "v1",
        "installed_org_id": "org",
        "installs": 1,
        "jobs_run": 3,
        "batch_id": "b1",
    }


def test_warm_agent_skips_the_install(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher
) -> None:
    runner.run(_batch("b1", "v1", "a.spec.js"))
    publisher.events.clear()

    finished = runner.run(_batch("b2", "v1", "b.spec.js", "c.spec.js"))

    assert driver.installs == ["v1"]
    assert [r["install_paid"] for r in _results(publisher)] == [False, False]
    assert finished["installs"] == 1
    assert finished["jobs_run"] == 3


def test_a_forced_install_is_paid_even_when_warm(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher
) -> None:
    # The fifo baseline policy asks for an install before every job.
    runner.run(_batch("b1", "v1", "a.spec.js"))
    publisher.events.clear()
    forced = _batch("b2", "v1", "b.spec.js")
    forced.force_install = True
    finished = runner.run(forced)
    assert driver.installs == ["v1", "v1"]
    assert [r["install_paid"] for r in _results(publisher)] == [True]
    assert finished["installs"] == 2


def test_another_version_pays_a_new_install(runner: BatchRunner, driver: FakeDriver) -> None:
    runner.run(_batch("b1", "v1", "a.spec.js"))
    finished = runner.run(_batch("b2", "v2", "a.spec.js"))
    assert driver.installs == ["v1", "v2"]
    assert finished["installs"] == 2
    assert finished["installed_app_version"] == "v2"


def test_install_failure_ends_every_job_in_error_without_running_them(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher
) -> None:
    driver.bad_versions.add("v9")

    finished = runner.run(_batch("b1", "v9", "a.spec.js", "b.spec.js"))

    assert driver.seen_during_test == []
    assert publisher.types() == [
        EventType.JOB_FINISHED,
        EventType.JOB_FINISHED,
        EventType.BATCH_FINISHED,
    ]
    for result in _results(publisher):
        assert result["outcome"] == JobStatus.ERROR
        assert result["reason"] == ErrorReason.INSTALL_FAILED
        assert result["install_paid"] is False
        assert "INSTALL_FAILED_INSUFFICIENT_STORAGE" in result["log_tail"]
    assert finished["installs"] == 0
    assert finished["installed_app_version"] is None
    assert finished["jobs_run"] == 2


def test_failed_install_is_not_remembered_as_installed(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher
) -> None:
    runner.run(_batch("b1", "v1", "a.spec.js"))
    driver.bad_versions.add("v2")
    runner.run(_batch("b2", "v2", "a.spec.js"))
    driver.bad_versions.clear()

    finished = runner.run(_batch("b3", "v1", "a.spec.js"))

    assert driver.installs == ["v1", "v1"]
    assert finished["installs"] == 2


def test_driver_crash_errors_that_job_only_and_logs_it(
    runner: BatchRunner, publisher: RecordingPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        finished = runner.run(_batch("b1", "v1", "a.spec.js", "crash.spec.js", "c.spec.js"))

    results = _results(publisher)
    assert [r["outcome"] for r in results] == ["passed", "error", "passed"]
    assert results[1]["reason"] == ErrorReason.DRIVER_ERROR
    assert "device vanished" in results[1]["log_tail"]
    assert finished["jobs_run"] == 3
    crash_logs = [r for r in caplog.records if "b1-j1" in r.getMessage()]
    assert crash_logs
    assert crash_logs[0].exc_info is not None


def test_state_is_busy_with_the_batch_during_it_and_idle_after(
    runner: BatchRunner, driver: FakeDriver, status: AgentStatus
) -> None:
    runner.run(_batch("b1", "v1", "a.spec.js"))

    during = driver.seen_during_test[0]
    assert during["state"] == AgentState.BUSY
    assert during["current_batch_id"] == "b1"
    assert during["last_batch_id"] is None
    after = status.heartbeat("now")
    assert after["state"] == AgentState.IDLE
    assert after["current_batch_id"] is None
    assert after["last_batch_id"] == "b1"


def test_a_batch_bound_to_another_instance_of_the_agent_is_not_run(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher, status: AgentStatus
) -> None:
    batch = _batch("b1", "v1", "a.spec.js")
    batch.instance_id = "a-former-incarnation"

    assert runner.run(batch) is None

    assert driver.installs == []
    assert publisher.events == []
    assert status.heartbeat("now")["last_batch_id"] is None


def test_a_batch_the_scheduler_requeued_meanwhile_stops_before_its_next_test(
    driver: FakeDriver, publisher: RecordingPublisher, status: AgentStatus, clock: Clock
) -> None:
    asked: list[str] = []

    def still_bound(batch_id: str) -> bool:
        asked.append(batch_id)
        return len(asked) < 3  # bound for the batch start and the second test, not the third

    runner = BatchRunner(
        driver, publisher, status, still_bound=still_bound, monotonic=clock.monotonic
    )
    runner.run(_batch("b1", "v1", "a.spec.js", "b.spec.js", "c.spec.js"))

    ran = [e.payload["job_id"] for e in publisher.of(EventType.JOB_FINISHED)]
    assert ran == ["b1-j0", "b1-j1"]
    assert publisher.types()[-1] == EventType.BATCH_FINISHED
    assert asked == ["b1", "b1", "b1"]
    assert status.heartbeat("now")["state"] == AgentState.IDLE


def test_a_runner_error_leaves_the_agent_idle_and_logs_what_was_not_reported(
    runner: BatchRunner,
    driver: FakeDriver,
    status: AgentStatus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt  # not a driver failure: the batch itself is aborted

    driver.during_test = interrupt
    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        runner.run(_batch("b1", "v1", "a.spec.js", "b.spec.js"))

    heartbeat = status.heartbeat("now")
    assert heartbeat["state"] == AgentState.IDLE
    assert heartbeat["current_batch_id"] is None
    assert heartbeat["last_batch_id"] == "b1"
    (aborted,) = [r.getMessage() for r in caplog.records if "aborted" in r.getMessage()]
    assert aborted.endswith("job_ids not reported: b1-j0,b1-j1")


def test_with_the_simulator_results_are_marked_simulated(
    publisher: RecordingPublisher, status: AgentStatus
) -> None:
    simulator = SimulatorDriver(
        install_s=0.0, test_s=0.0, fail_pattern="*fail*", error_pattern="", sleep=lambda _: None
    )
    BatchRunner(simulator, publisher, status).run(_batch("b1", "v1", "x_fail.spec.js"))
    (result,) = _results(publisher)
    assert result["outcome"] == JobStatus.FAILED
    assert result["driver"] == "simulator"
    assert result["simulated"] is True


def test_a_stop_requested_during_a_batch_lets_it_finish_and_reports_the_agent_offline(
    runner: BatchRunner, driver: FakeDriver, publisher: RecordingPublisher, status: AgentStatus
) -> None:
    driver.during_test = status.stop  # SIGTERM arrives while the first test runs

    finished = runner.run(_batch("b1", "v1", "a.spec.js", "b.spec.js"))

    assert [r["outcome"] for r in _results(publisher)] == [JobStatus.PASSED] * 2
    assert publisher.events[-1].payload == finished
    assert finished["state"] == AgentState.OFFLINE
    before, after = driver.seen_during_test
    assert before["state"] == AgentState.BUSY
    assert after["state"] == AgentState.OFFLINE
    assert after["current_batch_id"] == "b1"
    assert status.heartbeat("now")["state"] == AgentState.OFFLINE


def test_log_lines_name_the_batch_and_its_jobs_as_the_scheduler_does(
    runner: BatchRunner, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="qgjob_agent"):
        runner.run(_batch("b1", "v1", "a.spec.js", "b_fail.spec.js"))

    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        "batch_id=b1 agent_id=emulator-a1: starting, app version v1, job_ids=b1-j0,b1-j1"
    )
    assert "job_id=b1-j0 batch_id=b1: passed in 1.00 s" in messages
    assert "job_id=b1-j1 batch_id=b1: failed in 1.00 s" in messages
    assert messages[-1] == "batch_id=b1: finished, agent idle (2 jobs run so far)"
