"""What the agent is doing, shared by the worker thread and the heartbeat thread."""

from __future__ import annotations

import threading

from qgjob_contract.events import AgentCounters, AgentHeartbeat, BatchFinished
from qgjob_contract.statuses import AgentState
from qgjob_contract.targets import Target


class AgentStatus:
    """The agent's state and counters, and the two locks that keep its reports in order.

    - A private state lock, held only while fields are read or changed, never across I/O: the
      worker thread records its progress without waiting for a heartbeat being published.
    - `reporting`, public: a thread that publishes the agent's state (a heartbeat, or the
      end of a batch: `end_batch` then batch.finished) holds it from taking the snapshot
      until the broker has confirmed the event. Snapshots therefore reach the scheduler in
      the order they were taken: a heartbeat saying `busy` can never arrive after the
      batch.finished that made the agent idle. job.started and job.finished carry no state,
      so the worker thread publishes them without it.

    Once `stop` is called the agent reports itself `offline` in every heartbeat and
    batch.finished: the scheduler then hands it no further batch while it finishes the
    running one.
    """

    def __init__(self, agent_id: str, target: str) -> None:
        self.agent_id = agent_id
        self.target = Target(target)
        self.reporting = threading.Lock()
        self._lock = threading.Lock()
        # A plain flag, not guarded by the lock: `stop` runs in a signal handler, which may
        # interrupt the main thread while it holds the lock.
        self._stopping = False
        self._state = AgentState.IDLE
        self._installed_app_version: str | None = None
        self._installs = 0
        self._jobs_run = 0
        self._batch_id: str | None = None  # the batch running now
        self._last_batch_id: str | None = None  # the last batch that ended, however it ended

    @property
    def installed_app_version(self) -> str | None:
        with self._lock:
            return self._installed_app_version

    def stop(self) -> None:
        """The agent is stopping: from now on it reports `offline`. Safe in a signal handler."""
        self._stopping = True

    def begin_batch(self, batch_id: str) -> None:
        with self._lock:
            self._state = AgentState.BUSY
            self._batch_id = batch_id

    def record_install(self, app_version_id: str | None) -> None:
        """An install succeeded (the version), or failed (None: the device state is unknown)."""
        with self._lock:
            self._installed_app_version = app_version_id
            if app_version_id is not None:
                self._installs += 1

    def record_job_finished(self) -> None:
        with self._lock:
            self._jobs_run += 1

    def end_batch(self, batch_id: str) -> BatchFinished:
        """The batch is over, finished or aborted: the agent is idle (offline once stopping)."""
        with self._lock:
            self._state = AgentState.IDLE
            self._batch_id = None
            self._last_batch_id = batch_id
            return BatchFinished(**self._counters(self._reported_state()), batch_id=batch_id)

    def heartbeat(self, sent_at: str, state: AgentState | None = None) -> AgentHeartbeat:
        """A heartbeat payload; `state` overrides the current state (offline at exit)."""
        with self._lock:
            return AgentHeartbeat(
                **self._counters(state or self._reported_state()),
                current_batch_id=self._batch_id,
                last_batch_id=self._last_batch_id,
                sent_at=sent_at,
            )

    def _reported_state(self) -> AgentState:
        return AgentState.OFFLINE if self._stopping else self._state

    def _counters(self, state: AgentState) -> AgentCounters:
        return AgentCounters(
            agent_id=self.agent_id,
            target=self.target,
            state=state,
            installed_app_version=self._installed_app_version,
            installs=self._installs,
            jobs_run=self._jobs_run,
        )
