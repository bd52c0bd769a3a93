"""Schemathesis against the real API container (issue 9, point 6), under both auth modes.

The stacks are the shared API-only stacks (e2e/tokens_stack.py): QGJOB_AUTH=tokens and
QGJOB_AUTH=off. The document is the one each API serves at /openapi.json; every operation is
fuzzed with positive and negative cases (`--mode all`): with tokens as an admin, as an org's
submitter, as a viewer and with no token at all; with auth off with no token (the seed's
clients), where every route runs its own code; that API's document requires no token (it
says what the running API does), so every check applies there too.
Each run must end with no failure of the checks below: no 5xx, every status code, content
type, header and body (error bodies included: `{"error", "message"}`) as the spec says,
invalid input refused, auth not ignored.

Two checks are left out, for reasons the spec cannot express:
- positive_data_acceptance: some documented rules are not JSON Schema (a test path's safety
  rules, tests x targets at most API_MAX_JOBS_PER_REQUEST, a cursor is one this API
  returned, a job id must exist), so a schema-valid body may rightly be a 400 or 404.
- allow_header_conformance: `/v1/jobs/lookup` is also matched by `GET /v1/jobs/<job_id>`
  (a job with id "lookup"), so Flask's Allow header there names GET too.

Bounded: a fixed seed and a fixed number of examples per operation; the coverage phase (the
boundary values of every schema, the most cases) runs for the admin only, who reaches every
route's own code; the other profiles mostly meet 401/403/404. One worker: schemathesis
4.32's coverage phase raised an internal KeyError here with two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from e2e.tokens_stack import TokensStack

SEED = "20261202"
_METHODS = {"get", "put", "post", "delete", "patch"}
EXCLUDED = ("positive_data_acceptance", "allow_header_conformance")
ALL_PHASES = "examples,coverage,fuzzing,stateful"
NO_COVERAGE = "examples,fuzzing,stateful"
# profile -> (examples per operation, phases)
PROFILES = {
    "admin": (10, ALL_PHASES),
    "submitter": (6, NO_COVERAGE),
    "viewer": (4, NO_COVERAGE),
    "anonymous": (4, NO_COVERAGE),
    "auth-off": (10, ALL_PHASES),
}


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    return str(found) if found.exists() else "schemathesis"


def _spec_file(stack: TokensStack, directory: Path) -> Path:
    answer = stack.request("GET", "/openapi.json", stack.admin_token or None)
    assert answer.status_code == 200, answer.text
    path = directory / "openapi.json"
    path.write_text(json.dumps(answer.json()))
    return path


def _token_for(tokens_stack: TokensStack, profile: str) -> str | None:
    if profile == "admin":
        return tokens_stack.admin_token
    if profile == "anonymous":
        return None
    token: str = tokens_stack.create_token("fuzz", profile)["token"]
    return token


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_operation_survives_fuzzing(
    request: pytest.FixtureRequest, profile: str, tmp_path: Path
) -> None:
    auth_off = profile == "auth-off"
    stack: TokensStack = request.getfixturevalue("open_stack" if auth_off else "tokens_stack")
    spec_file = _spec_file(stack, tmp_path)
    token = None if auth_off else _token_for(stack, profile)
    command = [
        _schemathesis(),
        "run",
        str(spec_file),
        "--url",
        stack.api_url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED),
        "--mode",
        "all",
        "--max-examples",
        str(PROFILES[profile][0]),
        "--phases",
        PROFILES[profile][1],
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    operations = sum(
        method in _METHODS
        for item in json.loads(spec_file.read_text())["paths"].values()
        for method in item
    )
    assert f"Tested: {operations}\n" in done.stdout, report  # every operation was fuzzed
    # the stack is still answering (nothing the fuzzer sent broke it)
    assert requests.get(stack.api_url + "/readyz", timeout=10).status_code == 200
