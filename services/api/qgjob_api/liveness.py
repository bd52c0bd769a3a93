"""Which targets have a live agent: for the warning a submission to a target without one
carries (it is accepted all the same: an agent may come, or the jobs expire in the queue).

Live is what the scheduler requires of an agent before it hands it a batch, less being
free: its lease renewed within AGENT_TIMEOUT_S on Redis TIME, and not `offline`.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from qgjob_api.redis_text import text
from qgjob_contract import leases
from qgjob_contract.names import Keys
from qgjob_contract.records import is_alive
from qgjob_contract.statuses import AgentState


def live_targets(client: redis.Redis, *, timeout_s: float) -> set[str]:
    """The targets with at least one live agent (three round trips, whatever the count)."""
    agent_ids = sorted(text(member) for member in client.smembers(Keys.AGENTS))
    if not agent_ids:
        return set()
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hmget(Keys.agent(agent_id), ["target", "state"])
    records = pipe.execute()
    lease_of = leases.read(client, agent_ids)
    now_ms = leases.redis_now_ms(client)
    return {
        text(target)
        for agent_id, (target, state) in zip(agent_ids, records, strict=True)
        if target
        and text(state or "") != AgentState.OFFLINE
        and is_alive(lease_of.get(agent_id), now_ms, timeout_s)
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
