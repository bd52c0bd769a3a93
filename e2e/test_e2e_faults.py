"""Faults through the real compose stack: a killed agent's jobs run elsewhere within 15 s,
two scheduler replicas under load dispatch nothing twice and corrupt nothing, and the chaos
run (agents killed and crashed, RabbitMQ, Redis and the scheduler restarted) ends every job
exactly once with the outcome its test path predicts; and while RabbitMQ is stopped the API
answers 503 and `qgjob submit --wait` exits 4 (server error) with one line, then the stack
serves again once RabbitMQ is back.

These tests stop and kill containers, so they run on a stack of their own (its own compose
project), not on the session's shared one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.conftest import PROJECT, Stack, wait_until
from e2e.faults import (
    Faults,
    all_final,
    compose,
    containers,
    docker,
    expected_outcome,
    fault_stack_up,
    final_transitions,
    jobs_by_id,
    redispatch_seconds,
    run_chaos,
    submit_suite,
)

AGENTS = 4


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[Stack]:
    with fault_stack_up(f"{PROJECT}-faults", AGENTS, "faults-compose.log") as stack:
        yield stack


def _live_emulators(stack: Stack) -> int:
    try:
        agents = stack.agents()
    except (AssertionError, OSError):
        return 0
    return sum(1 for a in agents if a["alive"] and a["target"] == "emulator")


def _restore(stack: Stack) -> None:
    """Every service up again, AGENTS live emulator agents (after containers were killed)."""
    stack.compose_up("--scale", f"agent-emulator={AGENTS}")
    wait_until(lambda: _live_emulators(stack) >= AGENTS, timeout=60, what="agents back")


def test_a_killed_agents_jobs_run_on_another_agent_within_15_s(fault_stack: Stack) -> None:
    _restore(fault_stack)
    paths = [f"tests/kill/t{i:03d}.spec.js" for i in range(200)]  # about 10 s of work
    job_ids = submit_suite(fault_stack, "org-kill", "2.0.0", paths)

    dead_agent, unfinished, killed_at = Faults().kill_busy_agent(fault_stack, job_ids)
    assert unfinished, "the agent had finished its batch before it was killed"

    def first_elsewhere() -> float | None:
        jobs = jobs_by_id(fault_stack, unfinished)
        times = [
            t
            for job in jobs.values()
            if (t := redispatch_seconds(job, dead_agent, killed_at)) is not None
        ]
        return min(times) if times else None

    redispatch = wait_until(first_elsewhere, timeout=40, what="the dead agent's jobs elsewhere")
    print(
        f"\nagent {dead_agent} killed: its first unfinished job ran elsewhere after "
        f"{redispatch:.1f} s",
        file=sys.stderr,
    )
    assert redispatch <= 15

    final = wait_until(lambda: all_final(fault_stack, job_ids), timeout=120, what="every job final")
    assert {job["status"] for job in final.values()} == {"passed"}
    # jobs the agent had not finished when it died (some may have been reported just before)
    requeued = [
        job_id for job_id in unfinished if any(h["retried"] for h in final[job_id]["history"])
    ]
    assert requeued
    for job_id in requeued:
        job = final[job_id]
        assert job["assigned_agent"] != dead_agent
        assert job["attempts"] == 2
        attempt, last = job["history"]  # every attempt is listed, the final one included
        assert (attempt["agent_id"], attempt["reason"]) == (dead_agent, "agent_lost")
        assert (last["agent_id"], last["outcome"]) == (job["assigned_agent"], "passed")
    for job_id in set(unfinished) - set(requeued):  # reported before the kill
        assert (final[job_id]["assigned_agent"], final[job_id]["attempts"]) == (dead_agent, 1)


def test_two_scheduler_replicas_under_load_dispatch_nothing_twice(fault_stack: Stack) -> None:
    _restore(fault_stack)
    fault_stack.compose_up("--scale", "scheduler=2", "--scale", f"agent-emulator={AGENTS}")
    assert len(compose(fault_stack, "ps", "-q", "scheduler").splitlines()) == 2
    paths = [f"tests/replicas/t{i:03d}{'_fail' if i % 9 == 0 else ''}.spec.js" for i in range(150)]
    job_ids: list[str] = []
    for v in range(3):  # three suites, one request each, while the first ones run
        job_ids += submit_suite(fault_stack, "org-two", f"3.{v}.0", paths[v * 50 : (v + 1) * 50])
    by_id = dict(zip(job_ids, paths, strict=True))

    final = wait_until(lambda: all_final(fault_stack, job_ids), timeout=180, what="every job final")

    assert {job_id: job["status"] for job_id, job in final.items()} == {
        job_id: expected_outcome(path) for job_id, path in by_id.items()
    }
    # one dispatch per job: a single attempt (its history is that one), one batch; one final
    # transition
    assert {job["attempts"] for job in final.values()} == {1}
    assert all(len(job["history"]) == 1 for job in final.values())
    finals = final_transitions(compose(fault_stack, "logs", "--no-color", "scheduler"))
    assert {finals[job_id] for job_id in job_ids} == {1}
    fault_stack.compose_up("--scale", "scheduler=1", "--scale", f"agent-emulator={AGENTS}")


def test_chaos_every_job_ends_exactly_once_with_its_outcome(fault_stack: Stack) -> None:
    _restore(fault_stack)
    report = run_chaos(fault_stack, jobs=300, timeout=240)
    print("\n" + report.json_line(), file=sys.stderr)

    assert report.not_final == []
    assert report.wrong == []
    assert report.double_final == 0
    assert report.dead_letters == 0
    assert report.redispatch_s, "the killed agent's unfinished jobs never ran elsewhere"
    assert max(report.redispatch_s) <= 15


def _readyz(stack: Stack, status: int) -> dict[str, Any] | None:
    """The body of /readyz if it answers `status` (with JSON), else None (a poll's probe)."""
    answer = stack.get("/readyz")
    if answer.status_code != status:
        return None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        return None  # not the API's answer yet (a proxy, a restarting server): poll on
    return body


def test_submit_wait_exits_4_while_rabbitmq_is_stopped(fault_stack: Stack) -> None:
    """The real API answers 503 while its broker is away: the CLI's submit, retried, ends
    with exit 4 and one `qgjob: error:` line. RabbitMQ is started again whatever happened
    (and every test of this module begins with `_restore`); when the test passes, the stack
    has also served a submit --wait after the outage."""
    _restore(fault_stack)
    (rabbitmq,) = containers(fault_stack, "rabbitmq")
    docker("stop", rabbitmq)
    try:
        body = wait_until(
            lambda: _readyz(fault_stack, 503), timeout=60, what="/readyz to answer 503"
        )
        checks = body["checks"]
        assert checks["redis"] == "ok", body
        assert checks["rabbitmq"] != "ok", body  # the broker is what is missing
        done = fault_stack.qgjob(
            "submit",
            "--org-id=org-outage",
            "--app-version-id=4.0.0",
            "--test=tests/outage/a.spec.js",
            "--wait",
        )
    finally:
        docker("start", rabbitmq)
        wait_until(lambda: _readyz(fault_stack, 200), timeout=120, what="/readyz to answer 200")
    assert done.returncode == 4, (done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()  # one line, no traceback, no job accepted
    assert line.startswith("qgjob: error: "), line
    assert "HTTP 503" in line, line  # the API's own answer, passed on
    assert "RabbitMQ" in line, line
    assert done.stdout == ""

    again = fault_stack.qgjob(
        "submit",
        "--org-id=org-outage",
        "--app-version-id=4.0.1",
        "--test=tests/outage/b.spec.js",
        "--wait",
        "--timeout=120",
    )
    assert again.returncode == 0, (again.stdout, again.stderr)
    _restore(fault_stack)
