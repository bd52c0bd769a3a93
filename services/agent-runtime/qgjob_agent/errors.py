"""The agent's exceptions."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """An environment variable has a value the agent cannot use; it refuses to start."""


class InstallError(AgentError):
    """Installing an app version on the device failed; the message says why."""
