"""Composition root: `qgjob-scheduler` (also `python -m qgjob_scheduler`)."""

from __future__ import annotations

import logging
import signal
from functools import partial
from types import FrameType
from typing import Any

import redis

from qgjob_contract import deadletters, leases
from qgjob_contract.env import configure_logging
from qgjob_contract.events import EventType, decode
from qgjob_scheduler.config import Config
from qgjob_scheduler.consumer import Consumer
from qgjob_scheduler.dispatch import Dispatcher, Requeuer, enqueue_batch
from qgjob_scheduler.errors import ConfigError
from qgjob_scheduler.handlers import EventHandler
from qgjob_scheduler.jobcontrol import Expirer
from qgjob_scheduler.planning import POLICIES
from qgjob_scheduler.reaper import Reaper
from qgjob_scheduler.retention import Sweeper
from qgjob_scheduler.snapshot import Planner

log = logging.getLogger(__name__)

REDIS_SOCKET_TIMEOUT_S = 5.0


def redis_clients(config: Config) -> tuple[redis.Redis, redis.Redis]:
    """(records client with decoded responses, RQ client with raw bytes)."""
    options = {
        "socket_timeout": REDIS_SOCKET_TIMEOUT_S,
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_S,
    }
    store = redis.Redis.from_url(config.redis_url, decode_responses=True, **options)
    rq_connection = redis.Redis.from_url(config.redis_url, **options)
    return store, rq_connection


def create_consumer(config: Config, store: redis.Redis, rq_connection: redis.Redis) -> Consumer:
    """Wire the scheduler: `store` must decode responses, `rq_connection` must not."""
    requeuer = Requeuer(
        store, rq_connection, policy=config.retry_policy(), queue_ttl_s=config.queue_ttl_s
    )
    sweeper = Sweeper(store, retention_s=config.job_retention_s)
    dispatcher = Dispatcher(
        store,
        rq_connection,
        requeuer,
        enqueue=partial(
            enqueue_batch,
            result_ttl=config.job_retention_s,
            failure_ttl=config.job_retention_s,
        ),
        batch_max=config.batch_max_jobs,
        agent_timeout_s=config.agent_timeout_s,
        planner=Planner(
            POLICIES[config.policy],
            default_test_s=config.default_test_s,
            default_install_s=config.default_install_s,
            aging_s=config.aging_s,
            batch_fill_s=config.batch_fill_s,
        ),
    )
    reaper = Reaper(
        store,
        requeuer,
        agent_timeout_s=config.agent_timeout_s,
        report_grace_s=config.report_grace_s,
    )
    handler = EventHandler(
        store, take_back=dispatcher.take_back, requeuer=requeuer, queue_ttl_s=config.queue_ttl_s
    )
    expirer = Expirer(store)

    def dispatch_changed_targets() -> None:
        dispatcher.dispatch_targets(handler.take_dirty())

    def tick() -> None:
        """Lost agents first (their jobs are then dispatched in the same pass), then every
        target, then the retention sweep; raises when one failed (the scheduler's health
        depends on it)."""
        try:
            reaper.tick()
            expirer.tick()
        finally:
            dispatcher.dispatch_all()
            sweeper.tick()

    def store_dead_letter(body: bytes, properties: Any) -> None:
        letter = deadletters.from_message(body, properties, leases.redis_now_ms(store))
        deadletters.store(store, letter)
        log.warning(
            "dead letter stored: %s event_id=%s (%s in %s)",
            letter.type or "undecodable",
            letter.event_id,
            letter.reason,
            letter.queue,
        )
        if letter.type == EventType.JOBS_SUBMITTED.value:
            rejoin(body, letter.event_id)

    def rejoin(body: bytes, event_id: str) -> None:
        """Accepted jobs must not wait in no group: one more try to join them (idempotent;
        the entry stays listed for an operator either way)."""
        try:
            handler.handle(decode(body))
        except Exception as exc:
            log.error(
                "jobs.submitted event_id=%s dead-lettered and joining its jobs failed again "
                "(%r): they wait for a replay",
                event_id,
                exc,
            )
        else:
            log.warning("jobs.submitted event_id=%s dead-lettered: jobs joined anyway", event_id)

    return Consumer(
        config.rabbitmq_url,
        prefetch=config.prefetch,
        tick_s=config.tick_s,
        health_file=config.health_file,
        on_event=handler.handle,
        after_events=dispatch_changed_targets,
        on_tick=tick,
        on_dead_letter=store_dead_letter,
        redis_ready=store.ping,
    )


def main() -> None:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        raise SystemExit(f"qgjob-scheduler: {exc}") from exc
    # pika logs every connection step at INFO; the consumer reports what matters.
    configure_logging(config.log_level)
    store, rq_connection = redis_clients(config)
    consumer = create_consumer(config, store, rq_connection)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        consumer.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "qgjob-scheduler starting: batch_max_jobs=%d batch_fill_s=%s agent_timeout_s=%s tick_s=%s",
        config.batch_max_jobs,
        config.batch_fill_s,
        config.agent_timeout_s,
        config.tick_s,
    )
    try:
        consumer.run()
    finally:
        store.close()
        rq_connection.close()
    log.info("qgjob-scheduler stopped")
