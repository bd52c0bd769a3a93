"""The scheduler as real processes under load with real agents: SIGKILLed at several moments
and restarted, or two of them at once (one active consumer, a standby that takes over)."""

from __future__ import annotations

import time

from qgjob_contract.names import Keys
from qgjob_contract.records import Job
from qgjob_contract.statuses import JobStatus
from tests.integration.conftest import EventTap
from tests.integration.scheduler.conftest import World, wait_until

from .conftest import (
    FINAL_LINE,
    REDISPATCH_BOUND_S,
    REPORT_GRACE_S,
    TICK_S,
    Agents,
    FinalWatch,
    SchedulerProcess,
    Schedulers,
    count_final,
    expected_status,
    kill,
    paths,
    started_per_job,
    submit,
    wait_final,
)

REQUESTS = 4
PER_REQUEST = 5
# After the last final status, how long the records are watched for a change (the report
# grace and a few ticks: a late settle or requeue would land in it).
WATCH_AFTER_S = REPORT_GRACE_S + 5 * TICK_S


def _submit_wave(world: World, wave: str) -> list[str]:
    """REQUESTS requests over two builds, every third test failing."""
    ids: list[str] = []
    for request in range(REQUESTS):
        ids += submit(world, f"{wave}-{request % 2}", paths(PER_REQUEST, every_fail=3))
    return ids


def _assert_each_once(
    world: World, jobs: dict[str, Job], tap: EventTap, started: dict[str, list[str]]
) -> None:
    """Every job ended with the outcome its path predicts, on its one and only attempt."""
    wrong = {j.job_id: j.status for j in jobs.values() if j.status != expected_status(j.test_path)}
    assert wrong == {}
    # one attempt each: its history is that one (final) attempt
    assert {(j.attempts, len(j.history)) for j in jobs.values()} == {(1, 1)}
    started_per_job(tap, started)
    twice = {job_id: batches for job_id, batches in started.items() if len(batches) != 1}
    assert twice == {}, "a job was dispatched (started) more than once"
    assert set(started) == set(jobs)


def _alive(scheduler: SchedulerProcess) -> bool:
    return scheduler.process.poll() is None and "consuming" in scheduler.log()


def test_scheduler_killed_at_several_moments_loses_nothing_and_dispatches_nothing_twice(
    world: World, agents: Agents, schedulers: Schedulers, event_tap: EventTap
) -> None:
    agents.start(SIM_TEST_SECONDS="0.05")
    started: dict[str, list[str]] = {}
    job_ids: list[str] = []
    scheduler = schedulers.start("only")
    with FinalWatch(world.redis, []) as watch:
        wait_until(lambda: _alive(scheduler), "the scheduler consuming", timeout=30)

        # 1. killed while it applies a burst of submissions and forms batches
        wave = _submit_wave(world, "a")
        job_ids += wave
        watch.add(wave)
        wait_until(
            lambda: (
                world.redis.exists(Keys.job(wave[0]))
                and world.job(wave[0]).status != JobStatus.QUEUED
            ),
            "the first batch formed",
        )
        kill(scheduler.process)
        more = submit(world, "a-0", paths(PER_REQUEST, every_fail=3))  # arrives while it is down
        job_ids += more
        watch.add(more)
        scheduler = schedulers.start("only")
        started_per_job(event_tap, started)

        # 2. killed mid-load: batches running, reports flowing
        wave = _submit_wave(world, "b")
        job_ids += wave
        watch.add(wave)
        done = count_final(world.redis, job_ids)
        wait_until(
            lambda: count_final(world.redis, job_ids) >= done + PER_REQUEST, "reports applied"
        )
        kill(scheduler.process)
        started_per_job(event_tap, started)

        # 3. killed again right after it came back (its first passes)
        scheduler = schedulers.start("only")
        wait_until(lambda: _alive(scheduler), "the scheduler consuming again", timeout=30)
        kill(scheduler.process)
        scheduler = schedulers.start("only")

        jobs = wait_final(world.redis, job_ids, "every job final", timeout=90)
        watch_until = time.monotonic() + WATCH_AFTER_S
        while time.monotonic() < watch_until:  # a change of a final record would show here
            started_per_job(event_tap, started)
            time.sleep(TICK_S)
    assert watch.changes == []
    assert len(watch.first) == len(job_ids)
    _assert_each_once(world, jobs, event_tap, started)
    applied_twice = {j: s for j, s in schedulers.final_lines().items() if len(s) > 1}
    assert applied_twice == {}
    assert len(schedulers.started) == 4


def test_two_schedulers_one_active_standby_takes_over_under_load(
    world: World, agents: Agents, schedulers: Schedulers, event_tap: EventTap
) -> None:
    agents.start(SIM_TEST_SECONDS="0.05")
    agents.start(SIM_TEST_SECONDS="0.05")
    first = schedulers.start("first")
    wait_until(lambda: _alive(first), "the first scheduler consuming", timeout=30)
    second = schedulers.start("second")
    wait_until(lambda: _alive(second), "the second scheduler consuming", timeout=30)
    started: dict[str, list[str]] = {}

    with FinalWatch(world.redis, []) as watch:
        job_ids = _submit_wave(world, "a")
        watch.add(job_ids)
        wait_final(world.redis, job_ids, "the first wave final")
        started_per_job(event_tap, started)
        # One consumer applies events (single active consumer); both run the tick.
        active = [s for s in (first, second) if FINAL_LINE.search(s.log())]
        assert len(active) == 1, "exactly one scheduler applied events"
        standby = second if active[0] is first else first

        wave = _submit_wave(world, "b")
        job_ids += wave
        watch.add(wave)
        wait_until(
            lambda: count_final(world.redis, wave) >= PER_REQUEST, "the second wave under way"
        )
        kill(active[0].process)
        killed_at = time.monotonic()
        late = submit(world, "c-0", paths(PER_REQUEST, every_fail=3))
        job_ids += late
        watch.add(late)
        wait_until(
            lambda: FINAL_LINE.search(standby.log()),
            "the standby applying events",
            timeout=REDISPATCH_BOUND_S + 5,
        )
        takeover_s = time.monotonic() - killed_at
        jobs = wait_final(world.redis, job_ids, "every job final", timeout=60)
        watch_until = time.monotonic() + WATCH_AFTER_S
        while time.monotonic() < watch_until:
            started_per_job(event_tap, started)
            time.sleep(TICK_S)

    print(f"FIGURE active scheduler killed -> standby applying events: {takeover_s:.2f} s")
    assert takeover_s <= REDISPATCH_BOUND_S, f"standby took {takeover_s:.1f} s to take over"
    assert watch.changes == []
    _assert_each_once(world, jobs, event_tap, started)
    applied_twice = {j: s for j, s in schedulers.final_lines().items() if len(s) > 1}
    assert applied_twice == {}
    assert {j.assigned_agent for j in jobs.values()} == {a.agent_id for a in agents.started}
