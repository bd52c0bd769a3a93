"""The retention sweep's decisions (pure): which index entries go, when a run goes, where
the next slice starts."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from qgjob_contract.events import timestamp_ms
from qgjob_scheduler.retention import (
    SWEEP_JOBS,
    JobState,
    Sweeper,
    ended_ms,
    judge_jobs,
    next_offset,
    run_expired,
)

CREATED = "2030-01-01T00:00:00.000+00:00"
FINISHED = "2030-01-01T00:10:00.000+00:00"
FINISHED_MS = timestamp_ms(FINISHED)


def test_a_final_job_that_ended_before_the_cutoff_goes() -> None:
    done = JobState("a", "passed", CREATED, FINISHED)
    assert judge_jobs([done], FINISHED_MS).delete == ["a"]  # at the cutoff exactly
    assert judge_jobs([done], FINISHED_MS + 1).delete == ["a"]


def test_a_final_job_that_ended_after_the_cutoff_stays_though_created_before() -> None:
    verdict = judge_jobs([JobState("a", "failed", CREATED, FINISHED)], FINISHED_MS - 1)
    assert (verdict.delete, verdict.orphans, verdict.kept) == ([], [], 1)


def test_unfinished_jobs_stay_whatever_their_age() -> None:
    jobs = [
        JobState(str(i), status, CREATED)
        for i, status in enumerate(["queued", "assigned", "running"])
    ]
    verdict = judge_jobs(jobs, FINISHED_MS * 2)
    assert (verdict.delete, verdict.kept) == ([], 3)


def test_an_entry_without_a_record_is_an_orphan() -> None:
    verdict = judge_jobs([JobState("gone", None)], FINISHED_MS)
    assert (verdict.delete, verdict.orphans, verdict.kept) == ([], ["gone"], 0)


def test_every_final_status_expires() -> None:
    jobs = [JobState(s, s, CREATED, FINISHED) for s in ("passed", "failed", "error", "cancelled")]
    assert judge_jobs(jobs, FINISHED_MS).delete == ["passed", "failed", "error", "cancelled"]


def test_the_end_is_the_finish_else_the_creation() -> None:
    assert ended_ms(JobState("a", "passed", CREATED, FINISHED)) == FINISHED_MS
    assert ended_ms(JobState("a", "cancelled", CREATED, None)) == timestamp_ms(CREATED)
    assert ended_ms(JobState("a", "running", CREATED, FINISHED)) is None
    assert ended_ms(JobState("a", "passed", None, "not a time")) is None


def test_a_final_job_with_an_unreadable_end_goes() -> None:
    assert judge_jobs([JobState("a", "error", None, "garbage")], 0).delete == ["a"]


def test_a_run_goes_once_none_of_its_jobs_is_left() -> None:
    assert run_expired(0)
    assert not run_expired(1)


def test_the_next_slice_starts_past_the_kept_entries_or_back_at_the_oldest() -> None:
    assert next_offset(0, read=1000, kept=3, limit=1000) == 3
    assert next_offset(3, read=1000, kept=10, limit=1000) == 13
    assert next_offset(13, read=999, kept=999, limit=1000) == 0


def test_the_work_per_tick_is_bounded_as_the_readme_says() -> None:
    """README (bounded state): each tick reads at most N job index entries and M runs; a
    Sweeper made without limits uses those bounds."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"it reads at most\s+([\d,]+) job index entries and ([\d,]+) runs", readme)
    assert found, "README no longer says how much the sweep reads per tick"
    jobs, runs = (int(n.replace(",", "")) for n in found.groups())
    defaults = inspect.signature(Sweeper).parameters
    assert (defaults["jobs_per_tick"].default, defaults["runs_per_tick"].default) == (jobs, runs)


def test_a_full_slice_of_the_default_size_goes_on_past_its_kept_entries() -> None:
    """A tick that read all SWEEP_JOBS entries it may has not reached the cutoff: the next
    one goes on past the entries kept. (The count comes from a real read, so this holds
    for numbers past CPython's small-int cache, as in production.)"""
    read = len([f"job-{n}" for n in range(SWEEP_JOBS)])
    assert next_offset(3000, read=read, kept=7, limit=SWEEP_JOBS) == 3007
    assert next_offset(3000, read=read - 1, kept=7, limit=SWEEP_JOBS) == 0


def test_the_sweeps_inputs_and_verdicts_cannot_change_once_made() -> None:
    state = JobState("j", "passed", CREATED, FINISHED)
    verdict = judge_jobs([state], FINISHED_MS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.status = "running"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.kept = 5  # type: ignore[misc]
