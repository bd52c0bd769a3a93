"""The real compose stack, built from this checkout, for the whole e2e session.

Simulated timings are shortened through the same environment variables a user sets; the
API is published on a free host port so a stack the developer runs on :5000 is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# How long a single read outside a polling loop rides out transient errors.
RETRY_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Transient(Exception):
    """A failure a poll rides out: no connection, a timeout, or a 5xx (503 while a server
    restarts). Raised by the Stack's one-shot reads; `wait_until` retries through it."""


class NotYet(Exception):
    """Raised by a probe to say "not yet" together with what it saw (for the failure message)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Transient,
    NotYet,
    requests.ConnectionError,
    requests.Timeout,
)


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.25, what: str
) -> T:
    """Poll `probe` until it returns something truthy, or fail at the deadline.

    A transient error raised by `probe` (see TRANSIENT_ERRORS), or NotYet, is polled through
    like a falsy answer; any other exception (a 404, a failed assertion) ends the wait at once.
    The failure message says what the last poll saw.
    """
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    while True:
        try:
            value = probe()
        except NotYet as exc:
            last = str(exc)
        except TRANSIENT_ERRORS as exc:
            last = f"transient error {exc!r}"
        else:
            if value:
                return value
            last = f"{value!r}"[:500]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}")
        time.sleep(interval)


def _not_5xx(response: requests.Response, what: str) -> requests.Response:
    """`response` unless it is a 5xx (503 while a dependency restarts): then Transient."""
    if response.status_code >= 500:
        raise Transient(f"{what}: {response.status_code} {response.text[:200]}")
    return response


def _ok_json(response: requests.Response, path: str) -> Any:
    """The JSON of a 200; Transient for a 5xx; AssertionError for anything else."""
    _not_5xx(response, f"GET {path}")
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def retried(send: Callable[[], requests.Response], *, what: str) -> requests.Response:
    """The first answer of `send()` that is not a 5xx, riding out transient errors (no
    connection, a timeout, a 5xx) for up to RETRY_S: a one-shot read made right after
    something asynchronous. Any other status (a 404, a 200) is returned for the caller to
    assert, so a read whose status is the point still asserts it."""
    # In a tuple: a Response is falsy for a 4xx, and wait_until polls through falsy answers.
    (response,) = wait_until(lambda: (_not_5xx(send(), what),), timeout=RETRY_S, what=what)
    return response


@dataclass
class Stack:
    compose: DockerCompose
    api_url: str
    env: dict[str, str]

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.api_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.api_url + path, json=body, timeout=30)

    # One-shot reads: raise Transient (or a requests error) for what a poll should retry.
    def get_json_once(self, path: str, **params: Any) -> Any:
        """The JSON of GET `path` if it answers 200; Transient for a 5xx."""
        return _ok_json(self.get(path, **params), path)

    def job_once(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = _ok_json(self.get(f"/v1/jobs/{job_id}"), f"/v1/jobs/{job_id}")
        return body

    def agents_once(self) -> list[dict[str, Any]]:
        agents: list[dict[str, Any]] = _ok_json(self.get("/v1/agents"), "/v1/agents")["agents"]
        return agents

    # Reads that ride out a short outage (up to `RETRY_S`), for use outside polling loops.
    def read(self, path: str, **params: Any) -> requests.Response:
        """GET `path`: its first answer that is not a 5xx (see `retried`)."""
        return retried(lambda: self.get(path, **params), what=f"GET {path}")

    def get_json(self, path: str, **params: Any) -> Any:
        """The JSON of GET `path`, which must answer 200 once transient errors are over."""
        return _ok_json(self.read(path, **params), path)

    def job(self, job_id: str) -> dict[str, Any]:
        return wait_until(lambda: self.job_once(job_id), timeout=RETRY_S, what=f"job {job_id}")

    def agents(self) -> list[dict[str, Any]]:
        return wait_until(self.agents_once, timeout=RETRY_S, what="GET /v1/agents")

    def jobs(self, job_ids: list[str]) -> list[dict[str, Any]]:
        return [self.job(job_id) for job_id in job_ids]

    def wait_final(self, job_ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
        def all_final() -> list[dict[str, Any]] | None:
            jobs = [self.job_once(job_id) for job_id in job_ids]
            if all(job["final"] for job in jobs):
                return jobs
            waiting = Counter(job["status"] for job in jobs if not job["final"])
            raise NotYet(f"not final yet: {dict(waiting)}")

        return wait_until(all_final, timeout=timeout, what=f"{len(job_ids)} jobs to be final")

    def wait_agents(
        self, accept: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 60, what: str
    ) -> list[dict[str, Any]]:
        """Poll /v1/agents until `accept(agents)` holds; return that listing."""

        def probe() -> list[dict[str, Any]] | None:
            agents = self.agents_once()
            return agents if accept(agents) else None

        return wait_until(probe, timeout=timeout, what=what)

    def live_agents(self, target: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
        """Wait until exactly `count` agents of `target` are alive and not offline (stopping);
        return them."""

        def serving(agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                a
                for a in agents
                if a["alive"] and a["target"] == target and a["state"] != "offline"
            ]

        return serving(
            self.wait_agents(
                lambda agents: len(serving(agents)) == count,
                timeout=timeout,
                what=f"{count} live {target} agents",
            )
        )

    def wait_installs(self, expected: dict[str, int], timeout: float = 60) -> dict[str, int]:
        """Wait until each agent in `expected` reports at least that many installs, each
        agent on its own (no instant where all are idle is needed); return the counters."""

        def reached() -> dict[str, int] | None:
            installs = {a["agent_id"]: a["installs"] for a in self.agents_once()}
            done = all(installs.get(agent, 0) >= n for agent, n in expected.items())
            return installs if done else None

        return wait_until(reached, timeout=timeout, what=f"agents' installs to reach {expected}")

    def qgjob(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run the real `qgjob` command installed in this environment."""
        return subprocess.run(
            [qgjob_exe(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.qgjob_env(),
            check=False,
        )

    def qgjob_env(self, api_url: str | None = None) -> dict[str, str]:
        return {**os.environ, "QGJOB_API_URL": api_url or self.api_url}

    def compose_up(self, *args: str, timeout: float = 300) -> None:
        """`docker compose up -d --wait ARGS` on the running project, as a user would.

        `up` is idempotent, so a failed `--wait` (a healthcheck that timed out on a loaded
        machine marks a container unhealthy for a moment) is retried until `timeout`.
        """
        deadline = time.monotonic() + timeout
        while True:
            command = [*self.compose.compose_command_property, "up", "-d", "--wait", *args]
            done = subprocess.run(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=max(10.0, deadline - time.monotonic()),
                check=False,
            )
            if done.returncode == 0:
                return
            if time.monotonic() > deadline - 10:
                pytest.fail(f"{' '.join(command)} kept failing; last: {done.stderr[-2000:]}")
            print(f"compose up failed, retrying: {done.stderr.strip().splitlines()[-1:]}")
            time.sleep(5)

    def scale(self, service: str, count: int) -> None:
        """`docker compose up -d --wait --no-deps --scale SERVICE=N SERVICE`: scale one
        service, waiting for its containers only (not for every other service's health)."""
        self.compose_up("--no-build", "--no-deps", "--scale", f"{service}={count}", service)

    def containers(self, service: str) -> list[Container]:
        """The running containers of one compose service of this project, by number."""
        listed = docker(
            "ps",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            '{{.ID}} {{.Label "com.docker.compose.container-number"}}',
        )
        found = []
        for line in listed.splitlines():
            short_id, number = line.split()
            inspected = json.loads(docker("inspect", short_id))[0]
            found.append(Container(inspected["Id"], int(number), inspected["Config"]["Hostname"]))
        return sorted(found, key=lambda c: c.number)


@dataclass(frozen=True)
class Container:
    container_id: str
    number: int  # compose's container number (agent-emulator-3 is 3)
    hostname: str

    def agent_id(self, target: str) -> str:
        """The agent id it runs as: AGENT_ID's default, `{target}-{hostname}`."""
        return f"{target}-{self.hostname}"


def docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout


@contextmanager
def stop_signals() -> Iterator[dict[str, float]]:
    """Watch this project's containers while the block runs; afterwards the dict maps each
    container id that got SIGTERM to when (epoch seconds, the docker daemon's clock).

    It subscribes before the block (`docker events` streams): the daemon keeps only its
    last 256 events, which a busy machine's healthchecks overwrite within seconds.
    """
    watcher = subprocess.Popen(
        [
            "docker",
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=kill",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
            "--format",
            "{{json .}}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    signals: dict[str, float] = {}
    time.sleep(1)  # the subscription is live once the client has connected
    try:
        yield signals
    finally:
        time.sleep(1)  # let the last events reach the stream
        watcher.terminate()
        output, _ = watcher.communicate(timeout=30)
        for line in output.splitlines():
            event = json.loads(line)
            if event["Actor"]["Attributes"].get("signal") in {"15", "SIGTERM"}:
                signals.setdefault(event["Actor"]["ID"], event["timeNano"] / 1e9)


def qgjob_exe() -> str:
    """The `qgjob` command of this environment (the CLI under test)."""
    return shutil.which("qgjob", path=str(Path(sys.executable).parent)) or "qgjob"


# The target `no_live_agent` takes away: a job for it stays queued until it is cancelled.
NO_AGENT = "browserstack"


@pytest.fixture
def no_live_agent(stack: Stack) -> Iterator[str]:
    """No live agent of NO_AGENT while the test runs (scaled to 0, then back to 1)."""
    service = f"agent-{NO_AGENT}"
    stack.scale(service, 0)
    stack.wait_agents(
        lambda agents: (
            not any(
                a["alive"] and a["state"] != "offline" for a in agents if a["target"] == NO_AGENT
            )
        ),
        timeout=60,
        what=f"no live {NO_AGENT} agent",
    )
    try:
        yield NO_AGENT
    finally:
        stack.scale(service, 1)
        stack.live_agents(NO_AGENT, 1)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    port = _free_port()
    env = {**os.environ, **STACK_ENV, "QGJOB_API_PORT": str(port)}
    saved = dict(os.environ)
    os.environ.update(env)  # docker compose (run by testcontainers) interpolates from it
    compose = DockerCompose(REPO_ROOT, compose_file_name="docker-compose.yml", build=True)
    started = time.monotonic()
    stack = Stack(compose=compose, api_url=f"http://127.0.0.1:{port}", env=env)
    try:
        compose.start()
    except Exception as exc:
        # Built and created; a healthcheck that timed out on a loaded machine fails the
        # first `--wait`: wait again, idempotently, before giving up.
        print(f"\ncompose start failed ({exc}); waiting for the stack again", file=sys.stderr)
        try:
            stack.compose_up("--no-build")
        except BaseException:
            stdout, stderr = compose.get_logs()
            print(stdout[-20000:], stderr[-5000:], file=sys.stderr)
            compose.stop()
            raise
    print(f"\ncompose stack healthy after {time.monotonic() - started:.1f} s (build included)")
    try:
        wait_until(
            lambda: (
                {a["target"] for a in stack.agents_once() if a["alive"]}
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


# The QGJOB_AUTH=tokens stack (one per session, shared), defined beside its helpers.
from e2e.tokens_stack import open_stack, tokens_stack  # noqa: E402, F401 (fixtures)
