"""The scheduler's consume loop: one thread, one pika BlockingConnection.

Every time pika's I/O loop returns, all the deliveries it pulled in together have been
applied by `on_event` (and acked), and the loop runs `after_events` once (a dispatch pass
over the targets those events changed), with no delay: a suite that arrives as a burst of
events is dispatched whole. A burst is bounded in time, though: when the scheduler is
behind, pika hands it up to `prefetch` deliveries at once, and an agent freed by the first
of them would wait for all the others to be applied (100 events at 5-10 ms each on a
loaded machine). So once `max_burst_s` has passed since the last pass, the next delivery
applied is followed by a pass at once, inside the burst.

Once on connecting and then every `tick_s`, the loop also runs `on_tick` (a dispatch pass that
does not wait for events) and touches the health file. Deliveries are acked only after
`on_event` has stored their effect; what can never be applied is dead-lettered. The connection
is re-established with backoff whenever the broker is unreachable or drops it.

A Redis error while applying an event stops consuming at once: the connection is closed, so
RabbitMQ requeues that delivery and every later one it had pushed ahead, in their original
order; the loop waits until Redis answers again (so an outage does not spend the events'
delivery limit), then reconnects. Events are applied in order or not at all: a
`batch.finished` is never applied before a `job.finished` of its batch that failed.

The scheduler queue has a single active consumer: with several scheduler replicas, one
consumes and the others stand by, and RabbitMQ hands the queue to a standby as soon as the
active one's connection closes (a crash, or a missed AMQP heartbeat). Every replica runs the
tick (dispatch and reaper): those steps are atomic in Redis and safe to run side by side.

An event that cannot be decoded or is invalid is dead-lettered at once. An unexpected error
in a handler (a bug) is retried: the delivery is returned after a backoff that grows with its
delivery count, and the quorum queue dead-letters it past `names.DELIVERY_LIMIT`. The loop also
consumes the dead-letter queue and hands each message to `on_dead_letter` (stored in Redis
for operators to list and replay).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import redis
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
)

from qgjob_contract import health, names
from qgjob_contract.amqp import (
    CONNECTION_ERRORS,
    connection_parameters,
    declare_topology,
    migrate_legacy_queues,
)
from qgjob_contract.events import Envelope, EventDecodeError, decode
from qgjob_scheduler.errors import REDIS_ERRORS, InvalidEvent

log = logging.getLogger(__name__)

MAX_RECONNECT_BACKOFF_S = 5.0
MAX_REDIS_BACKOFF_S = 5.0
# Pause after a connection that was established and then lost, before reconnecting.
DROPPED_CONNECTION_PAUSE_S = 1.0
# Longest wait inside pika's I/O loop, so that `stop()` takes effect whatever `tick_s` is.
MAX_WAIT_S = 1.0
# Longest time deliveries are applied without a dispatch pass (see the module docstring).
MAX_BURST_S = 0.05


class Consumer:
    def __init__(
        self,
        url: str,
        *,
        prefetch: int,
        tick_s: float,
        health_file: str,
        on_event: Callable[[Envelope], None],
        after_events: Callable[[], object],
        on_tick: Callable[[], object],
        on_dead_letter: Callable[[bytes, Any], None],
        redis_ready: Callable[[], object],
        max_burst_s: float = MAX_BURST_S,
    ) -> None:
        self._params = connection_parameters(url)
        self._prefetch = prefetch
        self._tick_s = tick_s
        self._health_file = Path(health_file)
        self._on_event = on_event
        self._after_events = after_events
        self._on_tick = on_tick
        self._on_dead_letter = on_dead_letter
        self._redis_ready = redis_ready
        self._migrated = False
        self._next_tick = time.monotonic()  # when the next periodic pass is due
        self._stopping = threading.Event()
        self._applied = 0  # events applied on the current connection
        self._passes = 0
        self._max_burst_s = max_burst_s
        self._last_pass = time.monotonic()

    @property
    def passes(self) -> int:
        """How many times the loop has run `after_events`.

        Once it grows past its value at some moment, a dispatch pass has run over every
        event applied before that moment (tests wait on it).
        """
        return self._passes

    def stop(self) -> None:
        """Ask `run` to return (from a signal handler or another thread)."""
        self._stopping.set()

    def run(self) -> None:
        """Consume until `stop()`, one connection after another.

        A connection that fails on Redis before it applied any event backs off before the
        next (exponentially, up to MAX_REDIS_BACKOFF_S); any other end starts a fresh backoff.
        """
        while not self._stopping.is_set():
            Retrying(
                retry=retry_if_exception_type(redis.RedisError),
                wait=wait_exponential(multiplier=0.2, max=MAX_REDIS_BACKOFF_S),
                stop=self._stop_requested,
                sleep=self._sleep,
                before_sleep=_log_redis_retry,
                retry_error_callback=_stopped,
            )(self._session)

    def _session(self) -> None:
        """Consume on one connection until `stop()`, a dropped connection or a Redis error.

        The connection is closed on the way out, so RabbitMQ requeues what was not acked. A
        Redis error is raised again (to back off) unless events were applied before it.
        """
        self._redis_ready()  # a Redis error backs off (run) before RabbitMQ is touched
        connection = self._connect()
        if connection is None:
            return
        self._applied = 0
        try:
            self._consume(connection)
        except CONNECTION_ERRORS as exc:
            log.warning("AMQP connection lost: %r; reconnecting", exc)
            self._stopping.wait(DROPPED_CONNECTION_PAUSE_S)
        except redis.RedisError:
            if not self._applied:
                raise
        finally:
            _close(connection)

    def _connect(self) -> Any:
        """A connection consuming the scheduler queue, or None when stopped meanwhile."""
        retrying = Retrying(
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            wait=wait_exponential(multiplier=0.5, max=MAX_RECONNECT_BACKOFF_S),
            stop=self._stop_requested,
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if self._stopping.is_set():
                        return None
                    connection = pika.BlockingConnection(self._params)
                    try:
                        channel = connection.channel()
                        declare_topology(channel)
                        if not self._migrated:
                            migrate_legacy_queues(connection)
                            self._migrated = True
                        channel.basic_qos(prefetch_count=self._prefetch)
                        channel.basic_consume(names.SCHEDULER_QUEUE, self._on_message)
                        channel.basic_consume(names.DEAD_LETTER_QUEUE, self._on_dead_message)
                    except BaseException:
                        _close(connection)
                        raise
                    log.info("consuming %s", names.SCHEDULER_QUEUE)
                    return connection
        except CONNECTION_ERRORS:
            return None  # stop was requested while the broker was unreachable
        return None

    def _sleep(self, seconds: float) -> None:
        """A backoff (RabbitMQ or Redis away): the tick goes on meanwhile, so lost agents
        are still reaped and work still dispatched while the broker is down."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if now >= self._next_tick:
                self._tick(consuming=False)
                self._next_tick = time.monotonic() + self._tick_s
            self._stopping.wait(max(0.0, min(deadline, self._next_tick) - time.monotonic()))

    def _stop_requested(self, _state: RetryCallState) -> bool:
        return self._stopping.is_set()

    def _consume(self, connection: Any) -> None:
        # process_data_events returns as soon as it has dispatched deliveries: tick by the
        # clock, not once per call.
        self._next_tick = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() >= self._next_tick:
                self._tick()
                self._next_tick = time.monotonic() + self._tick_s
            wait = min(MAX_WAIT_S, max(0.0, self._next_tick - time.monotonic()))
            connection.process_data_events(time_limit=wait)
            self._pass()

    def _pass(self) -> None:
        """The dispatch pass over what the events applied since the last one changed."""
        _run_guarded(self._after_events, "dispatch after events")
        self._passes += 1
        self._last_pass = time.monotonic()

    def _tick(self, *, consuming: bool = True) -> None:
        """The periodic pass; the health file says the scheduler works only when it succeeded
        while consuming.

        A scheduler whose passes keep failing (Redis unreachable, a bug), or that cannot
        consume (broker unreachable: the pass still runs, from the backoff), lets the file
        age, and its healthcheck reports it unhealthy.
        """
        if not _run_guarded(self._on_tick, "periodic pass") or not consuming:
            return
        try:
            health.touch(self._health_file)
        except OSError as exc:
            log.warning("cannot touch health file %s: %r", self._health_file, exc)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """Apply one delivery, then ack it or dead-letter it.

        A Redis error is raised out of pika's I/O loop, unacked: see the module docstring.
        """
        tag = method.delivery_tag
        try:
            event = decode(body)
        except EventDecodeError as exc:
            log.warning(
                "undecodable message (message_id=%s) dead-lettered: %s", properties.message_id, exc
            )
            channel.basic_nack(tag, requeue=False)
            return
        about = _about(event.payload)
        try:
            self._on_event(event)
        except InvalidEvent as exc:
            log.warning(
                "%s event_id=%s %s dead-lettered: %s",
                event.type.value,
                event.event_id,
                about,
                exc,
            )
            channel.basic_nack(tag, requeue=False)
        except redis.RedisError as exc:
            log.error(
                "Redis failed handling %s event_id=%s %s: %s: %s; consuming stops, this event "
                "and the ones after it go back to the queue in order",
                event.type.value,
                event.event_id,
                about,
                type(exc).__name__,
                exc,
            )
            raise
        except Exception:
            deliveries = _delivery_count(properties) + 1
            backoff = retry_backoff_s(deliveries)
            log.exception(
                "unexpected error handling %s event_id=%s %s (delivery %d of %d); returned "
                "to the queue in %.1f s, dead-lettered past the limit",
                event.type.value,
                event.event_id,
                about,
                deliveries,
                names.DELIVERY_LIMIT + 1,
                backoff,
            )
            self._stopping.wait(backoff)
            channel.basic_nack(tag, requeue=True)
        else:
            self._applied += 1
            channel.basic_ack(tag)
            if time.monotonic() - self._last_pass >= self._max_burst_s:
                self._pass()  # a long burst: see the module docstring

    def _on_dead_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """Store a dead-lettered message (for operators), then ack it.

        A Redis error is raised out of pika's I/O loop, unacked, as for events.
        """
        try:
            self._on_dead_letter(body, properties)
        except redis.RedisError:
            raise
        except Exception:
            log.exception("dead letter (message_id=%s) not stored: kept", properties.message_id)
            self._stopping.wait(1.0)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)


def retry_backoff_s(deliveries: int) -> float:
    """Seconds to wait before returning a delivery whose handler failed (pure): 0.2 s,
    doubling per delivery, at most 3 s."""
    return float(min(0.2 * 2 ** max(deliveries - 1, 0), 3.0))


def _delivery_count(properties: Any) -> int:
    """How often the quorum queue delivered the message before (`x-delivery-count`)."""
    headers = getattr(properties, "headers", None) or {}
    count = headers.get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


def _run_guarded(step: Callable[[], object], what: str) -> bool:
    """Run a step of the loop; a failure is logged, and the loop goes on. True if it ran."""
    try:
        step()
    except REDIS_ERRORS as exc:
        log.warning("%s failed, Redis unreachable: %r", what, exc)
    except Exception:
        log.exception("%s failed", what)
    else:
        return True
    return False


def _about(payload: dict[str, Any]) -> str:
    """The ids a log line about an event names, read defensively (it may be invalid)."""
    parts = [
        f"{name}={payload[name]}" for name in ("job_id", "batch_id", "agent_id") if name in payload
    ]
    jobs = payload.get("jobs")
    if isinstance(jobs, list):
        ids = [str(job.get("job_id")) for job in jobs if isinstance(job, dict)]
        parts.append("job_ids=" + ",".join(ids))
    return " ".join(parts)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("RabbitMQ unreachable (%r); retrying in %.1f s", error, delay)


def _log_redis_retry(state: RetryCallState) -> None:
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("consuming again in %.1f s, after the Redis error", delay)


def _stopped(_state: RetryCallState) -> None:
    """`stop()` was called while backing off after a Redis error: `run` returns."""


def _close(connection: Any) -> None:
    if connection.is_open:
        try:
            connection.close()
        except CONNECTION_ERRORS:
            log.debug("closing a broken AMQP connection failed", exc_info=True)
