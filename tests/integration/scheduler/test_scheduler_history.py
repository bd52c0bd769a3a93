"""The duration history on a real Redis: estimates, what counts, bounds, orgs apart."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from qgjob_contract.names import Keys
from qgjob_scheduler import history

pytestmark = pytest.mark.integration

ORG, TARGET = "org-a", "emulator"


def test_unseen_tests_and_builds_get_the_default(redis_client: redis.Redis) -> None:
    assert history.test_estimates(redis_client, ORG, TARGET, ["a", "b"], default_s=7.0) == [
        7.0,
        7.0,
    ]
    assert history.install_estimates(redis_client, ORG, TARGET, ["v1"], default_s=42.0) == [42.0]
    assert history.test_estimates(redis_client, ORG, TARGET, []) == []
    assert history.test_estimates(redis_client, ORG, TARGET, ["a"]) == [history.DEFAULT_TEST_S]


def test_estimate_is_the_p80_of_recent_passing_runs(redis_client: redis.Redis) -> None:
    runs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    for seconds in runs:
        assert history.record_test(redis_client, ORG, TARGET, "t.js", seconds, "passed")
    # one slow outlier does not move it
    assert history.record_test(redis_client, ORG, TARGET, "t.js", 500.0, "passed")
    [estimate] = history.test_estimates(redis_client, ORG, TARGET, ["t.js"])
    kept = [*runs[1:], 500.0]  # the oldest run left when the eleventh came
    assert estimate == sorted(kept)[7]
    assert estimate == 9.0


def test_only_passing_runs_count(redis_client: redis.Redis) -> None:
    history.record_test(redis_client, ORG, TARGET, "t.js", 2.0, "passed")
    for outcome in ("failed", "error", "cancelled"):
        assert not history.record_test(redis_client, ORG, TARGET, "t.js", 0.01, outcome)
    assert not history.record_test(redis_client, ORG, TARGET, "t.js", float("nan"), "passed")
    assert not history.record_test(redis_client, ORG, TARGET, "t.js", -1.0, "passed")
    assert history.test_estimates(redis_client, ORG, TARGET, ["t.js"]) == [2.0]


def test_estimates_are_batched_in_order(redis_client: redis.Redis) -> None:
    history.record_test(redis_client, ORG, TARGET, "slow.js", 9.0, "passed")
    history.record_test(redis_client, ORG, TARGET, "fast.js", 0.5, "passed")
    paths = ["fast.js", "slow.js"]
    assert history.test_estimates(redis_client, ORG, TARGET, paths, default_s=3.0) == [0.5, 9.0]


def test_an_unseen_test_gets_the_p80_of_the_orgs_recent_runs_of_any_test(
    redis_client: redis.Redis,
) -> None:
    # Nothing passed yet for the org on the target: the caller's default.
    assert history.test_estimates(redis_client, ORG, TARGET, ["new.js"], default_s=3.0) == [3.0]
    for i in range(10):
        history.record_test(redis_client, ORG, TARGET, f"t{i}.js", 0.1 * (i + 1), "passed")
    history.record_test(redis_client, ORG, TARGET, "t0.js", 99.0, "failed")  # does not count
    [unseen, seen] = history.test_estimates(
        redis_client, ORG, TARGET, ["new.js", "t9.js"], default_s=3.0
    )
    assert unseen == pytest.approx(0.8)  # p80 (nearest rank) of 0.1 .. 1.0
    assert seen == pytest.approx(1.0)
    # other orgs and targets keep their own
    assert history.test_estimates(redis_client, "org-b", TARGET, ["new.js"], 3.0) == [3.0]
    assert history.test_estimates(redis_client, ORG, "device", ["new.js"], 3.0) == [3.0]


def test_recent_runs_of_any_test_are_capped(redis_client: redis.Redis) -> None:
    for i in range(history.RECENT_KEPT + 7):
        history.record_test(redis_client, ORG, TARGET, f"t{i}.js", float(i), "passed")
    kept = redis_client.get(Keys.test_history_recent(ORG, TARGET))
    assert kept is not None
    assert [float(v) for v in kept.split()] == [float(i) for i in range(7, history.RECENT_KEPT + 7)]


def test_install_times_per_build(redis_client: redis.Redis) -> None:
    history.record_install(redis_client, ORG, TARGET, "v1", 12.0)
    history.record_install(redis_client, ORG, TARGET, "v2", 30.0)
    assert history.install_estimates(redis_client, ORG, TARGET, ["v2", "v1"]) == [30.0, 12.0]


def test_orgs_and_targets_are_apart(redis_client: redis.Redis) -> None:
    history.record_test(redis_client, "org-a", TARGET, "t.js", 1.0, "passed")
    history.record_test(redis_client, "org-b", TARGET, "t.js", 8.0, "passed")
    history.record_install(redis_client, "org-b", TARGET, "1.0.0", 50.0)
    assert history.test_estimates(redis_client, "org-a", TARGET, ["t.js"]) == [1.0]
    assert history.test_estimates(redis_client, "org-b", TARGET, ["t.js"]) == [8.0]
    assert history.test_estimates(redis_client, "org-a", "device", ["t.js"], default_s=4.0) == [4.0]
    assert history.install_estimates(redis_client, "org-a", TARGET, ["1.0.0"], 5.0) == [5.0]


def test_runs_per_test_are_capped(redis_client: redis.Redis) -> None:
    for i in range(history.RUNS_KEPT * 3):
        history.record_test(redis_client, ORG, TARGET, "t.js", float(i), "passed")
    kept = redis_client.hget(Keys.test_history(ORG, TARGET), "t.js")
    assert kept is not None
    assert len(kept.split()) == history.RUNS_KEPT


def _redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _next_redis_ms(client: redis.Redis) -> None:
    """Return once Redis TIME is in a later millisecond than when called (1 s deadline)."""
    start, deadline = _redis_ms(client), time.monotonic() + 1.0
    while _redis_ms(client) <= start:
        assert time.monotonic() < deadline, "Redis TIME did not move"


def test_tests_per_org_are_capped_dropping_the_least_recent(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small cap for the test (the script takes it as an argument); real Redis, real script.
    monkeypatch.setattr(history, "ENTRIES_KEPT", 5)
    for i in range(8):
        history.record_test(redis_client, ORG, TARGET, f"t{i}.js", 1.0, "passed")
    key, index = Keys.test_history(ORG, TARGET), Keys.test_history_index(ORG, TARGET)
    assert sorted(redis_client.hkeys(key)) == [f"t{i}.js" for i in range(3, 8)]
    assert redis_client.zcard(index) == 5
    # a test recorded again becomes recent, and survives the next trims. Recency is Redis
    # TIME in ms: on a quiet machine all eight records above share one millisecond, so wait
    # (on Redis's own clock, with a deadline) until it has moved on.
    _next_redis_ms(redis_client)
    history.record_test(redis_client, ORG, TARGET, "t3.js", 2.0, "passed")
    _next_redis_ms(redis_client)
    history.record_test(redis_client, ORG, TARGET, "t8.js", 1.0, "passed")
    assert "t3.js" in redis_client.hkeys(key)
    assert "t4.js" not in redis_client.hkeys(key)


def test_history_keys_expire_when_not_written(redis_client: redis.Redis) -> None:
    history.record_test(redis_client, ORG, TARGET, "t.js", 1.0, "passed")
    history.record_install(redis_client, ORG, TARGET, "v1", 1.0)
    for key in (
        Keys.test_history(ORG, TARGET),
        Keys.test_history_index(ORG, TARGET),
        Keys.test_history_recent(ORG, TARGET),
        Keys.install_history(ORG, TARGET),
        Keys.install_history_index(ORG, TARGET),
    ):
        assert 0 < redis_client.ttl(key) <= history.TTL_S


def test_concurrent_records_lose_no_run(redis_url: str) -> None:
    # Two scheduler replicas recording the same test at once: the script keeps every run.
    clients = [redis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    clients[0].flushdb()

    def record(client: redis.Redis, value: float) -> None:
        for _ in range(history.RUNS_KEPT // 2):
            history.record_test(client, ORG, TARGET, "t.js", value, "passed")

    threads = [
        threading.Thread(target=record, args=(client, float(i + 1)))
        for i, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = clients[0].hget(Keys.test_history(ORG, TARGET), "t.js")
    assert kept is not None
    assert sorted(kept.split()) == ["1.0"] * (history.RUNS_KEPT // 2) + ["2.0"] * (
        history.RUNS_KEPT // 2
    )
    for client in clients:
        client.close()
