"""The real compose stack, built from this checkout, for the whole e2e session.

Simulated timings are shortened through the same environment variables a user sets; the
API is published on a free host port so a stack the developer runs on :5000 is untouched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from testcontainers.compose import DockerCompose

REPO_ROOT = Path(__file__).resolve().parent.parent
# Overridable so that several checkouts on one machine can run their e2e suites at once.
PROJECT = os.environ.get("QGJOB_E2E_PROJECT", "qgjob-e2e")
# Shortened simulator timings (the defaults are 3 s and 1 s) keep the suite quick.
STACK_ENV = {
    "COMPOSE_PROJECT_NAME": PROJECT,
    "SIM_INSTALL_SECONDS": "1",
    "SIM_TEST_SECONDS": "0.2",
    "SIM_FAIL_PATTERN": "*fail*",
    "SIM_ERROR_PATTERN": "*infra-error*",
    "BATCH_MAX_JOBS": "10",
}

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.25, what: str
) -> T:
    """Poll `probe` until it returns something other than None/False, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Stack:
    compose: DockerCompose
    api_url: str
    env: dict[str, str]

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.api_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.api_url + path, json=body, timeout=30)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def agents(self) -> list[dict[str, Any]]:
        response = self.get("/v1/agents")
        assert response.status_code == 200, response.text
        agents: list[dict[str, Any]] = response.json()["agents"]
        return agents

    def wait_final(self, job_ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
        def all_final() -> list[dict[str, Any]] | None:
            jobs = [self.job(job_id) for job_id in job_ids]
            return jobs if all(job["final"] for job in jobs) else None

        return wait_until(all_final, timeout=timeout, what=f"{len(job_ids)} jobs to be final")

    def wait_agents_idle(self, timeout: float = 60) -> list[dict[str, Any]]:
        """Every live agent has reported its last batch finished (its counters are final)."""

        def idle() -> list[dict[str, Any]] | None:
            agents = [a for a in self.agents() if a["alive"]]
            return agents if all(a["current_batch_id"] is None for a in agents) else None

        return wait_until(idle, timeout=timeout, what="agents to finish their batches")

    def qgjob(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run the real `qgjob` command installed in this environment."""
        exe = shutil.which("qgjob", path=str(Path(sys.executable).parent)) or "qgjob"
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "QGJOB_API_URL": self.api_url},
            check=False,
        )

    def compose_up(self, *args: str) -> None:
        """`docker compose up -d --wait ARGS` on the running project, as a user would."""
        command = [*self.compose.compose_command_property, "up", "-d", "--wait", *args]
        subprocess.run(command, cwd=REPO_ROOT, env=self.env, check=True, timeout=300)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    port = _free_port()
    env = {**os.environ, **STACK_ENV, "QGJOB_API_PORT": str(port)}
    saved = dict(os.environ)
    os.environ.update(env)  # docker compose (run by testcontainers) interpolates from it
    compose = DockerCompose(REPO_ROOT, compose_file_name="docker-compose.yml", build=True)
    started = time.monotonic()
    try:
        compose.start()
    except Exception:
        stdout, stderr = compose.get_logs()
        print(stdout[-20000:], stderr[-5000:], file=sys.stderr)
        compose.stop()
        raise
    print(f"\ncompose stack healthy after {time.monotonic() - started:.1f} s (build included)")
    stack = Stack(compose=compose, api_url=f"http://127.0.0.1:{port}", env=env)
    try:
        wait_until(
            lambda: (
                {a["target"] for a in stack.agents() if a["alive"]}
                >= {"emulator", "device", "browserstack"}
            ),
            timeout=60,
            what="one live agent of each target",
        )
        yield stack
    finally:
        stdout, _ = compose.get_logs()
        (REPO_ROOT / ".e2e").mkdir(exist_ok=True)
        (REPO_ROOT / ".e2e" / "compose.log").write_text(stdout)
        compose.stop()
        os.environ.clear()
        os.environ.update(saved)
