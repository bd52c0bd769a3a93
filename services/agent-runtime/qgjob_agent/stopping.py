"""The one way a running test is stopped early: its run timeout, or a cancel of its job.

Every driver waits for its test through a `Stop`: the simulator sleeps in it
(`Stop.sleep`), the command driver polls its process with it (`Stop.reason` between short
waits) and kills the test's process group when it says so. A `Stop` knows the test's
deadline (the job's `timeout_s`, else AGENT_TEST_TIMEOUT_S) and asks `cancelled` (the
agent reads the job's `cancel_requested_at` in Redis) at most every `poll_s`, so a cancel
stops a test within `poll_s` plus the kill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

# How often a running test's cancel is looked up: a cancel stops it within about this.
CANCEL_POLL_S: Final = 0.5


class StopReason(StrEnum):
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


def _never() -> bool:
    return False


@dataclass
class Stop:
    """When the test that is running must stop; `start` it as the test starts."""

    timeout_s: float
    cancelled: Callable[[], bool] = _never
    poll_s: float = CANCEL_POLL_S
    monotonic: Callable[[], float] = time.monotonic
    pause: Callable[[float], None] = time.sleep
    # Set by `start`, which must come first: a Stop that was never started has no deadline.
    _deadline: float = field(init=False)
    _next_poll: float = field(init=False)
    _reason: StopReason | None = field(init=False)

    def start(self) -> Stop:
        now = self.monotonic()
        self._deadline = now + self.timeout_s
        self._next_poll = now
        self._reason = None
        return self

    def reason(self) -> StopReason | None:
        """Why the test must stop now, or None while it may go on (cancel looked up at most
        every `poll_s`; once a reason is found it stays)."""
        if self._reason is not None:
            return self._reason
        now = self.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self.poll_s
            if self.cancelled():
                self._reason = StopReason.CANCELLED
                return self._reason
        if now >= self._deadline:
            self._reason = StopReason.TIMEOUT
        return self._reason

    def slice_s(self) -> float:
        """How long a driver may wait before it asks `reason` again."""
        left = self._deadline - self.monotonic()
        return max(min(self.poll_s, left), 0.0)

    def sleep(
        self, seconds: float, pause: Callable[[float], None] | None = None
    ) -> StopReason | None:
        """Wait `seconds` (the simulated test) in steps of `pause` (default: this Stop's),
        or less when the test must stop: why."""
        pause = pause or self.pause
        end = self.monotonic() + seconds
        while True:
            if (why := self.reason()) is not None:
                return why
            left = end - self.monotonic()
            if left <= 0:
                return None
            pause(min(left, max(self.slice_s(), 0.001)))

    def describe(self, why: StopReason) -> str:
        if why is StopReason.TIMEOUT:
            return f"[qgjob] stopped after the {self.timeout_s:g} s run timeout"
        return "[qgjob] stopped: its job was cancelled"
