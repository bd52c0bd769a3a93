"""The JUnit report's `rerun:` property with the scheduler's history, which lists every
attempt, the final one included (`retried` marks those after which the job went back)."""

from __future__ import annotations

from typing import Any

from qgjob_cli.junit import _rerun


def _entry(outcome: str, reason: str, agent: str, *, retried: bool) -> dict[str, Any]:
    return {"outcome": outcome, "reason": reason, "agent_id": agent, "retried": retried}


def test_one_attempt_listed_in_the_history_is_no_rerun() -> None:
    job = {"attempts": 1, "history": [_entry("passed", "", "emu-1", retried=False)]}
    assert _rerun(job) is None  # type: ignore[arg-type]


def test_only_the_earlier_attempts_are_named() -> None:
    job = {
        "attempts": 3,
        "history": [
            _entry("error", "install_failed", "emu-1", retried=True),
            _entry("failed", "", "emu-2", retried=True),  # a rerun of a failed test
            _entry("passed", "", "emu-2", retried=False),
        ],
    }
    assert _rerun(job) == (  # type: ignore[arg-type]
        "3 attempts (earlier: install_failed on emu-1; failed on emu-2)"
    )


def test_history_of_an_older_server_lists_only_earlier_attempts() -> None:
    job = {"attempts": 2, "history": [{"agent_id": "emu-7", "reason": "agent_lost"}]}
    assert _rerun(job) == "2 attempts (earlier: agent_lost on emu-7)"  # type: ignore[arg-type]
