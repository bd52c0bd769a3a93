"""The scheduler against real RabbitMQ and Redis: a backlog of events does not hold back
dispatch (`consumer.MAX_BURST_S`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from qgjob_contract.names import Keys
from qgjob_contract.targets import Target

from .conftest import SYNC_AGENT, World, running_scheduler, scheduler_config, wait_until


def test_an_agent_freed_early_in_a_long_burst_of_events_is_served_before_the_burst_ends(
    world: World, redis_url: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    """A backlog reaches the scheduler as one burst (up to the prefetch): the dispatch pass
    must not wait until all of it is applied (`consumer.MAX_BURST_S`)."""
    world.heartbeat("emu-1")
    [job_id] = world.submit_suite("v1", 1)
    backlog = 400
    for _ in range(backlog):  # heartbeats of another target's agent, queued behind the job
        last_seq = world.heartbeat(SYNC_AGENT, target=Target.BROWSERSTACK, lease=False)
    config = replace(
        scheduler_config(redis_url, rabbitmq_url, tmp_path / "alive"), prefetch=backlog + 10
    )

    with running_scheduler(world, config):
        wait_until(
            lambda: world.redis.hget(Keys.agent(SYNC_AGENT), "seq") == str(last_seq),
            "the backlog applied",
        )
        assigned_at = wait_until(lambda: world.job(job_id).assigned_at, "the job assigned")
        backlog_done_at = world.agent(SYNC_AGENT).last_heartbeat

    assert backlog_done_at is not None
    assert datetime.fromisoformat(assigned_at) < datetime.fromisoformat(backlog_done_at)
