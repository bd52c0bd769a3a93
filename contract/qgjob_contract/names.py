"""Names shared by processes: the AMQP topology, RQ queues and Redis keys.

Every qgjob Redis key lives under `qgjob:`; RQ keeps its own keys under `rq:`.
"""

from __future__ import annotations

from typing import Final

from qgjob_contract.events import EventType

# --- AMQP ------------------------------------------------------------------------------
# One durable topic exchange; the routing key of a message is its event type.
EXCHANGE: Final = "qgjob.events"
# Messages a consumer cannot decode are rejected into this exchange, then this queue.
DEAD_LETTER_EXCHANGE: Final = "qgjob.events.dead-letter"
DEAD_LETTER_QUEUE: Final = "qgjob.dead-letter"
# The scheduler's durable queue; it receives every event type (bound by exact routing key,
# so a new event type is routed as soon as it is added to EventType).
SCHEDULER_QUEUE: Final = "qgjob.scheduler"
SCHEDULER_BINDINGS: Final = tuple(event_type.value for event_type in EventType)

# --- RQ --------------------------------------------------------------------------------
# Dotted path of the function an agent runs for one batch. Enqueued by name, so the
# scheduler never imports agent code; the argument is a `records.Batch` as a JSON dict.
RUN_BATCH_FUNCTION: Final = "qgjob_agent.runtime.run_batch"


def agent_queue(agent_id: str) -> str:
    """RQ queue of one agent, the only one it listens on: batches the scheduler bound to it."""
    return f"qgjob.agent.{agent_id}"


# --- Redis -----------------------------------------------------------------------------
PREFIX: Final = "qgjob:"


class Keys:
    """Redis key names. Use these functions; never build a qgjob key by hand."""

    # hash: one job record (see records.Job)
    @staticmethod
    def job(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    # zset: every job id, scored by creation time in ms (listing, pagination)
    JOBS_BY_TIME: Final = f"{PREFIX}jobs"

    # zset: pending job ids of one (target, app_version_id) group, scored by dispatch order
    # (higher priority first, then arrival: the scheduler's `grouping.group_score`)
    @staticmethod
    def group(target: str, app_version_id: str) -> str:
        return f"{PREFIX}group:{target}:{app_version_id}"

    # zset: app_version_ids with pending jobs for a target, scored (ms) by when the group
    # arrived, or re-arrived because a batch took only part of it (round-robin)
    @staticmethod
    def groups(target: str) -> str:
        return f"{PREFIX}groups:{target}"

    # string: counter, incremented once for each job joining a group, in submission order;
    # the job's arrival number in its group's score
    ARRIVAL_SEQ: Final = f"{PREFIX}arrival-seq"

    # hash: one agent record (see records.Agent)
    @staticmethod
    def agent(agent_id: str) -> str:
        return f"{PREFIX}agent:{agent_id}"

    # set: every agent id ever seen
    AGENTS: Final = f"{PREFIX}agents"

    # hash: one batch record (see records.Batch)
    @staticmethod
    def batch(batch_id: str) -> str:
        return f"{PREFIX}batch:{batch_id}"

    # --- duration history (the scheduler's `history` module) ---------------------------
    # hash: test_path -> its recent PASSING durations in seconds, oldest first, space
    # separated, for one (org, target). Bounded: a capped number of runs per test, a capped
    # number of tests (the least recently run are dropped, see test_history_index), and a
    # TTL renewed on every write.
    @staticmethod
    def test_history(org_id: str, target: str) -> str:
        return f"{PREFIX}history:test:{org_id}:{target}"

    # zset: the test paths of test_history, scored by when each was last recorded (ms)
    @staticmethod
    def test_history_index(org_id: str, target: str) -> str:
        return f"{PREFIX}history:test-index:{org_id}:{target}"

    # hash: app_version_id -> its recent install times in seconds for one (org, target);
    # bounded as test_history is
    @staticmethod
    def install_history(org_id: str, target: str) -> str:
        return f"{PREFIX}history:install:{org_id}:{target}"

    # zset: the app versions of install_history, scored by when each was last recorded (ms)
    @staticmethod
    def install_history_index(org_id: str, target: str) -> str:
        return f"{PREFIX}history:install-index:{org_id}:{target}"
