"""The RQ job function, `run_batch`, and the agent context it runs in.

RQ calls a job function by its dotted path (names.RUN_BATCH_FUNCTION), so the function
finds its collaborators in a module-level context that `worker.main` sets before the worker
starts. That context is the agent's only global.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qgjob_agent.errors import AgentError
from qgjob_agent.runner import BatchRunner
from qgjob_contract.records import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentContext:
    runner: BatchRunner
    # Asks for a heartbeat now: after an aborted batch it tells the scheduler, through
    # `last_batch_id`, that the agent is free although no batch.finished came.
    beat_soon: Callable[[], None]


_context: AgentContext | None = None


def set_context(context: AgentContext | None) -> None:
    global _context  # noqa: PLW0603 (the one global: see the module docstring)
    _context = context


def run_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Run one batch (a records.Batch as JSON); return its batch.finished payload ({} when
    the batch was not this agent instance's to run)."""
    context = _context
    if context is None:
        raise AgentError("run_batch needs the agent context: start it with the agent's main()")
    try:
        finished = context.runner.run(_parse(batch, context.runner))
    except BaseException:
        context.beat_soon()
        raise
    return dict(finished) if finished is not None else {}


def _parse(batch: dict[str, Any], runner: BatchRunner) -> Batch:
    try:
        return Batch.from_json(batch)
    except (KeyError, TypeError) as exc:
        batch_id = batch.get("batch_id")
        runner.refuse(batch_id if isinstance(batch_id, str) else None, exc)
        raise
