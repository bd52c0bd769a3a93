"""In-memory fakes for the agent's unit tests."""

from __future__ import annotations

import pytest

from qgjob_contract.amqp import PublishError
from qgjob_contract.events import Envelope, EventType


class RecordingPublisher:
    """Keeps what it is asked to publish; fails while `failing`, or once it has `fail_after`."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []
        self.failing = False
        self.fail_after: int | None = None
        self.closed = 0

    def publish(self, envelope: Envelope) -> None:
        if self.failing or (self.fail_after is not None and len(self.events) >= self.fail_after):
            raise PublishError("broker unreachable: test")
        self.events.append(envelope)

    def put(self, envelope: Envelope) -> None:
        """As the outbox: the runner and the heartbeat put their reports, in order."""
        self.events.append(envelope)

    def close(self) -> None:
        self.closed += 1

    def idle(self) -> None:
        pass

    def types(self) -> list[EventType]:
        return [event.type for event in self.events]

    def of(self, event_type: EventType) -> list[Envelope]:
        return [event for event in self.events if event.type == event_type]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def heartbeats() -> RecordingPublisher:
    """The heartbeat thread's own publisher, apart from the batch runner's `publisher`."""
    return RecordingPublisher()
