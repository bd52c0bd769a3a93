"""Which targets have a live agent: for the warning a submission to a target without one
carries (it is accepted all the same: an agent may come, or the jobs expire in the queue).

Live is what the scheduler requires of an agent before it hands it a batch, less being
free: its lease renewed within AGENT_TIMEOUT_S on Redis TIME, and not `offline`.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.client import Pipeline

from qgjob_api.redis_text import text
from qgjob_contract.names import Keys
from qgjob_contract.records import Lease, is_alive
from qgjob_contract.statuses import AgentState


class LiveTargets:
    """`live_targets()`: the targets with at least one live agent, read fresh on every call,
    in one round trip while the set of agents is unchanged (two when it changed).

    The agent ids of the last call are remembered, so each call reads, in one pipeline, the
    agent set with Redis TIME and those agents' target, state and lease. When the set turns
    out to differ (an agent appeared or left), the records of the new set are read in a
    second trip. Every answer comes from records read in that call: nothing is cached but
    which ids to read. TIME is read before the leases: a lease renewed in between looks
    younger, never older. Shared by a process's threads: a race only costs a second trip.
    """

    def __init__(self, client: redis.Redis, *, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._known: tuple[str, ...] = ()

    def __call__(self) -> set[str]:
        known = self._known
        pipe = self._client.pipeline(transaction=False)
        pipe.smembers(Keys.AGENTS)
        pipe.time()
        _read_agents(pipe, known)
        members, (seconds, micros), *replies = pipe.execute()
        agent_ids = tuple(sorted(text(member) for member in members))
        if agent_ids != known:
            self._known = agent_ids
            pipe = self._client.pipeline(transaction=False)
            _read_agents(pipe, agent_ids)
            replies = pipe.execute() if agent_ids else []
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        records, raw_leases = replies[: len(agent_ids)], replies[len(agent_ids) :]
        return {
            text(target)
            for agent_id, (target, state), raw_lease in zip(
                agent_ids, records, raw_leases, strict=True
            )
            if target
            and text(state or "") != AgentState.OFFLINE
            and is_alive(
                Lease.from_redis(agent_id, raw_lease) if raw_lease else None,
                now_ms,
                self._timeout_s,
            )
        }


def _read_agents(pipe: Pipeline, agent_ids: Iterable[str]) -> None:
    """Queue each agent's target and state, then each one's lease."""
    ids = list(agent_ids)
    for agent_id in ids:
        pipe.hmget(Keys.agent(agent_id), ["target", "state"])
    for agent_id in ids:
        pipe.hgetall(Keys.lease(agent_id))


def no_agent_warning(targets: Iterable[str], live: set[str]) -> str | None:
    """The warning for jobs of `targets` when some have no live agent, else None (pure)."""
    missing = [target for target in dict.fromkeys(targets) if target not in live]
    if not missing:
        return None
    names = ", ".join(repr(target) for target in missing)
    noun = "target" if len(missing) == 1 else "targets"
    return (
        f"no live agent for {noun} {names}: the jobs were accepted and wait for one "
        "(they expire after their queue TTL)"
    )
