"""A pass over several targets: one target's failure does not cancel the others', and is told
(the scheduler's health depends on it)."""

from __future__ import annotations

import logging

import pytest
import redis

from qgjob_contract.records import Batch
from qgjob_contract.targets import Target
from qgjob_scheduler.dispatch import Dispatcher, Requeuer
from qgjob_scheduler.errors import DispatchFailed

BATCH = Batch("b1", "dev-1", Target.DEVICE.value, "v1", "2026-11-29T10:00:00.000+00:00")


class OneTargetBroken(Dispatcher):
    """Real pass-over-targets logic; each target's own pass is scripted."""

    def __init__(self, broken: str, error: Exception) -> None:
        # Never connects: register_script only hashes the script locally.
        unused = redis.Redis(host="127.0.0.1", port=1)
        super().__init__(unused, unused, Requeuer(unused, unused), batch_max=3, agent_timeout_s=10)
        self.broken, self.error = broken, error
        self.visited: list[str] = []

    def dispatch(self, target: str) -> list[Batch]:
        self.visited.append(target)
        if target == self.broken:
            raise self.error
        return [BATCH] if target == Target.DEVICE else []


@pytest.mark.parametrize(
    ("error", "level"),
    [(RuntimeError("bug"), logging.ERROR), (redis.ConnectionError("down"), logging.WARNING)],
)
def test_a_failing_target_is_logged_and_the_others_still_dispatch(
    error: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = OneTargetBroken(Target.EMULATOR, error)
    caplog.set_level(logging.WARNING, logger="qgjob_scheduler.dispatch")

    with pytest.raises(DispatchFailed, match="emulator"):
        dispatcher.dispatch_all()  # every target is tried, then the failure is told

    assert dispatcher.visited == list(Target)
    [record] = caplog.records
    assert record.levelno == level
    assert "target emulator" in record.getMessage()
    assert (record.exc_info is not None) is (level == logging.ERROR)
