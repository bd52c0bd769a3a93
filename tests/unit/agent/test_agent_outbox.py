"""The outbox: reports leave in the order they were put, a broker outage only delays them,
heartbeats coalesce, a batch.finished takes the place of the job events it repeats, and a
stop drains what it can."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qgjob_agent.outbox import Outbox
from qgjob_contract.amqp import PublishError
from qgjob_contract.events import Envelope, EventType, make_event


class FlakyBroker:
    """Confirms while `up`; refuses every publish while down. `gate` holds a publish."""

    def __init__(self) -> None:
        self.up = True
        self.confirmed: list[Envelope] = []
        self.attempts = 0
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.lock = threading.Lock()

    def publish(self, envelope: Envelope) -> None:
        self.attempts += 1
        self.waiting.set()
        self.gate.wait(5)
        if not self.up:
            raise PublishError("broker unreachable: test")
        with self.lock:
            self.confirmed.append(envelope)

    def close(self) -> None:
        pass

    def idle(self) -> None:
        pass

    def ids(self) -> list[str]:
        with self.lock:
            return [event.event_id for event in self.confirmed]


def _job_event(n: int) -> Envelope:
    return make_event(EventType.JOB_FINISHED, {"job_id": f"j{n}"})


def _heartbeat(n: int) -> Envelope:
    return make_event(EventType.AGENT_HEARTBEAT, {"seq": n})


def _of_batch(event_type: EventType, batch_id: str, job_id: str) -> Envelope:
    return make_event(event_type, {"job_id": job_id, "batch_id": batch_id})


def _batch_finished(batch_id: str, *reported: str) -> Envelope:
    reports = {job_id: {"finished_at": "t", "result": {}} for job_id in reported}
    return make_event(EventType.BATCH_FINISHED, {"batch_id": batch_id, "reports": reports})


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_reports_put_during_an_outage_are_all_delivered_in_order_once_it_ends() -> None:
    broker = FlakyBroker()
    broker.up = False
    outbox = Outbox(broker, agent_id="emu-1", max_backoff_s=0.05)
    outbox.start()
    events = [_job_event(n) for n in range(20)]
    for event in events:
        outbox.put(event)  # returns at once although nothing can be delivered
    _wait(lambda: broker.attempts >= 3)
    assert broker.confirmed == []
    assert outbox.pending() == 20

    broker.up = True
    _wait(lambda: outbox.pending() == 0)
    assert broker.ids() == [event.event_id for event in events]
    assert outbox.close(1.0) == 0


def test_a_heartbeat_replaces_the_heartbeat_waiting_at_the_tail_but_nothing_else() -> None:
    broker = FlakyBroker()
    broker.up = False
    outbox = Outbox(broker, agent_id="emu-1", max_backoff_s=0.05)
    first_job, old_beat, new_beat, last_job, newest_beat = (
        _job_event(1),
        _heartbeat(1),
        _heartbeat(2),
        _job_event(2),
        _heartbeat(3),
    )
    for event in (first_job, old_beat, new_beat, last_job, newest_beat):
        outbox.put(event)
    assert outbox.pending() == 4  # old_beat was replaced by new_beat; the job events stay

    broker.up = True
    outbox.start()
    _wait(lambda: outbox.pending() == 0)
    assert broker.ids() == [e.event_id for e in (first_job, new_beat, last_job, newest_beat)]
    outbox.close(1.0)


def test_a_heartbeat_being_published_is_not_replaced_under_the_publisher() -> None:
    broker = FlakyBroker()
    broker.gate.clear()
    outbox = Outbox(broker, agent_id="emu-1")
    outbox.start()
    in_flight = _heartbeat(1)
    outbox.put(in_flight)
    assert broker.waiting.wait(5)
    newer = _heartbeat(2)
    outbox.put(newer)
    broker.gate.set()

    _wait(lambda: outbox.pending() == 0)
    assert broker.ids() == [in_flight.event_id, newer.event_id]
    outbox.close(1.0)


def test_close_drains_what_the_broker_takes_and_counts_what_it_could_not() -> None:
    broker = FlakyBroker()
    outbox = Outbox(broker, agent_id="emu-1")
    outbox.start()
    outbox.put(_job_event(1))
    _wait(lambda: outbox.pending() == 0)
    broker.up = False
    outbox.put(_job_event(2))

    started = time.monotonic()
    assert outbox.close(0.3) == 1
    assert time.monotonic() - started < 3


def test_a_batch_finished_drops_the_waiting_job_events_it_reports_and_nothing_else() -> None:
    broker = FlakyBroker()
    broker.up = False
    outbox = Outbox(broker, agent_id="emu-1", max_backoff_s=0.05)
    earlier = _of_batch(EventType.JOB_FINISHED, "b0", "j0")  # another batch's, same job id
    folded = [
        _of_batch(EventType.JOB_STARTED, "b1", "j0"),
        _of_batch(EventType.JOB_FINISHED, "b1", "j0"),
        _of_batch(EventType.JOB_STARTED, "b1", "j1"),
        _of_batch(EventType.JOB_FINISHED, "b1", "j1"),
    ]
    beat = _heartbeat(1)
    unreported = _of_batch(EventType.JOB_STARTED, "b1", "j2")  # its test never ended
    finished = _batch_finished("b1", "j0", "j1")
    for event in (earlier, *folded[:2], beat, *folded[2:], unreported, finished):
        outbox.put(event)
    assert outbox.pending() == 4

    broker.up = True
    outbox.start()
    _wait(lambda: outbox.pending() == 0)
    assert broker.ids() == [e.event_id for e in (earlier, beat, unreported, finished)]
    outbox.close(1.0)


def test_the_job_event_being_published_is_sent_although_its_batch_finished_repeats_it() -> None:
    broker = FlakyBroker()
    broker.gate.clear()
    outbox = Outbox(broker, agent_id="emu-1")
    outbox.start()
    in_flight = _of_batch(EventType.JOB_STARTED, "b1", "j0")
    outbox.put(in_flight)
    assert broker.waiting.wait(5)
    waiting = _of_batch(EventType.JOB_FINISHED, "b1", "j0")
    finished = _batch_finished("b1", "j0")
    outbox.put(waiting)
    outbox.put(finished)
    assert outbox.pending() == 2  # the head in flight, and the batch.finished
    broker.gate.set()

    _wait(lambda: outbox.pending() == 0)
    assert broker.ids() == [in_flight.event_id, finished.event_id]
    outbox.close(1.0)
