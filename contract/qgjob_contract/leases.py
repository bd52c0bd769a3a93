"""Agent leases: the one liveness signal, renewed in Redis and judged on Redis TIME.

An agent process renews its lease (`renew`) every heartbeat, straight in Redis: not through
the event queue, so a backlog of job events never delays it, and stamped with Redis TIME, so
no two clocks are compared. The scheduler (free agents, lost agents) and the API (`alive`)
read leases (`read`) and compare them with Redis TIME (`redis_now_ms`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from redis import Redis

from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.records import Lease

# Lease hash fields: `records.Lease` reads them, `renew_lease.lua` receives them.
FIELD_INSTANCE: Final = "instance_id"
FIELD_RENEWED: Final = "renewed_ms"
FIELD_STARTED: Final = "started_ms"
FIELD_PREVIOUS: Final = "previous_instance_id"


class LeaseRenewer:
    """Renews one agent instance's lease (the agent's side)."""

    def __init__(self, store: Redis, agent_id: str, instance_id: str) -> None:
        self._key = Keys.lease(agent_id)
        self._instance_id = instance_id
        self._renew = store.register_script(script("qgjob_contract", "renew_lease"))

    def renew(self) -> int:
        """Renew now; returns Redis TIME in ms. Raises redis errors when Redis is down."""
        args = [self._instance_id, FIELD_INSTANCE, FIELD_RENEWED, FIELD_STARTED, FIELD_PREVIOUS]
        return int(self._renew(keys=[self._key], args=args))


def redis_now_ms(store: Redis) -> int:
    """Redis TIME in whole milliseconds: the clock leases are judged on."""
    seconds, micros = store.time()
    return int(seconds) * 1000 + int(micros) // 1000


def read(store: Redis, agent_ids: Iterable[str]) -> dict[str, Lease]:
    """The leases of `agent_ids` that exist (one round trip)."""
    ids = list(agent_ids)
    pipe = store.pipeline(transaction=False)
    for agent_id in ids:
        pipe.hgetall(Keys.lease(agent_id))
    leases = {}
    for agent_id, raw in zip(ids, pipe.execute(), strict=True):
        lease = Lease.from_redis(agent_id, raw) if raw else None
        if lease is not None:
            leases[agent_id] = lease
    return leases
