"""Job control in the CLI: `qgjob cancel` and its exit codes, the job options of `submit`
and `run`, the Idempotency-Key they send and reuse on their own retries, the warning."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from qgjob_cli.control import SUBMIT_ATTEMPTS, cancel_exit_code
from qgjob_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from tests.unit.cli.conftest import FakeApi, Run

SUBMIT = ("submit", "--org-id=o", "--app-version-id=v", "--test=a.js")
RUN = ("run", "--org-id=o", "--app-version-id=v", "a.js")
UNAVAILABLE = (503, {"error": "unavailable", "message": "broker down"})


def _posts(api: FakeApi, path: str) -> list[requests.PreparedRequest]:
    return [r for r in api.requests if r.method == "POST" and urlsplit(r.url or "").path == path]


def _cancel_answer(**lists: Any) -> dict[str, Any]:
    return {"requested": [], "already_final": [], "not_found": [], **lists}


def test_cancel_sends_one_bulk_request_and_prints_a_line_per_job(qgjob: Run, api: FakeApi) -> None:
    api.respond(202, _cancel_answer(requested=["j1", "j2"]))

    result = qgjob("cancel", "j1", "j2", "j1")

    assert result.exit_code == ExitCode.OK == 0, result.output
    (request,) = _posts(api, "/v1/jobs/cancel")
    assert json.loads(request.body or b"") == {"job_ids": ["j1", "j2"]}
    assert result.stdout.splitlines() == ["cancel requested: j1", "cancel requested: j2"]


def test_cancel_of_a_final_job_exits_9_and_says_so(qgjob: Run, api: FakeApi) -> None:
    api.respond(
        200, _cancel_answer(requested=["j1"], already_final=[{"job_id": "j2", "status": "passed"}])
    )

    result = qgjob("cancel", "j1", "j2")

    assert result.exit_code == ExitCode.ALREADY_FINAL == 9
    assert "already final (passed): j2" in result.stdout.splitlines()


def test_cancel_of_an_unknown_job_exits_5(qgjob: Run, api: FakeApi) -> None:
    api.respond(202, _cancel_answer(requested=["j1"], not_found=["ghost"]))
    result = qgjob("cancel", "j1", "ghost")
    assert result.exit_code == ExitCode.NOT_FOUND == 5
    assert "not found: ghost" in result.stdout


def test_cancel_of_a_run_sends_its_id(qgjob: Run, api: FakeApi) -> None:
    api.respond(202, {"run_id": "r1", **_cancel_answer(requested=["j1"])})
    result = qgjob("cancel", "--run", "r1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(_posts(api, "/v1/jobs/cancel")[0].body or b"") == {"run_id": "r1"}
    assert json.loads(result.stdout)["requested"] == ["j1"]


def test_cancel_of_a_finished_run_exits_9(qgjob: Run, api: FakeApi) -> None:
    final = [{"job_id": "j1", "status": "failed"}]
    api.respond(200, {"run_id": "r1", **_cancel_answer(already_final=final)})
    result = qgjob("cancel", "--run", "r1")
    assert result.exit_code == 9
    assert "nothing to cancel in run r1: every job is final" in result.stdout


def test_cancel_of_an_unknown_run_exits_5(qgjob: Run, api: FakeApi) -> None:
    api.respond(404, {"error": "not_found", "message": "no run with id 'r9'"})
    result = qgjob("cancel", "--run", "r9")
    assert result.exit_code == 5
    assert result.stderr == "qgjob: error: not found: no run with id 'r9'\n"


def test_cancel_without_ids_is_a_usage_error(qgjob: Run, api: FakeApi) -> None:
    result = qgjob("cancel")
    assert result.exit_code == 2
    assert api.requests == []


def test_cancel_exit_code_rules() -> None:
    requested = _cancel_answer(requested=["a"])
    final = _cancel_answer(already_final=[{"job_id": "b", "status": "passed"}])
    assert cancel_exit_code([requested], named_ids=True) == ExitCode.OK
    assert cancel_exit_code([final], named_ids=True) == ExitCode.ALREADY_FINAL
    partly_final_run = {"run_id": "r", **requested, "already_final": final["already_final"]}
    assert cancel_exit_code([partly_final_run], named_ids=False) == ExitCode.OK
    assert cancel_exit_code([{"run_id": "r", **final}], named_ids=False) == 9
    missing = _cancel_answer(not_found=["x"])
    assert cancel_exit_code([final, missing], named_ids=True) == ExitCode.NOT_FOUND


def test_submit_sends_a_fresh_idempotency_key_each_time(qgjob: Run, api: FakeApi) -> None:
    assert qgjob(*SUBMIT).exit_code == 0
    assert qgjob(*SUBMIT).exit_code == 0
    keys = [r.headers["Idempotency-Key"] for r in _posts(api, "/v1/jobs")]
    assert len(keys) == 2
    assert keys[0] != keys[1]
    assert all(str(uuid.UUID(key)) == key for key in keys)


def test_submit_retries_a_transient_failure_with_the_same_key(qgjob: Run, api: FakeApi) -> None:
    api.script(requests.ReadTimeout("lost answer"), UNAVAILABLE)

    result = qgjob(*SUBMIT, "--idempotency-key=ci-42")

    assert result.exit_code == 0, result.output
    posts = _posts(api, "/v1/jobs")
    assert [r.headers["Idempotency-Key"] for r in posts] == ["ci-42"] * 3
    assert result.stdout.splitlines() == list(api.jobs)
    assert result.stderr == ""  # the retries are silent; a failure prints one line


def test_submit_retries_while_the_key_is_in_progress(qgjob: Run, api: FakeApi) -> None:
    api.script((409, {"error": "idempotency_in_progress", "message": "still processing"}))
    result = qgjob(*SUBMIT)
    assert result.exit_code == 0, result.output
    assert len(_posts(api, "/v1/jobs")) == 2


def test_submit_gives_up_after_its_attempts_with_the_last_error(qgjob: Run, api: FakeApi) -> None:
    api.respond(*UNAVAILABLE)
    result = qgjob(*SUBMIT)
    assert result.exit_code == ExitCode.SERVER_ERROR
    assert len(_posts(api, "/v1/jobs")) == SUBMIT_ATTEMPTS
    assert result.stderr.splitlines()[-1] == "qgjob: error: server error (HTTP 503): broker down"


def test_a_reused_key_is_not_retried(qgjob: Run, api: FakeApi) -> None:
    api.respond(422, {"error": "idempotency_key_reused", "message": "used before"})
    result = qgjob(*SUBMIT, "--idempotency-key=k")
    assert result.exit_code == ExitCode.USAGE
    assert len(_posts(api, "/v1/jobs")) == 1


def test_run_sends_its_key_and_reuses_it_on_retry(qgjob: Run, api: FakeApi) -> None:
    api.script(requests.ConnectionError("reset"))
    result = qgjob(*RUN, "--idempotency-key=build-7")
    assert result.exit_code == 0, result.output
    posts = _posts(api, "/v1/runs")
    assert [r.headers["Idempotency-Key"] for r in posts] == ["build-7", "build-7"]
    assert len(api.runs) == 1


def test_job_options_are_sent_only_when_given(qgjob: Run, api: FakeApi) -> None:
    assert qgjob(*SUBMIT).exit_code == 0
    assert qgjob(*SUBMIT, "--retries=2", "--test-timeout=90", "--queue-ttl=600").exit_code == 0
    plain, with_options = api.bodies()
    assert {"retries", "timeout_s", "queue_ttl_s"}.isdisjoint(plain[0])
    assert (with_options[0]["retries"], with_options[0]["timeout_s"]) == (2, 90.0)
    assert with_options[0]["queue_ttl_s"] == 600.0


def test_run_sends_the_job_options_in_the_run_body(qgjob: Run, api: FakeApi) -> None:
    result = qgjob(*RUN, "--retries=1", "--queue-ttl=30", "--timeout=100")
    assert result.exit_code == 0, result.output
    (body,) = api.bodies()
    assert (body["retries"], body["queue_ttl_s"]) == (1, 30.0)
    assert "timeout_s" not in body  # --timeout is the wait's, not the test's


@pytest.mark.parametrize("option", ["--retries=6", "--retries=-1", "--test-timeout=0"])
def test_job_options_out_of_range_are_usage_errors(qgjob: Run, api: FakeApi, option: str) -> None:
    result = qgjob(*SUBMIT, option)
    assert result.exit_code == 2
    assert api.requests == []


def test_the_servers_warning_goes_to_stderr(qgjob: Run, api: FakeApi) -> None:
    warning = "no live agent for target 'device': the jobs were accepted and wait for one"
    record = {"job_id": "j1", "status": "queued", "final": False}
    api.respond(201, {"jobs": [record], "warning": warning})
    result = qgjob(*SUBMIT)
    assert result.exit_code == 0
    assert result.stdout == "j1\n"
    assert result.stderr == f"qgjob: warning: {warning}\n"
