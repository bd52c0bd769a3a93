"""Tenants through the compose stack (issue 9): QGJOB_AUTH=tokens on a stack of its own;
the seed's CLI on the main stack, whose auth is off."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from urllib.parse import urlsplit

from e2e.conftest import Stack, qgjob_exe, retried
from e2e.tokens_stack import TokensStack


def _job(org: str) -> dict[str, str]:
    return {"org_id": org, "app_version_id": f"v-{uuid.uuid4().hex[:6]}", "test_path": "a.js"}


def _qgjob(stack: TokensStack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QGJOB_API_URL": stack.api_url, "QGJOB_TOKEN": token}
    return subprocess.run(
        [qgjob_exe(), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_two_orgs_cannot_see_or_touch_each_others_jobs(tokens_stack: TokensStack) -> None:
    acme = tokens_stack.create_token("acme", "submitter")
    beta = tokens_stack.create_token("beta", "submitter")
    made = tokens_stack.request("POST", "/v1/jobs", acme["token"], json=_job("acme"))
    assert made.status_code == 201, made.text
    job = made.json()["job"]
    assert job["submitted_by"] == acme["token_id"]
    for path in (f"/v1/jobs/{job['job_id']}", f"/status/{job['job_id']}"):
        hidden = tokens_stack.request("GET", path, beta["token"])
        assert hidden.status_code == 404, path
        assert hidden.json()["error"] == "not_found"
        assert tokens_stack.request("GET", path, acme["token"]).status_code == 200
    listed = tokens_stack.request("GET", "/v1/jobs", beta["token"], params={"org_id": "acme"})
    assert listed.status_code == 200
    assert listed.json()["jobs"] == []
    forged = tokens_stack.request("POST", "/submit", beta["token"], json=_job("acme"))
    assert forged.status_code == 403
    assert forged.json()["error"] == "forbidden"


def test_another_orgs_job_and_run_cannot_be_cancelled_or_read(
    tokens_stack: TokensStack,
) -> None:
    """Two orgs cannot TOUCH each other's jobs: a cancel of acme's job or run by beta is a
    404 (bulk: `not_found`) and the job stays as it was; every read of them is a 404 too."""
    acme = tokens_stack.create_token("acme", "submitter")
    beta = tokens_stack.create_token("beta", "submitter")
    run_body = {"org_id": "acme", "app_version_id": "v-touch", "tests": ["a.js", "b.js"]}
    made = tokens_stack.request("POST", "/v1/runs", acme["token"], json=run_body)
    assert made.status_code == 201, made.text
    run_id, (job_id, other_id) = made.json()["run_id"], made.json()["job_ids"]

    def record() -> dict[str, object]:
        answer = retried(
            lambda: tokens_stack.request("GET", f"/v1/jobs/{job_id}", acme["token"]),
            what=f"GET /v1/jobs/{job_id}",
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    before = record()
    one = tokens_stack.request("POST", f"/v1/jobs/{job_id}/cancel", beta["token"])
    assert one.status_code == 404, one.text
    assert one.json()["error"] == "not_found"
    bulk = tokens_stack.request(
        "POST", "/v1/jobs/cancel", beta["token"], json={"job_ids": [job_id, other_id]}
    )
    assert bulk.status_code == 200, bulk.text
    assert bulk.json() == {"requested": [], "already_final": [], "not_found": [job_id, other_id]}
    by_run = tokens_stack.request("POST", "/v1/jobs/cancel", beta["token"], json={"run_id": run_id})
    assert by_run.status_code == 404, by_run.text
    after = record()
    assert after == before  # nothing changed: no cancel asked, the same status
    assert after["cancel_requested_at"] is None
    for method, path, body in (
        ("GET", f"/v1/runs/{run_id}", None),
        ("POST", "/v1/jobs/lookup", {"job_ids": [job_id]}),
    ):
        hidden = tokens_stack.request(method, path, beta["token"], json=body)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"] == "not_found"
    runs = tokens_stack.request("GET", "/v1/runs", beta["token"], params={"org_id": "acme"})
    assert runs.status_code == 200
    assert runs.json()["runs"] == []
    own = tokens_stack.request("GET", "/v1/runs", beta["token"])
    assert run_id not in {run["run_id"] for run in own.json()["runs"]}
    jobs = tokens_stack.request("GET", "/v1/jobs", beta["token"])
    assert {job_id, other_id}.isdisjoint(job["job_id"] for job in jobs.json()["jobs"])
    # and acme itself may cancel it: the 404s above were the org check, not a broken route
    mine = tokens_stack.request("POST", f"/v1/jobs/{job_id}/cancel", acme["token"])
    assert mine.status_code == 202, mine.text


def _raw(api_url: str, request: bytes) -> tuple[int, dict[str, object]]:
    """Send raw bytes to the API container; its status and JSON body."""
    parts = urlsplit(api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    parsed: dict[str, object] = json.loads(body)
    return status, parsed


def test_gunicorns_own_refusals_are_json_errors(tokens_stack: TokensStack) -> None:
    """Past gunicorn's limits (above the app's) the container still answers JSON 4xx."""
    head = b"Host: api\r\nConnection: close\r\n"
    cases = [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n" + head + b"\r\n", 414),
        (
            b"GET /healthz HTTP/1.1\r\n"
            + head
            + b"".join(b"X-%d: v\r\n" % i for i in range(60))
            + b"\r\n",
            431,
        ),
        (b"GET /healthz HTTP/1.1\r\n" + head + b"X-Big: " + b"v" * 9000 + b"\r\n\r\n", 431),
        (b"GET /he\x01lthz HTTP/1.1\r\n" + head + b"\r\n", 400),
        # the app's own bound answers first: 45 fields is over its 40, under gunicorn's 50
        (
            b"GET /healthz HTTP/1.1\r\n"
            + head
            + b"".join(b"X-%d: v\r\n" % i for i in range(45))
            + b"\r\n",
            431,
        ),
    ]
    for request, expected in cases:
        status, body = _raw(tokens_stack.api_url, request)
        assert status == expected, (request[:60], body)
        assert set(body) == {"error", "message"}, body
        assert isinstance(body["message"], str)
        assert body["message"]


def test_the_access_log_escapes_control_characters(tokens_stack: TokensStack) -> None:
    """A tab in a header, a C1 character (U+0085 NEL) and ESC in the request line: none is
    written raw by the container's logs (gunicorn's access and error logs)."""
    marker = uuid.uuid4().hex
    head = b"Host: api\r\nConnection: close\r\n"
    _raw(
        tokens_stack.api_url,
        b"GET /healthz HTTP/1.1\r\n" + head + b"User-Agent: " + marker.encode() + b"\tx\r\n\r\n",
    )
    _raw(
        tokens_stack.api_url,
        b"GET /healthz?" + marker.encode() + b"=\xc2\x85\x1b[31m HTTP/1.1\r\n" + head + b"\r\n",
    )
    logs = tokens_stack.api_logs()
    lines = [line for line in logs.split(b"\n") if marker.encode() in line]
    assert len(lines) >= 2, logs[-3000:]
    for line in lines:
        text = line.decode("utf-8", errors="replace")
        assert not any(0x80 <= ord(char) <= 0x9F or ord(char) < 0x20 for char in text), text
    assert any(b"\\t" in line for line in lines), lines
    assert any(b"\\x85" in line or b"\\x1b" in line for line in lines), lines


def test_a_viewer_cannot_submit_and_a_revoked_token_stops_at_once(
    tokens_stack: TokensStack,
) -> None:
    viewer = tokens_stack.create_token("acme", "viewer")
    refused = tokens_stack.request("POST", "/v1/jobs", viewer["token"], json=_job("acme"))
    assert refused.status_code == 403
    assert tokens_stack.request("GET", "/v1/jobs", viewer["token"]).status_code == 200
    # revoked through the real CLI with the admin token
    revoked = _qgjob(
        tokens_stack, tokens_stack.admin_token, "admin", "token", "revoke", viewer["token_id"]
    )
    assert revoked.returncode == 0, revoked.stderr
    after = tokens_stack.request("GET", "/v1/jobs", viewer["token"])
    assert after.status_code == 401
    assert after.json()["error"] == "unauthorized"


def test_the_cli_works_with_a_token_and_stops_without(tokens_stack: TokensStack) -> None:
    created = _qgjob(
        tokens_stack,
        tokens_stack.admin_token,
        "admin",
        "token",
        "create",
        "cli-org",
        "--role",
        "submitter",
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    submitted = _qgjob(
        tokens_stack,
        token,
        "submit",
        "--org-id=cli-org",
        "--app-version-id=v1",
        "--test=tests/a.spec.js",
        "--json",
    )
    assert submitted.returncode == 0, submitted.stderr
    listed = _qgjob(tokens_stack, token, "list", "--org-id=cli-org", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {job["org_id"] for job in json.loads(listed.stdout)["jobs"]} == {"cli-org"}
    anonymous = _qgjob(tokens_stack, "", "list", "--org-id=cli-org")
    assert anonymous.returncode == 2
    assert "Bearer" in anonymous.stderr
    listing = _qgjob(tokens_stack, tokens_stack.admin_token, "admin", "token", "list", "--json")
    assert token not in listing.stdout  # secrets are never listed


def test_probes_answer_without_a_token(tokens_stack: TokensStack) -> None:
    for path in ("/healthz", "/readyz"):
        assert tokens_stack.request("GET", path, None).status_code == 200
    assert tokens_stack.request("GET", "/v1/agents", None).status_code == 401


def test_the_seed_cli_still_works_with_auth_off(stack: Stack) -> None:
    done = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id=seed-{uuid.uuid4().hex[:6]}",
        "--test=tests/onboarding.spec.js",
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    agents = stack.get("/v1/agents")
    assert agents.status_code == 200
