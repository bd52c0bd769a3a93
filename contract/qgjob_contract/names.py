"""Names shared by processes: the AMQP topology, RQ queues and Redis keys.

Every qgjob Redis key lives under `qgjob:`; RQ keeps its own keys under `rq:`.
"""

from __future__ import annotations

from typing import Final

from qgjob_contract.events import EventType

# --- AMQP ------------------------------------------------------------------------------
# One durable topic exchange; the routing key of a message is its event type.
EXCHANGE: Final = "qgjob.events"
# Messages that can never be applied (undecodable, invalid, or past the delivery limit) are
# dead-lettered into this exchange, then this queue; the scheduler moves them into Redis
# (`Keys.DEAD_LETTERS`), where an operator lists and replays them.
DEAD_LETTER_EXCHANGE: Final = "qgjob.events.dead-letter"
DEAD_LETTER_QUEUE: Final = "qgjob.dead-letters"
# The scheduler's queue: a durable quorum queue with one active consumer at a time (the
# other scheduler replicas are standbys), a delivery limit and the dead-letter exchange. It
# receives every event type (bound by exact routing key, so a new event type is routed as
# soon as it is added to EventType).
SCHEDULER_QUEUE: Final = "qgjob.scheduler.events"
SCHEDULER_BINDINGS: Final = tuple(event_type.value for event_type in EventType)
# Deliveries of one event before it is dead-lettered (a handler that keeps failing).
DELIVERY_LIMIT: Final = 5
# Most messages the dead-letter queue keeps (the oldest are dropped past it).
DEAD_LETTER_MAX: Final = 10_000
# Classic queues of earlier releases; queue arguments cannot change in place, so the
# quorum queues above have new names and these are drained into the exchange, then deleted.
LEGACY_QUEUES: Final = ("qgjob.scheduler", "qgjob.dead-letter")

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

    # zset: pending job ids of one build (org_id, app_version_id) for one target, scored by
    # dispatch order (higher priority first, then arrival: the scheduler's
    # `grouping.group_score`). A build belongs to an org: two orgs never share a group.
    @staticmethod
    def group(target: str, org_id: str, app_version_id: str) -> str:
        return f"{PREFIX}group:{target}:{build(org_id, app_version_id)}"

    # zset: builds (`build(org_id, app_version_id)`) with pending jobs for a target, scored
    # (ms) by when the group arrived, or re-arrived because a batch took only part of it
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

    # zset: batches that ended (their agent is free) and whose unreported jobs are not
    # settled yet, scored by Redis TIME (ms) of the end
    ENDED_BATCHES: Final = f"{PREFIX}batches:ended"

    # zset: queued job ids scored by the moment (ms) their queue wait expires (the job's
    # `queue_ttl_s`, else JOB_QUEUE_TTL_S, from when it last joined its group); the
    # scheduler's tick ends a job still queued past it `error`/`expired`
    QUEUE_EXPIRY: Final = f"{PREFIX}queue-expiry"

    # hash: an agent's lease (see records.Lease), renewed by the agent straight in Redis,
    # stamped with Redis TIME: liveness is judged on Redis's clock, never on an agent's
    @staticmethod
    def lease(agent_id: str) -> str:
        return f"{PREFIX}lease:{agent_id}"

    # hash: dead-lettered events by event id (JSON, see deadletters.DeadLetter)
    DEAD_LETTERS: Final = f"{PREFIX}dead-letters"
    # zset: the dead-lettered event ids by when they were dead-lettered (ms), oldest first
    DEAD_LETTERS_BY_TIME: Final = f"{PREFIX}dead-letters:by-time"

    # --- runs: a suite submitted as one (POST /v1/runs); written and read by the API only --
    # hash: one run record (see qgjob_api.run_record.Run): its request and its job ids
    @staticmethod
    def run(run_id: str) -> str:
        return f"{PREFIX}run:{run_id}"

    # zset: every run id, scored by creation time in ms (listing, newest first)
    RUNS_BY_TIME: Final = f"{PREFIX}runs"

    # --- API tokens (qgjob_api.tokens); written and read by the API only -----------------
    # hash: one token record: org_id, role, name, created_at, expires_at, revoked_at and the
    # sha256 of its secret (never the secret itself)
    @staticmethod
    def token(token_id: str) -> str:
        return f"{PREFIX}token:{token_id}"

    # zset: every token id, scored by creation time in ms (listing)
    TOKENS: Final = f"{PREFIX}tokens"

    # prefix of the rate limiter's counters (flask-limiter on Redis, shared by API workers)
    RATE_LIMIT_PREFIX: Final = f"{PREFIX}ratelimit"

    # --- idempotent submit: written and read by the API only -------------------------
    # string (JSON, with a TTL): what a request with an Idempotency-Key did, for one org
    # scope; `key_digest` is a hash of the client's key (any length, any characters)
    @staticmethod
    def idempotency(org_scope: str, key_digest: str) -> str:
        return f"{PREFIX}idempotency:{org_scope}:{key_digest}"

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

    # string: the recent PASSING durations of ANY test of one (org, target), oldest first,
    # space separated (capped, same TTL): the estimate for a test the hash has not seen
    @staticmethod
    def test_history_recent(org_id: str, target: str) -> str:
        return f"{PREFIX}history:test-recent:{org_id}:{target}"

    # hash: app_version_id -> its recent install times in seconds for one (org, target);
    # bounded as test_history is
    @staticmethod
    def install_history(org_id: str, target: str) -> str:
        return f"{PREFIX}history:install:{org_id}:{target}"

    # zset: the app versions of install_history, scored by when each was last recorded (ms)
    @staticmethod
    def install_history_index(org_id: str, target: str) -> str:
        return f"{PREFIX}history:install-index:{org_id}:{target}"


# A build: an app version of one org. org ids and app version ids never contain ':' (the
# API validates both), so the member is unambiguous.
BUILD_SEPARATOR: Final = ":"


def build(org_id: str, app_version_id: str) -> str:
    """A build's member in `Keys.groups(target)` and the tail of its group key."""
    return f"{org_id}{BUILD_SEPARATOR}{app_version_id}"


def parse_build(member: str) -> tuple[str, str]:
    """(org_id, app_version_id) of a `build` member."""
    org_id, _, app_version_id = member.partition(BUILD_SEPARATOR)
    return org_id, app_version_id
