"""A run's view, computed from its job records: counts, finished, timings, compact jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from qgjob_api.run_record import Run, compact_job, counts, view
from qgjob_api.validation import parse_run
from qgjob_contract.records import Job

CREATED = "2030-01-01T00:00:00.000+00:00"
NOW = datetime(2030, 1, 1, 0, 1, 0, tzinfo=UTC)


def _run(job_ids: list[str]) -> Run:
    return Run(
        run_id="r",
        org_id="o",
        app_version_id="v",
        targets=["emulator"],
        tests=[f"t{i}" for i in range(len(job_ids))],
        priority=1,
        created_at=CREATED,
        job_ids=job_ids,
    )


def _job(job_id: str, status: str, started: str | None = None, ended: str | None = None) -> Job:
    job = Job(job_id, "o", "v", f"tests/{job_id}.js", 1, "emulator", CREATED, status=status)
    job.started_at, job.finished_at = started, ended
    if ended:
        job.result = {  # type: ignore[typeddict-item]
            "outcome": status,
            "duration_s": 1.0,
            "install_paid": False,
            "install_s": 0.0,
            "log_tail": "log",
            "driver": "simulator",
            "simulated": True,
        }
    return job


def test_a_run_record_survives_redis() -> None:
    run = _run(["a", "b"])
    assert Run.from_redis({k.encode(): v.encode() for k, v in run.to_redis().items()}) == run


def test_counts_list_every_status_and_keep_unknown_ones() -> None:
    found = counts(["passed", "passed", "new-final"])
    assert found["passed"] == 2
    assert found["queued"] == 0
    assert found["new-final"] == 1
    assert list(found)[:7] == [
        "queued", "assigned", "running", "passed", "failed", "error", "cancelled",
    ]  # fmt: skip


def test_an_unfinished_run_counts_elapsed_to_now() -> None:
    jobs = [
        _job("a", "passed", "2030-01-01T00:00:05.000+00:00", "2030-01-01T00:00:06.000+00:00"),
        _job("b", "running", "2030-01-01T00:00:07.000+00:00"),
    ]
    body = view(_run(["a", "b"]), jobs, now=NOW)

    assert body["finished"] is False
    assert body["timings"] == {
        "created_at": CREATED,
        "first_started_at": "2030-01-01T00:00:05.000+00:00",
        "last_finished_at": "2030-01-01T00:00:06.000+00:00",
        "elapsed_s": 60.0,
    }


def test_a_finished_run_counts_elapsed_to_its_last_job() -> None:
    jobs = [
        _job("a", "passed", "2030-01-01T00:00:05.000+00:00", "2030-01-01T00:00:06.000+00:00"),
        _job("b", "failed", "2030-01-01T00:00:07.000+00:00", "2030-01-01T00:00:09.250+00:00"),
    ]
    body = view(_run(["a", "b"]), jobs, now=NOW)

    assert body["finished"] is True
    assert body["timings"]["elapsed_s"] == 9.25
    assert body["total"] == 2


def test_compact_jobs_carry_the_log_tail_only_when_the_job_did_not_pass() -> None:
    passed = compact_job(_job("a", "passed", CREATED, CREATED))
    failed = compact_job(_job("b", "failed", CREATED, CREATED))
    assert passed["result"] is not None
    assert "log_tail" not in passed["result"]
    assert failed["result"]["log_tail"] == "log"
    assert failed["final"] is True


def test_a_run_makes_one_job_per_test_and_target_tests_first() -> None:
    run = parse_run(
        {
            "org_id": "o",
            "app_version_id": "v",
            "targets": ["device", "emulator"],
            "tests": ["a", "b"],
        },
        max_jobs=4,
    )
    assert [(job.test_path, job.target.value) for job in run.jobs()] == [
        ("a", "device"),
        ("a", "emulator"),
        ("b", "device"),
        ("b", "emulator"),
    ]
