"""`atomic.guarded` and lua/guarded_write.lua on a real Redis: writes land only when every
hash they were computed from is still as it was read, and a step that lost the race runs
again on what Redis holds then."""

from __future__ import annotations

import pytest
import redis

from qgjob_scheduler.atomic import Guard, guarded

pytestmark = pytest.mark.integration


def test_writes_apply_when_the_hashes_read_are_unchanged(redis_client: redis.Redis) -> None:
    redis_client.hset("h:a", mapping={"status": "assigned", "n": "1"})
    guard = Guard(redis_client)
    (a, absent), _ = guard.read(["h:a", "h:absent"])
    assert (a, absent) == ({"status": "assigned", "n": "1"}, {})
    guard.hset("h:a", {"status": "running"})
    guard.hset("h:absent", {"created": "yes"})
    guard.sadd("s", "m1")
    guard.zadd("z", "member", 1796180423197)
    assert guard.commit()
    assert redis_client.hgetall("h:a") == {"status": "running", "n": "1"}
    assert redis_client.hgetall("h:absent") == {"created": "yes"}
    assert redis_client.smembers("s") == {"m1"}
    assert redis_client.zscore("z", "member") == 1796180423197.0  # a ms timestamp, exact


@pytest.mark.parametrize(
    "meddle",
    [
        lambda r: r.hset("h:a", "status", "cancelled"),  # a value changed
        lambda r: r.hset("h:a", "extra", "1"),  # a field added
        lambda r: r.hdel("h:a", "n"),  # a field removed
        lambda r: r.delete("h:a"),  # the key gone
        lambda r: r.hset("h:absent", "now", "here"),  # a key read absent now exists
    ],
)
def test_nothing_is_written_when_a_hash_read_changed(
    redis_client: redis.Redis, meddle: object
) -> None:
    redis_client.hset("h:a", mapping={"status": "assigned", "n": "1"})
    guard = Guard(redis_client)
    guard.read(["h:a", "h:absent"])
    guard.hset("h:other", {"written": "1"})
    guard.hset("h:a", {"status": "running"})
    meddle(redis_client)  # type: ignore[operator]
    left = redis_client.hgetall("h:a")
    assert not guard.commit()
    assert not redis_client.exists("h:other")
    assert redis_client.hgetall("h:a") == left  # as the other writer left it


def test_delete_and_zrem_apply(redis_client: redis.Redis) -> None:
    redis_client.hset("h:batch", "job", "j1")
    redis_client.zadd("z", {"b1": 5, "b2": 6})
    guard = Guard(redis_client)
    guard.read(["h:batch"])
    guard.delete("h:batch")
    guard.zrem("z", "b1")
    assert guard.commit()
    assert not redis_client.exists("h:batch")
    assert redis_client.zrange("z", 0, -1) == ["b2"]


def test_a_step_that_lost_the_race_runs_again_on_the_new_state(redis_client: redis.Redis) -> None:
    redis_client.hset("counter", "n", "0")
    runs = []

    def increment(guard: Guard) -> int:
        (raw,), _ = guard.read(["counter"])
        runs.append(raw["n"])
        if len(runs) == 1:  # another writer gets in between this read and the commit
            redis_client.hset("counter", "n", "10")
        value = int(raw["n"]) + 1
        guard.hset("counter", {"n": str(value)})
        return value

    assert guarded(redis_client, increment) == 11
    assert runs == ["0", "10"]
    assert redis_client.hget("counter", "n") == "11"


def test_unchecked_reads_ride_on_the_same_pipeline(redis_client: redis.Redis) -> None:
    redis_client.hset("h:a", "x", "1")
    redis_client.hset("h:b", "instance_id", "i-1")
    guard = Guard(redis_client)
    (a,), (instance,) = guard.read(["h:a"], also=lambda pipe: pipe.hget("h:b", "instance_id"))
    assert (a, instance) == ({"x": "1"}, "i-1")
    redis_client.hset("h:b", "instance_id", "i-2")  # not checked: the commit still applies
    guard.hset("h:a", {"x": "2"})
    assert guard.commit()
    assert redis_client.hget("h:a", "x") == "2"


def test_only_the_allowed_commands_run(redis_client: redis.Redis) -> None:
    guard = Guard(redis_client)
    guard._writes.append(("FLUSHALL", "h:a", ()))  # what a bug could queue
    redis_client.set("kept", "1")
    with pytest.raises(redis.ResponseError, match="not allowed"):
        guard.commit()
    assert redis_client.get("kept") == "1"


def test_any_text_compares_and_is_written_as_is(redis_client: redis.Redis) -> None:
    """A log tail holds whatever a test printed: accents, emoji, quotes, newlines."""
    text = 'é ü ✓ 🚀 "quoted" \\ back\nslash \t tab'
    redis_client.hset("h:job", mapping={"log_tail": text, "empty": ""})
    guard = Guard(redis_client)
    (raw,), _ = guard.read(["h:job"])
    assert raw == {"log_tail": text, "empty": ""}
    guard.hset("h:job", {"log_tail": text + " 🧪", "status": "passed"})
    assert guard.commit()
    assert redis_client.hgetall("h:job") == {
        "log_tail": text + " 🧪",
        "empty": "",
        "status": "passed",
    }
