"""What every submit route (POST /submit, /v1/jobs, /v1/runs) does around its own work:
the Idempotency-Key (idempotency.py) and the warning when a target has no live agent
(liveness.py). The routes stay as they were; each hands its work to `Intake.respond`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import redis
from flask import request

from qgjob_api import idempotency, liveness
from qgjob_api.config import Config

Answer = tuple[dict[str, Any], int]
Response = tuple[dict[str, Any], int, dict[str, str]]


class Intake:
    def __init__(self, client: redis.Redis, config: Config) -> None:
        self._client = client
        self._timeout_s = config.agent_timeout_s
        self._keys = idempotency.Idempotency(client, retention_s=config.job_retention_s)

    def respond(
        self,
        route: str,
        body: Any,
        *,
        orgs: Iterable[str],
        targets: Iterable[str],
        work: Callable[[], Answer],
    ) -> Response:
        """`work()`'s answer, with a `warning` when a target has no live agent; once per
        Idempotency-Key (a repeat gets the first answer, header Idempotent-Replayed)."""
        wanted = [str(target) for target in targets]  # Target is a StrEnum

        def warned_work() -> Answer:
            # Read before the work: an outage here is a 503 with nothing accepted.
            live = liveness.live_targets(self._client, timeout_s=self._timeout_s)
            answer, status = work()
            warning = liveness.no_agent_warning(wanted, live)
            return ({**answer, "warning": warning} if warning else answer), status

        key = request.headers.get(idempotency.HEADER)
        if key is None:
            answer, status = warned_work()
            return answer, status, {}
        answer, status, replayed = self._keys.run(
            key=idempotency.check_key(key),
            scope=idempotency.org_scope(orgs),
            route=route,
            body=body,
            work=warned_work,
        )
        return answer, status, {idempotency.REPLAYED_HEADER: "true"} if replayed else {}
