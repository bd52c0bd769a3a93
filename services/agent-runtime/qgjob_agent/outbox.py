"""The agent's outbox: every report leaves through one thread, in order, broker or not.

The worker thread (job.started, job.finished, batch.finished) and the heartbeat thread
(agent.heartbeat) `put` envelopes here and go on at once; the outbox thread publishes them
one by one, in the order they were put, each with publisher confirms. While the broker is
down (a restart), nothing is lost: the head is retried with backoff until the broker
confirms it, and the batch keeps running. A publish that was delivered but whose confirm was
lost is sent again: the scheduler applies each report once (job transitions, and `seq` for
the agent's state).

Reports coalesce where a later one says all an earlier one did:
- a heartbeat put while another heartbeat waits at the tail replaces it (the newer snapshot
  says all the older one did);
- a `batch.finished` put while job events of its batch still wait (not in flight) drops the
  `job.started` and `job.finished` of every job it carries a report for: its `reports` repeat
  them (started_at, finished_at, result), and the scheduler applies them in the same step
  that ends the batch (or, when a heartbeat ended the batch first, to the reported jobs
  within the report grace). The job events of a job it does not report (an aborted batch) stay.
So when the agent runs tests faster than the broker confirms reports (tests of a few ms), a
batch costs one publish and one event applied instead of two per job; when it keeps up, every
report leaves at once, as before. An outage grows the outbox only by one `batch.finished` per
batch run meanwhile, plus its heartbeat. While idle the thread services the connection's AMQP
heartbeats, so the broker does not drop it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from qgjob_agent.publisher import EventPublisher
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import Envelope, EventType

# The job events a batch.finished's `reports` repeat.
_JOB_EVENTS = frozenset({EventType.JOB_STARTED, EventType.JOB_FINISHED})

log = logging.getLogger(__name__)

IDLE_SERVICE_S = 1.0
MAX_BACKOFF_S = 5.0


class Outbox:
    def __init__(
        self,
        publisher: EventPublisher,
        *,
        agent_id: str,
        on_delivered: Callable[[Envelope], None] | None = None,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self._publisher = publisher
        self._agent_id = agent_id
        self._on_delivered = on_delivered
        self._max_backoff_s = max_backoff_s
        self._queue: deque[Envelope] = deque()
        self._in_flight = False  # the head is being published
        self._closing = False
        self._closed = threading.Event()  # set with _closing: cuts a backoff short
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, envelope: Envelope) -> None:
        """Queue a report; never blocks on the broker. See the module docstring for what a
        new report replaces."""
        with self._cond:
            tail = self._queue[-1] if self._queue else None
            replaceable = tail is not None and not (self._in_flight and len(self._queue) == 1)
            if (
                envelope.type is EventType.AGENT_HEARTBEAT
                and tail is not None
                and tail.type is EventType.AGENT_HEARTBEAT
                and replaceable
            ):
                self._queue[-1] = envelope
            else:
                if envelope.type is EventType.BATCH_FINISHED:
                    self._drop_reported(envelope)
                self._queue.append(envelope)
            self._cond.notify()

    def _drop_reported(self, finished: Envelope) -> None:
        """Drop the waiting job events that `finished` (a batch.finished) repeats; the head
        stays while it is being published. Called with the lock held."""
        batch_id = finished.payload.get("batch_id")
        reported = finished.payload.get("reports") or {}
        if not reported:
            return
        head = self._queue[0] if self._in_flight and self._queue else None
        kept = deque(
            event
            for event in self._queue
            if event is head
            or event.type not in _JOB_EVENTS
            or event.payload.get("batch_id") != batch_id
            or event.payload.get("job_id") not in reported
        )
        if len(kept) < len(self._queue):
            log.debug(
                "batch_id=%s: %d job event(s) not sent, its batch.finished carries them",
                batch_id,
                len(self._queue) - len(kept),
            )
            self._queue = kept

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, drain_timeout_s: float) -> int:
        """Deliver what is queued (up to `drain_timeout_s`), then stop; returns how many
        reports could not be delivered (logged)."""
        deadline = time.monotonic() + drain_timeout_s
        with self._cond:
            while self._queue and time.monotonic() < deadline:
                self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            self._closing = True
            self._closed.set()
            left = list(self._queue)
            self._cond.notify_all()
        self._thread.join(timeout=max(1.0, deadline - time.monotonic()))
        self._publisher.close()
        if left:
            log.error(
                "agent_id=%s: stopping with %d report(s) undelivered: %s",
                self._agent_id,
                len(left),
                ", ".join(f"{e.type.value} event_id={e.event_id}" for e in left),
            )
        return len(left)

    def _next(self) -> Envelope | None:
        """The head, once there is one (None when closing); services the connection meanwhile."""
        while True:
            with self._cond:
                if self._closing:
                    return None
                if self._queue:
                    self._in_flight = True
                    return self._queue[0]
                self._cond.wait(IDLE_SERVICE_S)
                idle = not self._queue
            if idle:
                self._publisher.idle()

    def _loop(self) -> None:
        backoff = 0.0
        while (head := self._next()) is not None:
            try:
                self._publisher.publish(head)
            except PublishError as exc:
                backoff = min(max(backoff * 2, 0.2), self._max_backoff_s)
                log.warning(
                    "agent_id=%s: %s event_id=%s not delivered (%s); %d report(s) waiting, "
                    "retrying in %.1f s",
                    self._agent_id,
                    head.type.value,
                    head.event_id,
                    exc,
                    self.pending(),
                    backoff,
                )
                with self._cond:
                    self._in_flight = False
                self._closed.wait(backoff)
                continue
            except Exception:
                log.exception(
                    "agent_id=%s: publishing event_id=%s crashed", self._agent_id, head.event_id
                )
                with self._cond:
                    self._in_flight = False
                self._closed.wait(1.0)
                continue
            backoff = 0.0
            with self._cond:
                # the head may have been replaced by a newer heartbeat while in flight only
                # if it was not alone: then it is still queue[0] (tail replaced)
                if self._queue and self._queue[0] is head:
                    self._queue.popleft()
                self._in_flight = False
                self._cond.notify_all()
            if self._on_delivered is not None:
                self._on_delivered(head)
