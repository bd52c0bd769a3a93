"""The progress texts: durations, the status line and its estimate, failure lines."""

from __future__ import annotations

import pytest

from qgjob_cli.progress import counts_text, duration, failure_line, status_line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.4, "59s"), (65, "1m05s"), (3599, "59m59s"), (3600, "1h00m"), (7380, "2h03m")],
)
def test_durations_read_like_a_clock(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _job(status: str, final: bool) -> dict[str, object]:
    return {"job_id": status, "status": status, "final": final}


def test_counts_follow_the_lifecycle_and_put_unknown_statuses_last() -> None:
    jobs = [_job("passed", True), _job("zzz", True), _job("queued", False), _job("passed", True)]
    assert counts_text(jobs) == "1 queued, 2 passed, 1 zzz"


def test_the_estimate_assumes_the_rest_take_as_long_as_the_finished_did() -> None:
    jobs = [_job("passed", True), _job("running", False), _job("queued", False)]
    # 1 of 3 final after 30 s: 2 more at 30 s each
    assert (
        status_line(jobs, 30)
        == "1/3 final | 1 queued, 1 running, 1 passed | 30s elapsed, about 1m00s left"
    )
    assert status_line(jobs[1:], 30).endswith("| 30s elapsed")  # nothing final: no estimate


def test_a_failure_line_names_test_target_agent_duration_and_reason() -> None:
    job = {
        "job_id": "j",
        "status": "error",
        "final": True,
        "test_path": "tests/pay.spec.js",
        "target": "device",
        "assigned_agent": "device-2",
        "result": {"duration_s": 0, "reason": "install_failed"},
    }
    assert (
        failure_line(job)
        == "ERROR tests/pay.spec.js [device] on device-2 after 0.00s: install_failed"
    )
