"""The agent's composition root: config, driver, outbox, heartbeat thread, RQ worker.

One process = one device slot = one RQ SimpleWorker (no fork per job) listening on its own
queue only: the scheduler hands a batch to an agent it knows is free, so no other queue may
feed it. Each process is a new instance (a uuid): its lease in Redis names it, so the
scheduler tells a restarted agent from the one that died. SIGTERM (or SIGINT) stops it
warmly: from that moment the agent reports itself `offline`, so the scheduler binds no new
batch to it; a running batch finishes (its batch.finished says `offline`), no other is
started, then a final `offline` heartbeat is sent and the outbox is drained.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from qgjob_agent import runtime
from qgjob_agent.config import Config
from qgjob_agent.drivers.base import Driver
from qgjob_agent.errors import ConfigError
from qgjob_agent.heartbeat import Heartbeat
from qgjob_agent.outbox import Outbox
from qgjob_agent.plugin import TargetPlugin
from qgjob_agent.publisher import outbox_publisher
from qgjob_agent.runner import BatchRunner
from qgjob_agent.status import AgentStatus
from qgjob_contract import names
from qgjob_contract.env import configure_logging
from qgjob_contract.leases import LeaseRenewer
from qgjob_contract.names import Keys
from qgjob_contract.records import CANCEL_REQUESTED_AT

log = logging.getLogger(__name__)

REDIS_WAIT_S = 60.0


def main(plugin: TargetPlugin) -> None:
    """Console-script entry point of a target package."""
    try:
        config = Config.from_env(plugin)
        driver = plugin.make_driver(config)  # a driver checks its own settings here
    except ConfigError as exc:
        sys.exit(f"qgjob agent ({plugin.target.value}): configuration error: {exc}")
    # pika logs every connection it opens at INFO; the agent opens one per batch.
    configure_logging(config.log_level)
    run(config, driver)


# How long a stopping agent waits for its outbox to deliver its last reports.
DRAIN_TIMEOUT_S = 10.0


def run(config: Config, driver: Driver) -> None:
    status = AgentStatus(config.agent_id, config.target.value)
    store = redis.Redis.from_url(
        config.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
    )
    outbox = Outbox(outbox_publisher(config.rabbitmq_url), agent_id=config.agent_id)
    heartbeat = Heartbeat(
        outbox,
        status,
        LeaseRenewer(store, config.agent_id, status.instance_id),
        interval_s=config.heartbeat_s,
        health_file=config.health_file,
    )

    def still_bound(batch_id: str) -> bool:
        """Does the scheduler still hold `batch_id` bound to this agent? False only when its
        record names no batch or another one: the batch was requeued (its jobs run elsewhere)."""
        try:
            bound = store.hget(Keys.agent(config.agent_id), "current_batch_id")
        except redis.RedisError:
            return True  # cannot tell: keep running (the scheduler fences the reports)
        return bound is None or bound == batch_id

    def cancelled(job_id: str) -> bool:
        """Was a cancel of `job_id` asked (the API stamps `cancel_requested_at`)?"""
        try:
            return bool(store.hget(Keys.job(job_id), CANCEL_REQUESTED_AT))
        except redis.RedisError:
            return False  # cannot tell: the test goes on (the scheduler still ends it once)

    runner = BatchRunner(
        driver,
        outbox,
        status,
        still_bound=still_bound,
        cancelled=cancelled,
        test_timeout_s=config.test_timeout_s,
    )
    runtime.set_context(runtime.AgentContext(runner, heartbeat.beat_soon))
    connection = redis.Redis.from_url(config.redis_url)  # RQ needs bytes: no decode_responses
    try:
        _wait_for_redis(connection)
        log.info(
            "agent_id=%s starting: target %s, driver %s, instance %s",
            config.agent_id,
            config.target.value,
            driver.name,
            status.instance_id,
        )
        outbox.start()
        heartbeat.renew()  # the new instance's lease first: it ends a former one's batch
        heartbeat.start()
        try:
            _work_until_stopped(config, status, connection)
        finally:
            heartbeat.stop()
    finally:
        outbox.close(DRAIN_TIMEOUT_S)
        connection.close()
        store.close()
        runtime.set_context(None)
    log.info("agent_id=%s stopped", config.agent_id)


def _work_until_stopped(config: Config, status: AgentStatus, connection: redis.Redis) -> None:
    """Run the RQ worker until a warm stop; start it again when it quits on its own.

    RQ's worker quits on an error it does not handle, such as Redis going away while it
    finishes a job; the agent then waits for Redis (its lease renewals and outbox go on
    meanwhile) and works again, instead of exiting.
    """
    while True:
        worker = AgentWorker(
            status,
            [names.agent_queue(config.agent_id)],
            name=config.agent_id,
            connection=connection,
            serializer=JSONSerializer,
        )
        try:
            _clear_stale_registration(worker)
            worker.work(logging_level=config.log_level)
        except redis.exceptions.RedisError as exc:  # raised by RQ's own teardown, say
            log.error("agent_id=%s: the RQ worker failed on Redis: %r", config.agent_id, exc)
        if status.stopping:
            return
        log.error(
            "agent_id=%s: the RQ worker quit without a stop request; starting it again "
            "once Redis answers",
            config.agent_id,
        )
        if not _redis_back_before_a_stop(connection, status):
            return


def _redis_back_before_a_stop(connection: redis.Redis, status: AgentStatus) -> bool:
    """Wait until Redis answers (True), or a warm stop is requested first (False)."""
    delay = 0.2
    while not status.stopping:
        try:
            connection.ping()
        except redis.exceptions.RedisError:
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            return True
    return False


class AgentWorker(SimpleWorker):
    """RQ's SimpleWorker that tells the agent's status when a warm stop is requested.

    RQ calls `handle_warm_shutdown_request` from its SIGTERM/SIGINT handler (its `shutdown`
    command sends SIGINT), before it decides to finish the running job and then leave.
    """

    def __init__(self, status: AgentStatus, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._agent_status = status

    def handle_warm_shutdown_request(self) -> None:
        self._agent_status.stop()  # runs in a signal handler: stop() takes no lock
        log.info("agent_id=%s: stopping; reporting offline from now on", self.name)


@retry(
    retry=retry_if_exception_type(redis.exceptions.ConnectionError),
    stop=stop_after_delay(REDIS_WAIT_S),
    wait=wait_exponential(multiplier=0.2, max=5.0),
    reraise=True,
)
def _wait_for_redis(connection: redis.Redis) -> None:
    connection.ping()


def _clear_stale_registration(worker: SimpleWorker) -> None:
    """Forget an RQ worker of our name left by a previous run that did not stop cleanly.

    The agent id is unique per agent, so such a worker is this agent's own past (a container
    killed and restarted keeps its hostname); RQ would otherwise refuse to start for minutes.
    """
    connection = worker.connection
    if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
        log.warning(
            "agent_id=%s: replacing an RQ worker of the same name left by an unclean stop",
            worker.name,
        )
        worker.register_death()  # type: ignore[no-untyped-call]
