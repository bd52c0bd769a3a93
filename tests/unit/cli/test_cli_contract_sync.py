"""The CLI spells statuses and targets itself (it installs without qgjob-contract); these
tests fail when its copies drift from the contract's values."""

from __future__ import annotations

import click

from qgjob_cli import formatting, vocabulary
from qgjob_cli.exit_codes import ExitCode
from qgjob_cli.main import cli
from qgjob_cli.waiting import WaitResult
from qgjob_contract.roles import Role
from qgjob_contract.statuses import FINAL_STATUSES, JobStatus
from qgjob_contract.targets import DEFAULT_TARGET, Target


def _option(command: str, name: str) -> click.Option:
    (option,) = (
        param
        for param in cli.commands[command].params
        if isinstance(param, click.Option) and param.name == name
    )
    return option


def test_statuses_are_the_contracts_in_lifecycle_order() -> None:
    assert list(vocabulary.STATUSES) == [status.value for status in JobStatus]


def test_the_wait_reads_the_contracts_final_statuses() -> None:
    assert (vocabulary.PASSED, vocabulary.FAILED) == (JobStatus.PASSED, JobStatus.FAILED)
    assert (vocabulary.ERROR, vocabulary.CANCELLED) == (JobStatus.ERROR, JobStatus.CANCELLED)
    for status in FINAL_STATUSES:
        job = {"job_id": "j", "status": status.value, "final": True}
        assert WaitResult(jobs=[job], timed_out=False).exit_code == {
            JobStatus.PASSED: ExitCode.OK,
            JobStatus.FAILED: ExitCode.TESTS_FAILED,
            JobStatus.CANCELLED: ExitCode.CANCELLED,
        }.get(status, ExitCode.INFRA_ERROR)


def test_targets_and_default_target_are_the_contracts() -> None:
    assert list(vocabulary.TARGETS) == [target.value for target in Target]
    assert _option("submit", "target").default == DEFAULT_TARGET


def test_help_lists_every_status_and_target() -> None:
    assert _option("list", "status").help == ", ".join(JobStatus)
    assert _option("submit", "target").help == f"Kind of device: {', '.join(Target)}."


def test_status_column_fits_the_longest_status() -> None:
    job = {"job_id": "j", "status": max(JobStatus, key=len).value}
    shorter = {"job_id": "j", "status": JobStatus.QUEUED.value}
    assert len(formatting.job_line(job)) == len(formatting.job_line(shorter))


def test_roles_are_the_contracts() -> None:
    assert list(vocabulary.ROLES) == [role.value for role in Role]
