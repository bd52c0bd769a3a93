"""The RQ job function, `run_batch`, and the agent context it runs in.

RQ calls a job function by its dotted path (names.RUN_BATCH_FUNCTION), so the function
finds its collaborators in a module-level context that `worker.main` sets before the worker
starts. That context is the agent's only global.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from qgjob_agent.errors import AgentError
from qgjob_agent.publisher import EventPublisher
from qgjob_agent.runner import BatchRunner
from qgjob_contract.records import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentContext:
    runner: BatchRunner
    publisher: EventPublisher  # the runner's; closed after each batch


_context: AgentContext | None = None


def set_context(context: AgentContext | None) -> None:
    global _context  # noqa: PLW0603 (the one global: see the module docstring)
    _context = context


def run_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Run one batch (a records.Batch as JSON); return its batch.finished payload."""
    context = _context
    if context is None:
        raise AgentError("run_batch needs the agent context: start it with the agent's main()")
    try:
        parsed = Batch.from_json(batch)
    except (KeyError, TypeError) as exc:
        log.error("batch %s: malformed, not run: %r", batch.get("batch_id"), exc)
        raise
    try:
        return dict(context.runner.run(parsed))
    finally:
        context.publisher.close()
