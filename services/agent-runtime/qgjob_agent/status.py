"""What the agent is doing, shared by the worker thread and the heartbeat thread."""

from __future__ import annotations

import threading

from qgjob_contract.events import AgentCounters, AgentHeartbeat, BatchFinished
from qgjob_contract.statuses import AgentState
from qgjob_contract.targets import Target


class AgentStatus:
    """The agent's state and counters, behind one lock.

    `lock` is re-entrant and public on purpose: a thread that publishes an event about the
    state holds it from reading the state until the broker has confirmed the event, so the
    events reach the scheduler in the order the state changed (a heartbeat saying `busy` can
    never arrive after the `batch.finished` that made the agent idle).
    """

    def __init__(self, agent_id: str, target: str) -> None:
        self.agent_id = agent_id
        self.target = Target(target)
        self.lock = threading.RLock()
        self._state = AgentState.IDLE
        self._installed_app_version: str | None = None
        self._installs = 0
        self._jobs_run = 0
        self._batch_id: str | None = None  # the batch running now
        self._last_batch_id: str | None = None  # the last batch that ended, however it ended

    @property
    def installed_app_version(self) -> str | None:
        with self.lock:
            return self._installed_app_version

    def begin_batch(self, batch_id: str) -> None:
        with self.lock:
            self._state = AgentState.BUSY
            self._batch_id = batch_id

    def record_install(self, app_version_id: str | None) -> None:
        """An install succeeded (the version), or failed (None: the device state is unknown)."""
        with self.lock:
            self._installed_app_version = app_version_id
            if app_version_id is not None:
                self._installs += 1

    def record_job_finished(self) -> None:
        with self.lock:
            self._jobs_run += 1

    def end_batch(self, batch_id: str) -> BatchFinished:
        """The batch is over, finished or aborted: the agent is idle, and says so in heartbeats."""
        with self.lock:
            self._state = AgentState.IDLE
            self._batch_id = None
            self._last_batch_id = batch_id
            return BatchFinished(**self._counters(AgentState.IDLE), batch_id=batch_id)

    def heartbeat(self, sent_at: str, state: AgentState | None = None) -> AgentHeartbeat:
        """A heartbeat payload; `state` overrides the current state (offline at shutdown)."""
        with self.lock:
            return AgentHeartbeat(
                **self._counters(state or self._state),
                current_batch_id=self._batch_id,
                last_batch_id=self._last_batch_id,
                sent_at=sent_at,
            )

    def _counters(self, state: AgentState) -> AgentCounters:
        return AgentCounters(
            agent_id=self.agent_id,
            target=self.target,
            state=state,
            installed_app_version=self._installed_app_version,
            installs=self._installs,
            jobs_run=self._jobs_run,
        )
