"""The heartbeat thread: the lease, renewed in Redis, and `agent.heartbeat` reports.

Every interval (and at once when `beat_soon` asks) it
1. renews the agent's lease straight in Redis (`leases.LeaseRenewer`, stamped with Redis
   TIME): the scheduler's only liveness signal, which no backlog of job events can delay;
   after each renewal that succeeded it touches the health file the healthcheck reads;
2. puts an `agent.heartbeat` (state, counters, `last_batch_id`) into the outbox, which
   publishes it in order with the agent's other reports.
A renewal that fails (Redis restarting) is logged and tried again at the next beat. Once a
warm stop is requested every heartbeat says `offline` (see AgentStatus.stop); at exit a last
`offline` heartbeat is put and the health file removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import redis

from qgjob_agent.outbox import Outbox
from qgjob_agent.status import AgentStatus
from qgjob_contract import health
from qgjob_contract.events import EventType, make_event, utc_now
from qgjob_contract.leases import LeaseRenewer
from qgjob_contract.statuses import AgentState

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        outbox: Outbox,
        status: AgentStatus,
        lease: LeaseRenewer,
        *,
        interval_s: float,
        health_file: Path,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self._outbox = outbox
        self._status = status
        self._lease = lease
        self._interval_s = interval_s
        self._health_file = health_file
        self._now = now
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set to end the current wait early
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Put the final `offline` heartbeat and end the thread (waits up to timeout_s)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def beat_soon(self) -> None:
        """Send the next heartbeat now instead of at the end of the interval (any thread)."""
        self._wake.set()

    def renew(self) -> bool:
        """Renew the lease; True when Redis took it (then the health file is touched)."""
        try:
            self._lease.renew()
        except redis.RedisError as exc:
            log.warning("agent_id=%s: lease not renewed: %r", self._status.agent_id, exc)
            return False
        try:
            health.touch(self._health_file)
        except OSError as exc:
            log.warning(
                "agent_id=%s: health file %s: %s", self._status.agent_id, self._health_file, exc
            )
        return True

    def report(self, state: AgentState | None = None) -> None:
        """Put one heartbeat into the outbox; `state` overrides the agent's (offline at exit)."""
        with self._status.reporting:  # see AgentStatus: snapshots leave in order
            payload = self._status.heartbeat(self._now(), state)
            self._outbox.put(make_event(EventType.AGENT_HEARTBEAT, payload))

    def beat(self) -> None:
        self.renew()
        self.report()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.beat()
            except Exception:
                log.exception("agent_id=%s: heartbeat failed", self._status.agent_id)
            self._wake.wait(self._interval_s)
            self._wake.clear()
        self.report(AgentState.OFFLINE)
        self._health_file.unlink(missing_ok=True)
