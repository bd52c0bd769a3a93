"""The round-trip legs the benchmark reports, from hand-made job records."""

from __future__ import annotations

from bench.metrics import round_trips


def _job(
    batch: str,
    created: float,
    assigned: float,
    started: float,
    finished: float,
    *,
    install_s: float = 0.0,
) -> dict[str, object]:
    def at(seconds: float) -> str:
        return f"2026-01-01T00:00:{seconds:06.3f}+00:00"

    return {
        "assigned_agent": "a1",
        "batch_id": batch,
        "created_at": at(created),
        "assigned_at": at(assigned),
        "started_at": at(started),
        "finished_at": at(finished),
        "result": {"install_paid": install_s > 0, "install_s": install_s},
    }


def test_each_leg_is_measured_from_the_records_own_timestamps() -> None:
    records = [
        # first batch: created at 0, formed at 0.1, install 1 s, tests 1.15-1.2 and 1.21-1.3
        _job("b1", 0.0, 0.1, 1.15, 1.2, install_s=1.0),
        _job("b1", 0.0, 0.1, 1.21, 1.3),
        # second batch, its job waiting since 0: formed 0.25 s after the first batch ended
        _job("b2", 0.0, 1.55, 1.58, 1.6),
    ]

    trips = round_trips(records)

    assert trips.ready_to_assigned == [100.0]
    assert sorted(round(ms) for ms in trips.assigned_to_running) == [30, 50]
    assert [round(ms) for ms in trips.finished_to_assigned] == [250]
    assert [round(ms) for ms in trips.between_tests] == [10]


def test_a_batch_whose_jobs_came_after_the_agent_freed_is_no_turnaround() -> None:
    records = [_job("b1", 0.0, 0.1, 0.2, 0.3), _job("b2", 2.0, 2.05, 2.1, 2.2)]

    assert round_trips(records).finished_to_assigned == []
