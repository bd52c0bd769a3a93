"""Pure parts of job control in the API: the cancel body and the sorting of the script's
replies, the idempotency fingerprint/scope/TTL/key rules, the no-live-agent warning and
the job options' validation."""

from __future__ import annotations

from typing import Any

import pytest

from qgjob_api.cancel import CancelIn, classify, parse_cancel
from qgjob_api.errors import ValidationFailed
from qgjob_api.idempotency import (
    MAX_KEY_TTL_S,
    Stored,
    check_key,
    fingerprint,
    key_ttl_s,
    org_scope,
)
from qgjob_api.liveness import no_agent_warning
from qgjob_api.validation import MAX_QUEUE_TTL_S, MAX_RETRIES, MAX_TIMEOUT_S, parse_job, parse_run

JOB = {"org_id": "o", "app_version_id": "v", "test_path": "a.js"}


def test_classify_sorts_each_reply_into_its_list() -> None:
    ids = ["new", "gone", "done", "again"]
    outcome = classify(ids, [[1, "queued"], [0], [3, b"passed"], [2, "running"]])
    assert outcome.requested == ["new", "again"]
    assert outcome.marked == ["new"]  # only what this request marked is taken back
    assert outcome.already_final == {"done": "passed"}
    assert outcome.not_found == ["gone"]


def test_parse_cancel_takes_ids_without_repeats_or_a_run() -> None:
    assert parse_cancel({"job_ids": ["a", "b", "a"]}, max_jobs=3) == CancelIn(job_ids=["a", "b"])
    assert parse_cancel({"run_id": "r"}, max_jobs=3) == CancelIn(run_id="r")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"job_ids": ["a"], "run_id": "r"}, "body"),
        ({"job_ids": ["a", "b", "c", "d"]}, "job_ids"),
        ({"job_ids": "a"}, "job_ids"),
        ({"job_ids": [""]}, "job_ids"),
        ({"job_ids": []}, "job_ids"),  # an empty list names no job: not "every job"
        ({"run_id": 5}, "run_id"),
        ({"all": True}, "all"),
        ("a", "body"),
    ],
)
def test_parse_cancel_refuses_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_cancel(body, max_jobs=3)
    assert caught.value.field == field


def test_fingerprint_ignores_key_order_but_not_values_or_route() -> None:
    base = fingerprint("jobs", {"a": 1, "b": [1, 2]})
    assert fingerprint("jobs", {"b": [1, 2], "a": 1}) == base
    assert fingerprint("jobs", {"a": 1, "b": [2, 1]}) != base
    assert fingerprint("runs", {"a": 1, "b": [1, 2]}) != base


def test_org_scope_is_the_org_or_the_sorted_orgs_of_a_batch() -> None:
    assert org_scope(["acme"]) == "acme"
    assert org_scope(["b", "a", "b"]) == "a,b"


def test_key_ttl_is_a_day_or_the_retention_if_shorter() -> None:
    assert key_ttl_s(7 * 24 * 3600) == MAX_KEY_TTL_S == 24 * 3600
    assert key_ttl_s(90.7) == 90
    assert key_ttl_s(0.2) == 1


@pytest.mark.parametrize("key", ["a", "x" * 255, "ci-run 42/retry:1"])
def test_check_key_accepts_printable_ascii_up_to_255(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9", "new\nline"])
def test_check_key_refuses_the_rest(key: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_key(key)
    assert caught.value.field == "Idempotency-Key"


def test_stored_round_trips() -> None:
    done = Stored("done", "f", status=201, body={"job_id": "j"})
    assert Stored.decode(done.encode()) == done
    pending = Stored("pending", "f", marker="m")
    assert Stored.decode(pending.encode()) == pending


def test_no_warning_when_every_target_has_a_live_agent() -> None:
    assert no_agent_warning(["emulator", "emulator"], {"emulator", "device"}) is None


def test_the_warning_names_each_target_without_a_live_agent_once() -> None:
    warning = no_agent_warning(["device", "emulator", "device", "browserstack"], {"emulator"})
    assert warning is not None
    assert warning.startswith("no live agent for targets 'device', 'browserstack':")
    single = no_agent_warning(["device"], set())
    assert single is not None
    assert single.startswith("no live agent for target 'device':")


def test_job_options_default_to_no_retries_and_no_limits() -> None:
    job = parse_job(JOB)
    assert (job.retries, job.timeout_s, job.queue_ttl_s) == (0, None, None)


def test_job_options_at_their_bounds_are_accepted() -> None:
    job = parse_job(
        {**JOB, "retries": MAX_RETRIES, "timeout_s": MAX_TIMEOUT_S, "queue_ttl_s": MAX_QUEUE_TTL_S}
    )
    assert (job.retries, job.timeout_s, job.queue_ttl_s) == (5, 86400.0, 604800.0)
    assert parse_job({**JOB, "timeout_s": 0.001}).timeout_s == 0.001


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retries", 6),
        ("retries", -1),
        ("retries", 1.0),
        ("retries", True),
        ("retries", "1"),
        ("timeout_s", 0),
        ("timeout_s", MAX_TIMEOUT_S + 1),
        ("timeout_s", False),
        ("timeout_s", "10"),
        ("queue_ttl_s", -5),
        ("queue_ttl_s", MAX_QUEUE_TTL_S + 0.5),
    ],
)
def test_job_options_out_of_bounds_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_job({**JOB, field: value})
    assert caught.value.field == field
    run = {"org_id": "o", "app_version_id": "v", "tests": ["a.js"], field: value}
    with pytest.raises(ValidationFailed) as caught:
        parse_run(run, max_jobs=10)
    assert caught.value.field == field


def test_run_options_reach_every_job_of_the_matrix() -> None:
    run = parse_run(
        {
            "org_id": "o",
            "app_version_id": "v",
            "tests": ["a.js", "b.js"],
            "targets": ["emulator", "device"],
            "retries": 3,
            "queue_ttl_s": 60,
        },
        max_jobs=10,
    )
    assert {(job.retries, job.timeout_s, job.queue_ttl_s) for job in run.jobs()} == {
        (3, None, 60.0)
    }
