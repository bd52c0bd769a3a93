"""`qgjob admin token create|list|revoke` against the fake transport: requests and output."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import FakeApi, Run

SECRET = "qgjob_0123456789abcdef_" + "A" * 43
RECORD = {
    "token_id": "0123456789abcdef",
    "org_id": "acme",
    "role": "submitter",
    "name": "ci",
    "created_at": "2026-12-01T00:00:00.000Z",
    "expires_at": None,
    "revoked_at": None,
}


def test_create_prints_the_token_alone_on_stdout(api: FakeApi, qgjob: Run) -> None:
    api.respond(201, {"token": SECRET, **RECORD})
    result = qgjob(
        "admin",
        "token",
        "create",
        "acme",
        "--role",
        "submitter",
        "--name",
        "ci",
        "--expires-in",
        "3600",
        env={"QGJOB_TOKEN": "the-admin-token"},
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [SECRET]
    assert "cannot be shown again" in result.stderr
    (request,) = api.requests
    assert request.method == "POST"
    assert request.url is not None
    assert request.url.endswith("/v1/admin/tokens")
    assert request.headers["Authorization"] == "Bearer the-admin-token"
    assert json.loads(request.body or b"") == {
        "org_id": "acme",
        "role": "submitter",
        "name": "ci",
        "expires_in_s": 3600,
    }


def test_create_refuses_an_unknown_role_before_sending(api: FakeApi, qgjob: Run) -> None:
    result = qgjob("admin", "token", "create", "acme", "--role", "owner")
    assert result.exit_code == 2
    assert api.requests == []


def test_list_shows_one_row_per_token(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"tokens": [RECORD, {**RECORD, "token_id": "f" * 16, "revoked_at": "x"}]})
    result = qgjob("admin", "token", "list", "--org-id", "acme")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["TOKEN", "ID", "ORG", "ROLE"]
    assert lines[1].split() == [
        "0123456789abcdef",
        "acme",
        "submitter",
        "ci",
        "2026-12-01T00:00:00.000Z",
        "-",
        "-",
    ]
    assert lines[2].split()[-1] == "x"
    assert api.requests[0].url is not None
    assert api.requests[0].url.endswith("/v1/admin/tokens?org_id=acme")


def test_revoke_posts_to_the_tokens_revoke_route(api: FakeApi, qgjob: Run) -> None:
    api.respond(200, {"token": {**RECORD, "revoked_at": "2026-12-01T01:00:00.000Z"}})
    result = qgjob("admin", "token", "revoke", "0123456789abcdef")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "revoked 0123456789abcdef (org acme) at 2026-12-01T01:00:00.000Z"
    )
    (request,) = api.requests
    assert request.method == "POST"
    assert request.url is not None
    assert request.url.endswith("/v1/admin/tokens/0123456789abcdef/revoke")


def test_a_refused_token_is_a_usage_error(api: FakeApi, qgjob: Run) -> None:
    api.respond(401, {"error": "unauthorized", "message": "the token is not valid"})
    result = qgjob("admin", "token", "list")
    assert result.exit_code == 2
    assert "the token is not valid" in result.output
