"""A second compose stack with QGJOB_AUTH=tokens, for the tenant tests and the fuzzing.

Only the API and what it needs (Redis, RabbitMQ) are started: these tests look at what the
API answers, not at jobs running. It is one stack for the whole session, shared by every
test that asks for `tokens_stack`, under the project `{QGJOB_E2E_PROJECT}-tokens`, on a free
host port, and removed with its volumes at the end. It is started with `docker compose -p`
directly (not testcontainers), so it never touches the main stack's environment.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from e2e.conftest import PROJECT, REPO_ROOT, _free_port, wait_until

TOKENS_PROJECT = f"{PROJECT}-tokens"


@dataclass(frozen=True)
class TokensStack:
    api_url: str
    admin_token: str

    def request(
        self, method: str, path: str, token: str | None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def create_token(self, org_id: str, role: str) -> dict[str, Any]:
        response = self.request(
            "POST", "/v1/admin/tokens", self.admin_token, json={"org_id": org_id, "role": role}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def _compose(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "-p", TOKENS_PROJECT, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def tokens_stack() -> Iterator[TokensStack]:
    port = _free_port()
    admin_token = secrets.token_hex(32)
    env = {
        **os.environ,
        "QGJOB_API_PORT": str(port),
        "QGJOB_AUTH": "tokens",
        "QGJOB_ADMIN_TOKEN": admin_token,
    }
    env.pop("COMPOSE_PROJECT_NAME", None)
    stack = TokensStack(api_url=f"http://127.0.0.1:{port}", admin_token=admin_token)
    try:
        deadline = time.monotonic() + 600
        while True:  # `up --wait` is idempotent: a healthcheck slow on a loaded machine
            done = _compose(env, "up", "--build", "-d", "--wait", "api", timeout=600)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the tokens stack did not start: {done.stderr[-2000:]}")
            time.sleep(5)
        wait_until(
            lambda: requests.get(stack.api_url + "/readyz", timeout=5).status_code == 200,
            timeout=60,
            what="the tokens stack's API to be ready",
        )
        yield stack
    finally:
        logs = _compose(env, "logs", "--no-color", "api", timeout=120)
        (REPO_ROOT / ".e2e").mkdir(exist_ok=True)
        (REPO_ROOT / ".e2e" / "compose-tokens.log").write_text(logs.stdout)
        _compose(env, "down", "-v", "--remove-orphans", timeout=300)
