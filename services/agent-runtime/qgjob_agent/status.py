"""What the agent is doing, shared by the worker thread and the heartbeat thread."""

from __future__ import annotations

import threading
import uuid

from qgjob_contract.events import AgentCounters, AgentHeartbeat, BatchFinished, JobReport
from qgjob_contract.statuses import AgentState
from qgjob_contract.targets import Target


class AgentStatus:
    """The agent's state and counters, and the two locks that keep its reports in order.

    - A private state lock, held only while fields are read or changed, never across I/O.
    - `reporting`, public: a thread that reports the agent's state (a heartbeat, or the end
      of a batch: `end_batch` then batch.finished) holds it from taking the snapshot until
      the report is in the outbox (no I/O: the outbox publishes on its own thread, in order).
      Snapshots therefore leave in the order they were taken, and carry increasing `seq`
      numbers: a heartbeat saying `busy` can never be applied after the batch.finished that
      made the agent idle, even when the broker redelivers it.

    `instance_id` names this process: a restarted agent (same agent id) is a new instance.

    Once `stop` is called the agent reports itself `offline` in every heartbeat and
    batch.finished: the scheduler then hands it no further batch while it finishes the
    running one.
    """

    def __init__(self, agent_id: str, target: str, instance_id: str | None = None) -> None:
        self.agent_id = agent_id
        self.target = Target(target)
        self.instance_id = instance_id or str(uuid.uuid4())
        self.reporting = threading.Lock()
        self._lock = threading.Lock()
        # A plain flag, not guarded by the lock: `stop` runs in a signal handler, which may
        # interrupt the main thread while it holds the lock.
        self._stopping = False
        self._state = AgentState.IDLE
        self._installed: tuple[str, str] | None = None  # (org_id, app_version_id)
        self._seq = 0  # the last report's sequence number
        self._installs = 0
        self._jobs_run = 0
        self._batch_id: str | None = None  # the batch running now
        self._last_batch_id: str | None = None  # the last batch that ended, however it ended

    @property
    def installed(self) -> tuple[str, str] | None:
        """The build installed on the device, (org_id, app_version_id), or None."""
        with self._lock:
            return self._installed

    @property
    def stopping(self) -> bool:
        """True once a warm stop was requested."""
        return self._stopping

    def stop(self) -> None:
        """The agent is stopping: from now on it reports `offline`. Safe in a signal handler."""
        self._stopping = True

    def begin_batch(self, batch_id: str) -> None:
        with self._lock:
            self._state = AgentState.BUSY
            self._batch_id = batch_id

    def record_install(self, build: tuple[str, str] | None) -> None:
        """An install succeeded (the build), or failed (None: the device state is unknown)."""
        with self._lock:
            self._installed = build
            if build is not None:
                self._installs += 1

    def record_job_finished(self) -> None:
        with self._lock:
            self._jobs_run += 1

    def end_batch(
        self, batch_id: str, reports: dict[str, JobReport] | None = None
    ) -> BatchFinished:
        """The batch is over, finished or aborted: the agent is idle (offline once stopping).

        `reports`: what the agent reported of the batch's jobs (see BatchFinished)."""
        with self._lock:
            self._state = AgentState.IDLE
            self._batch_id = None
            self._last_batch_id = batch_id
            return BatchFinished(
                **self._counters(self._reported_state()),
                batch_id=batch_id,
                reports=dict(reports or {}),
            )

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
        """A snapshot for a report: takes the next sequence number (call under the lock)."""
        self._seq += 1
        org_id, version = self._installed if self._installed is not None else (None, None)
        return AgentCounters(
            agent_id=self.agent_id,
            instance_id=self.instance_id,
            seq=self._seq,
            target=self.target,
            state=state,
            installed_app_version=version,
            installed_org_id=org_id,
            installs=self._installs,
            jobs_run=self._jobs_run,
        )
