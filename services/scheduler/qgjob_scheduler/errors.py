"""The scheduler's exceptions."""

from __future__ import annotations

import redis

# Redis errors after which the same call may succeed later (server unreachable or slow).
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)


class SchedulerError(Exception):
    """Base of every error the scheduler raises on purpose."""


class ConfigError(SchedulerError):
    """An environment variable is set to a value the scheduler cannot use."""


class InvalidEvent(SchedulerError):
    """A decoded event whose payload lacks required fields or has wrong types.

    Such an event can never be applied: it is dead-lettered, not retried.
    """


class DispatchFailed(SchedulerError):
    """A dispatch pass failed for at least one target (logged; the next pass retries)."""
