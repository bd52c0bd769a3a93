"""The heartbeat thread: `agent.heartbeat` at start, every interval, and `offline` at exit.

Once a warm stop is requested every heartbeat says `offline` (see AgentStatus.stop).
It has its own publisher (pika connections are not thread-safe). A publish that fails is
logged and tried again at the next beat: the broker may be restarting. After each confirmed
heartbeat it touches the health file the container's healthcheck reads. `beat_soon` cuts the
wait short: after a batch aborts, the scheduler learns from the next heartbeat's
`last_batch_id` that the agent is free, without waiting for a whole interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from qgjob_agent.publisher import EventPublisher
from qgjob_agent.status import AgentStatus
from qgjob_contract import health
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import EventType, make_event, utc_now
from qgjob_contract.statuses import AgentState

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        publisher: EventPublisher,
        status: AgentStatus,
        *,
        interval_s: float,
        health_file: Path,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self._publisher = publisher
        self._status = status
        self._interval_s = interval_s
        self._health_file = health_file
        self._now = now
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set to end the current wait early
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send the final `offline` heartbeat and end the thread (waits up to timeout_s)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def beat_soon(self) -> None:
        """Send the next heartbeat now instead of at the end of the interval (any thread)."""
        self._wake.set()

    def beat(self, state: AgentState | None = None) -> bool:
        """Publish one heartbeat; True when the broker confirmed it.

        `state` overrides the agent's state: the final heartbeat at exit says `offline`, and
        removes the health file instead of touching it.
        """
        # Held until the broker confirmed: see AgentStatus, heartbeats stay in order with
        # batch.finished. One connection attempt (heartbeat_publisher) bounds the wait.
        with self._status.reporting:
            payload = self._status.heartbeat(self._now(), state)
            try:
                self._publisher.publish(make_event(EventType.AGENT_HEARTBEAT, payload))
            except PublishError as exc:
                log.warning("agent_id=%s: heartbeat not sent: %s", self._status.agent_id, exc)
                return False
            except Exception:
                log.exception("agent_id=%s: heartbeat failed", self._status.agent_id)
                return False
        try:
            if state == AgentState.OFFLINE:
                self._health_file.unlink(missing_ok=True)
            else:
                health.touch(self._health_file)
        except OSError as exc:
            log.warning(
                "agent_id=%s: health file %s: %s", self._status.agent_id, self._health_file, exc
            )
        return True

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self.beat()
                self._wake.wait(self._interval_s)
                self._wake.clear()
            self.beat(AgentState.OFFLINE)
        finally:
            self._publisher.close()
