"""How long tests and installs take, learned from the agents' results, kept bounded in Redis.

The scheduler records each finished test (`record_test`) and each paid install
(`record_install`); the planner asks for estimates in batches (`test_estimates`,
`install_estimates`), one round trip per call.

- **What counts.** Only PASSING runs feed a test's history: a failing or erroring test often
  stops early (or hangs until a timeout), which says little about how long it takes when it
  works. Installs are recorded when paid, whatever the job's outcome.
- **The estimate** is the 80th percentile (nearest rank) of the recent runs kept: robust to
  one slow outlier, and leaning to the long side, which is the costly side to get wrong when
  planning a makespan. A build never seen gets the caller's default. A test never seen
  gets the same percentile of the org's last `RECENT_KEPT` passing runs of ANY test on the
  target (`Keys.test_history_recent`): a new suite of an org whose tests take 0.1 s is
  not planned as if each took the 30 s default. Only an org with no passing run yet on the
  target gets the caller's default.
- **Bounded.** Per (org, target) one hash per kind (`Keys.test_history`,
  `Keys.install_history`): at most `RUNS_KEPT` runs per test or build, at most
  `ENTRIES_KEPT` tests (or builds) per hash (the least recently recorded are dropped, by an
  index zset scored with Redis TIME), at most `RECENT_KEPT` runs in the (org, target)'s
  recent runs of any test, and all three keys expire `TTL_S` after the last record.
  So one (org, target) holds at most about `ENTRIES_KEPT` x (path + `RUNS_KEPT` numbers).
- **Atomic.** One Lua script (`lua/history_record.lua`) per record: two scheduler replicas
  recording the same test cannot lose a run.
- **Orgs apart.** Histories are keyed by org: two orgs with the same test path or version
  string do not share estimates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Final

from redis import Redis

from qgjob_contract.lua import script
from qgjob_contract.names import Keys
from qgjob_contract.statuses import JobStatus
from qgjob_scheduler.planning import DEFAULT_INSTALL_S, DEFAULT_TEST_S

log = logging.getLogger(__name__)

RUNS_KEPT: Final = 10  # recent runs per test path or app version
RECENT_KEPT: Final = 50  # recent runs of any test per (org, target): unseen tests' estimate
ENTRIES_KEPT: Final = 5000  # test paths (or app versions) per (org, target)
TTL_S: Final = 30 * 24 * 3600  # a history not written for this long expires
PERCENTILE: Final = 0.8

_RECORD: Final = script("qgjob_scheduler", "history_record")


def record_test(  # noqa: PLR0917 (the signature the dispatcher's callers agreed on)
    store: Redis,
    org_id: str,
    target: str,
    test_path: str,
    duration_s: float,
    outcome: str,
) -> bool:
    """Record a finished test; True if it was kept (a passing run with a usable duration)."""
    if outcome != JobStatus.PASSED:
        return False
    return _record(
        store,
        Keys.test_history(org_id, target),
        Keys.test_history_index(org_id, target),
        test_path,
        duration_s,
        recent=Keys.test_history_recent(org_id, target),
    )


def record_install(
    store: Redis, org_id: str, target: str, app_version_id: str, install_s: float
) -> bool:
    """Record a paid install of a build; True if it was kept (a usable duration)."""
    return _record(
        store,
        Keys.install_history(org_id, target),
        Keys.install_history_index(org_id, target),
        app_version_id,
        install_s,
    )


def test_estimates(
    store: Redis,
    org_id: str,
    target: str,
    test_paths: Sequence[str],
    default_s: float = DEFAULT_TEST_S,  # noqa: PT028 (not a test, despite its name)
) -> list[float]:
    """The estimated duration of each of `test_paths`, in order (one round trip); a path
    never seen gets `unseen_default` of the org's recent runs."""
    if not test_paths:
        return []
    pipe = store.pipeline(transaction=False)
    pipe.get(Keys.test_history_recent(org_id, target))
    pipe.hmget(Keys.test_history(org_id, target), list(test_paths))
    recent, raws = pipe.execute()
    return estimates(raws, unseen_default(recent, default_s))


def install_estimates(
    store: Redis,
    org_id: str,
    target: str,
    app_version_ids: Sequence[str],
    default_s: float = DEFAULT_INSTALL_S,
) -> list[float]:
    """The estimated install time of each of `app_version_ids`, in order (one round trip)."""
    return _estimates(store, Keys.install_history(org_id, target), app_version_ids, default_s)


def estimate(runs: Sequence[float], default_s: float) -> float:
    """The PERCENTILE (nearest rank) of `runs`; `default_s` when there are none."""
    if not runs:
        return default_s
    ordered = sorted(runs)
    return ordered[max(math.ceil(PERCENTILE * len(ordered)) - 1, 0)]


def unseen_default(recent: str | bytes | None, default_s: float) -> float:
    """The estimate for a test never seen: the PERCENTILE of the org's recent runs of any
    test (a `Keys.test_history_recent` value), else `default_s`."""
    return estimate(_runs(recent), default_s)


def _record(
    store: Redis, key: str, index: str, field: str, seconds: float, *, recent: str | None = None
) -> bool:
    if not (math.isfinite(seconds) and seconds >= 0):
        log.warning("duration %r for %s in %s is not usable: not recorded", seconds, field, key)
        return False
    keys = [key, index]
    args: list[str | int] = [field, repr(float(seconds)), RUNS_KEPT, ENTRIES_KEPT, TTL_S]
    if recent is not None:
        keys, args = [*keys, recent], [*args, RECENT_KEPT]
    store.register_script(_RECORD)(keys=keys, args=args)
    return True


def _estimates(store: Redis, key: str, fields: Sequence[str], default_s: float) -> list[float]:
    if not fields:
        return []
    return estimates(store.hmget(key, list(fields)), default_s)


def estimates(raws: Sequence[str | bytes | None], default_s: float) -> list[float]:
    """The estimate of each stored entry of an HMGET reply (for callers that pipeline it)."""
    return [estimate(_runs(raw), default_s) for raw in raws]


def _runs(raw: str | bytes | None) -> list[float]:
    if raw is None:
        return []
    text = raw.decode() if isinstance(raw, bytes) else raw
    return [float(value) for value in text.split()]
