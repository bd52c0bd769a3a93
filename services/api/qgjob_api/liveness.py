"""Which targets have a live agent: for the warning a submission to a target without one
carries (it is accepted all the same: an agent may come, or the jobs expire in the queue).

Live is what the scheduler requires of an agent before it hands it a batch, less being
free: its lease renewed within AGENT_TIMEOUT_S on Redis TIME, and not `offline`.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from qgjob_api.redis_text import text
from qgjob_contract.names import Keys
from qgjob_contract.records import Lease, is_alive
from qgjob_contract.statuses import AgentState


def live_targets(client: redis.Redis, *, timeout_s: float) -> set[str]:
    """The targets with at least one live agent (two round trips, whatever the count: the
    agent set with Redis TIME, then every agent's target and state with its lease).

    TIME is read before the leases: a lease renewed in between looks younger, never older.
    """
    first = client.pipeline(transaction=False)
    first.smembers(Keys.AGENTS)
    first.time()
    members, (seconds, micros) = first.execute()
    agent_ids = sorted(text(member) for member in members)
    if not agent_ids:
        return set()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hmget(Keys.agent(agent_id), ["target", "state"])
    for agent_id in agent_ids:
        pipe.hgetall(Keys.lease(agent_id))
    replies = pipe.execute()
    records, raw_leases = replies[: len(agent_ids)], replies[len(agent_ids) :]
    return {
        text(target)
        for agent_id, (target, state), raw_lease in zip(agent_ids, records, raw_leases, strict=True)
        if target
        and text(state or "") != AgentState.OFFLINE
        and is_alive(
            Lease.from_redis(agent_id, raw_lease) if raw_lease else None, now_ms, timeout_s
        )
    }


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
