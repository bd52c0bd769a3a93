"""Tenants through the compose stack (issue 9): QGJOB_AUTH=tokens on a stack of its own;
the seed's CLI on the main stack, whose auth is off."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from e2e.conftest import Stack, qgjob_exe
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
