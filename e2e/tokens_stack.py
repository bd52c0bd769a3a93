"""API-only compose stacks for the tenant tests and the fuzzing: `tokens_stack` with
QGJOB_AUTH=tokens, `open_stack` with QGJOB_AUTH=off (the compose default).

Only the API and what it needs (Redis, RabbitMQ) are started: these tests look at what the
API answers, not at jobs running. Each is one stack for the whole session, shared by every
test that asks for it, under the project `{QGJOB_E2E_PROJECT}-tokens` (`-open`), on a free
host port, and removed with its volumes at the end. They are started with `docker compose
-p` directly (not testcontainers), so they never touch the main stack's environment.
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
OPEN_PROJECT = f"{PROJECT}-open"


@dataclass(frozen=True)
class TokensStack:
    api_url: str
    admin_token: str
    project: str = TOKENS_PROJECT

    def api_logs(self) -> bytes:
        """What the API container wrote (gunicorn's access and error logs, the app's), raw:
        `docker logs`, since `docker compose logs` adds terminal codes of its own."""
        container = subprocess.run(
            ["docker", "compose", "-p", self.project, "ps", "-q", "api"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()[0]
        done = subprocess.run(
            ["docker", "logs", container], capture_output=True, timeout=120, check=True
        )
        return done.stdout + done.stderr

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


def _compose(
    project: str, env: dict[str, str], *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "compose", "-p", project, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _api_stack(project: str, auth: dict[str, str]) -> Iterator[TokensStack]:
    port = _free_port()
    env = {**os.environ, "QGJOB_API_PORT": str(port), **auth}
    env.pop("COMPOSE_PROJECT_NAME", None)
    stack = TokensStack(
        api_url=f"http://127.0.0.1:{port}",
        admin_token=auth.get("QGJOB_ADMIN_TOKEN", ""),
        project=project,
    )
    try:
        deadline = time.monotonic() + 600
        while True:  # `up --wait` is idempotent: a healthcheck slow on a loaded machine
            done = _compose(project, env, "up", "--build", "-d", "--wait", "api", timeout=600)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the {project} stack did not start: {done.stderr[-2000:]}")
            time.sleep(5)
        wait_until(
            lambda: requests.get(stack.api_url + "/readyz", timeout=5).status_code == 200,
            timeout=60,
            what=f"the {project} stack's API to be ready",
        )
        yield stack
    finally:
        logs = _compose(project, env, "logs", "--no-color", "api", timeout=120)
        (REPO_ROOT / ".e2e").mkdir(exist_ok=True)
        (REPO_ROOT / ".e2e" / f"compose-{project}.log").write_text(logs.stdout)
        _compose(project, env, "down", "-v", "--remove-orphans", timeout=300)


@pytest.fixture(scope="session")
def tokens_stack() -> Iterator[TokensStack]:
    """The API with QGJOB_AUTH=tokens and an admin token of its own."""
    auth = {"QGJOB_AUTH": "tokens", "QGJOB_ADMIN_TOKEN": secrets.token_hex(32)}
    yield from _api_stack(TOKENS_PROJECT, auth)


@pytest.fixture(scope="session")
def open_stack() -> Iterator[TokensStack]:
    """The API with QGJOB_AUTH=off: no token asked for (admin_token is empty)."""
    yield from _api_stack(OPEN_PROJECT, {"QGJOB_AUTH": "off", "QGJOB_ADMIN_TOKEN": ""})
