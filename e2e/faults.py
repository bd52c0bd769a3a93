"""Fault injection against a running compose stack, and the chaos scenario built from it.

Faults are real: containers are killed (`docker kill`: the agent dies and stays dead), an
agent process is crashed inside its container (the container exits and Docker restarts it
under the same hostname, so the same AGENT_ID comes back as a new instance), and RabbitMQ,
Redis and the scheduler are restarted or killed. The scenario (`run_chaos`) is shared by the
e2e chaos test and `make chaos` (a larger run, `python -m e2e.chaos`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from testcontainers.compose import DockerCompose

from e2e.conftest import REPO_ROOT, Stack, _free_port, wait_until

# The fault stacks' simulator: short tests and install; batches of 10 last about 2 s, long
# enough that an agent killed mid-batch still holds jobs it has not run.
FAULT_ENV = {
    "SIM_INSTALL_SECONDS": "0.5",
    "SIM_TEST_SECONDS": "0.2",
    "SIM_FAIL_PATTERN": "*fail*",
    "SIM_ERROR_PATTERN": "",
    "BATCH_MAX_JOBS": "10",
}


@contextlib.contextmanager
def fault_stack_up(project: str, agents: int, log_name: str) -> Iterator[Stack]:
    """A compose stack of its own (project `project`, a free port, `agents` emulator agents),
    built from this checkout; its logs are kept in .e2e/`log_name`; removed with its volumes."""
    port = _free_port()
    env = {**os.environ, **FAULT_ENV, "COMPOSE_PROJECT_NAME": project, "QGJOB_API_PORT": str(port)}
    saved = dict(os.environ)
    os.environ.update(env)  # docker compose (run by testcontainers) interpolates from it
    stack_compose = DockerCompose(REPO_ROOT, compose_file_name="docker-compose.yml", build=True)
    try:
        stack_compose.start()
        stack = Stack(compose=stack_compose, api_url=f"http://127.0.0.1:{port}", env=env)
        stack.compose_up("--scale", f"agent-emulator={agents}")
        yield stack
    finally:
        stdout, _ = stack_compose.get_logs()
        (REPO_ROOT / ".e2e").mkdir(exist_ok=True)
        (REPO_ROOT / ".e2e" / log_name).write_text(stdout)
        stack_compose.stop()
        os.environ.clear()
        os.environ.update(saved)


# Simulated tests whose path matches the stack's SIM_FAIL_PATTERN (*fail*) end `failed`.
FAIL_EVERY = 7
# A final transition as the scheduler logs it ("job_id=<id> -> passed (batch_id=...").
_FINAL_LOG = re.compile(r"job_id=(\S+) -> (passed|failed|error|cancelled)\b")


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return done.stdout.strip()


def compose(stack: Stack, *args: str, timeout: float = 300) -> str:
    command = [*stack.compose.compose_command_property, *args]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout.strip()


def containers(stack: Stack, service: str) -> list[str]:
    """Ids of the service's running containers."""
    return [line for line in compose(stack, "ps", "-q", service).splitlines() if line]


def hostname(container: str) -> str:
    return docker("inspect", "-f", "{{.Config.Hostname}}", container)


def agent_container(stack: Stack, agent_id: str, service: str = "agent-emulator") -> str:
    """The container running `agent_id` (AGENT_ID defaults to {target}-{hostname})."""
    for container in containers(stack, service):
        if agent_id.endswith(hostname(container)):
            return container
    raise AssertionError(f"no container of {service} runs agent {agent_id}")


_CRASH_AGENT = (
    "import os, signal\n"
    "for pid in os.listdir('/proc'):\n"
    "    if pid.isdigit() and int(pid) not in (1, os.getpid()):\n"
    "        try:\n"
    "            cmdline = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "        except OSError:\n"
    "            continue\n"
    "        if b'qgjob-agent' in cmdline and b'python' in cmdline.split(b'\\0')[0]:\n"
    "            os.kill(int(pid), signal.SIGKILL)\n"
)


def crash_agent_process(container: str) -> None:
    """SIGKILL the agent process inside its container: the container exits, and its restart
    policy brings it back (same hostname, so same AGENT_ID, new instance).

    The `docker exec` dies with the container it runs in, as often as not before it could
    exit by itself: 137 (SIGKILL) is its usual end, not a failure.
    """
    done = subprocess.run(
        ["docker", "exec", container, "python", "-c", _CRASH_AGENT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode not in (0, 137):
        raise AssertionError(f"crashing the agent in {container} failed: {done.stderr[-500:]}")


def get_json(stack: Stack, path: str, **params: Any) -> Any:
    """GET through transient errors (a restarting dependency answers 503 for a moment)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = stack.get(path, **params)
            if response.status_code == 200:
                return response.json()
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"GET {path} kept failing: {last}")
        time.sleep(0.3)


def jobs_by_id(stack: Stack, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records of `job_ids`, read through the listing (a few requests, not one per job)."""
    wanted = set(job_ids)
    orgs = {get_json(stack, f"/v1/jobs/{job_ids[0]}")["org_id"]} if job_ids else set()
    found: dict[str, dict[str, Any]] = {}
    for org in orgs:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"org_id": org, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = get_json(stack, "/v1/jobs", **params)
            found.update({job["job_id"]: job for job in page["jobs"] if job["job_id"] in wanted})
            cursor = page["next_cursor"]
            if not cursor:
                break
    return {job_id: found[job_id] for job_id in job_ids if job_id in found}


def submit_suite(stack: Stack, org: str, version: str, paths: list[str]) -> list[str]:
    body = [
        {"org_id": org, "app_version_id": version, "test_path": path, "target": "emulator"}
        for path in paths
    ]
    deadline = time.monotonic() + 60
    while True:
        response = stack.post("/v1/jobs", body)
        if response.status_code == 201:
            return [job["job_id"] for job in response.json()["jobs"]]
        assert response.status_code == 503, response.text  # only an outage may refuse it
        assert time.monotonic() < deadline, f"submit kept failing: {response.text}"
        time.sleep(0.5)


def all_final(stack: Stack, job_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """The records once every one of `job_ids` is final, else None."""
    jobs = jobs_by_id(stack, job_ids)
    done = len(jobs) == len(job_ids) and all(job["final"] for job in jobs.values())
    return jobs if done else None


def expected_outcome(path: str) -> str:
    return "failed" if "fail" in path else "passed"


def running_on(jobs: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """agent id -> ids of its jobs that are running now."""
    busy: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        if job["status"] == "running" and job["assigned_agent"]:
            busy.setdefault(job["assigned_agent"], []).append(job_id)
    return busy


def final_transitions(logs: str) -> Counter[str]:
    """How many times the scheduler logged a final status for each job id."""
    return Counter(match.group(1) for match in _FINAL_LOG.finditer(logs))


def redispatch_seconds(job: dict[str, Any], dead_agent: str, killed_at: float) -> float | None:
    """Seconds from the kill until the job was running on another agent (None: it did not)."""
    if job["assigned_agent"] == dead_agent or not job["started_at"]:
        return None
    started = _epoch(job["started_at"])
    return max(0.0, started - killed_at)


def _epoch(timestamp: str) -> float:
    from datetime import datetime  # noqa: PLC0415 (kept next to its one use)

    return datetime.fromisoformat(timestamp).timestamp()


@dataclass
class ChaosReport:
    jobs: int
    lost: int
    double_final: int
    wrong_outcome: int
    redispatch_s: list[float]
    faults: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    not_final: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        times = sorted(self.redispatch_s)
        return {
            "jobs": self.jobs,
            "lost": self.lost,
            "double_final": self.double_final,
            "wrong_outcome": self.wrong_outcome,
            "redispatch_p50_s": round(statistics.median(times), 2) if times else None,
            "redispatch_max_s": round(max(times), 2) if times else None,
            "dead_letters": self.dead_letters,
            "faults": self.faults,
        }

    def json_line(self) -> str:
        return json.dumps(self.summary(), separators=(",", ":"))


def run_chaos(stack: Stack, *, jobs: int, versions: int = 3, timeout: float = 300) -> ChaosReport:
    """Submit `jobs` jobs, then: kill an agent mid-batch, crash another (it restarts under its
    id), restart RabbitMQ, restart Redis, kill the scheduler (and start it again). Then wait
    for every job and check each ended exactly once with the outcome its path predicts."""
    paths = _submit_chaos_suites(stack, jobs, versions)
    faults = Faults()
    dead_agent, unfinished, killed_at = faults.kill_busy_agent(stack, list(paths))
    faults.crash_another_agent(stack, list(paths), dead_agent)
    time.sleep(2)  # let work go on between faults
    faults.restart(stack, "rabbitmq")
    time.sleep(2)
    faults.restart(stack, "redis")
    time.sleep(2)
    faults.kill_and_start_scheduler(stack)
    return _measure(
        stack,
        paths,
        faults=faults.log,
        dead_agent=dead_agent,
        unfinished=unfinished,
        killed_at=killed_at,
        timeout=timeout,
    )


def _submit_chaos_suites(stack: Stack, jobs: int, versions: int) -> dict[str, str]:
    """job id -> test path; one request per app version of a fresh org."""
    org = f"chaos-{uuid.uuid4().hex[:6]}"
    paths: dict[str, str] = {}
    per_version = -(-jobs // versions)
    for v in range(versions):
        count = min(per_version, jobs - v * per_version)
        suite = [
            f"tests/chaos/v{v}/t{i:04d}{'_fail' if i % FAIL_EVERY == 0 else ''}.spec.js"
            for i in range(count)
        ]
        for job_id, path in zip(submit_suite(stack, org, f"1.{v}.0", suite), suite, strict=True):
            paths[job_id] = path
    return paths


class Faults:
    """Injects faults and records what it did, with times since it was made."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.log: list[dict[str, Any]] = []

    def record(self, kind: str, **details: Any) -> None:
        self.log.append(
            {"fault": kind, "at_s": round(time.monotonic() - self.started, 2), **details}
        )

    def kill_busy_agent(
        self, stack: Stack, job_ids: list[str], *, tries: int = 3
    ) -> tuple[str, list[str], float]:
        """`docker kill` an agent that runs a job; returns (agent id, the jobs it had not
        finished when it died, the kill's epoch time).

        Which jobs were unfinished is read AFTER the kill: on a loaded machine `docker kill`
        can take longer than the agent needs to finish the few short tests left in its batch,
        and a list read before it would name jobs the agent then finished itself. When the
        agent had finished them all, another busy agent is killed (up to `tries` kills)."""
        # Resolved once, before any kill, so no docker call stands between choice and kill.
        by_host = {hostname(c): c for c in containers(stack, "agent-emulator")}

        def container_of(agent_id: str) -> str | None:
            return next((c for h, c in by_host.items() if agent_id.endswith(h)), None)

        def busy_agent() -> str | None:
            """The agent with the most jobs still waiting in its batch (they cannot have been
            reported yet), among those running one."""
            snapshot = jobs_by_id(stack, job_ids)
            waiting = Counter(
                job["assigned_agent"] for job in snapshot.values() if job["status"] == "assigned"
            )
            busy = [a for a in running_on(snapshot) if waiting[a] and container_of(a)]
            return max(busy, key=lambda a: waiting[a]) if busy else None

        for _ in range(tries):
            dead_agent = wait_until(busy_agent, timeout=60, what="a running job")
            container = container_of(dead_agent)
            assert container is not None
            by_host = {h: c for h, c in by_host.items() if c != container}
            docker("kill", container)
            killed_at = time.time()
            unfinished = self._left_unfinished(stack, job_ids, dead_agent)
            self.record("agent_killed", agent_id=dead_agent, unfinished_jobs=len(unfinished))
            if unfinished:
                return dead_agent, unfinished, killed_at
        raise AssertionError(f"{tries} agents each finished their batch before the kill")

    @staticmethod
    def _left_unfinished(stack: Stack, job_ids: list[str], dead_agent: str) -> list[str]:
        """The dead agent's jobs that are still not final once the reports it sent before
        dying have been applied: read until two reads 0.5 s apart agree (at most 5 s, well
        before its lease expires and its jobs are taken back)."""

        def left() -> list[str]:
            return sorted(
                job_id
                for job_id, job in jobs_by_id(stack, job_ids).items()
                if job["assigned_agent"] == dead_agent and not job["final"]
            )

        deadline = time.monotonic() + 5.0
        before = left()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = left()
            if now == before:
                break
            before = now
        return before

    def crash_another_agent(self, stack: Stack, job_ids: list[str], spare: str) -> None:
        """Crash the process of another busy agent: it comes back under its id."""

        def another_busy() -> str | None:
            current = running_on(jobs_by_id(stack, job_ids))
            return next((a for a in current if a != spare), None)

        crashed = wait_until(another_busy, timeout=60, what="another agent running a job")
        crash_agent_process(agent_container(stack, crashed))
        self.record("agent_crashed_and_restarted", agent_id=crashed)

    def restart(self, stack: Stack, service: str) -> None:
        docker("restart", containers(stack, service)[0])
        self.record(f"{service}_restarted")

    def kill_and_start_scheduler(self, stack: Stack) -> None:
        (scheduler,) = containers(stack, "scheduler")
        docker("kill", scheduler)
        self.record("scheduler_killed")
        time.sleep(1)
        docker("start", scheduler)
        self.record("scheduler_started")


def _measure(
    stack: Stack,
    paths: dict[str, str],
    *,
    faults: list[dict[str, Any]],
    dead_agent: str,
    unfinished: list[str],
    killed_at: float,
    timeout: float,
) -> ChaosReport:
    """Wait (up to `timeout`) until every job is final, then count what went wrong."""
    job_ids = list(paths)
    deadline = time.monotonic() + timeout
    final = jobs_by_id(stack, job_ids)
    while not all(job["final"] for job in final.values()) and time.monotonic() < deadline:
        time.sleep(1)
        final = jobs_by_id(stack, job_ids)
    not_final = [job_id for job_id, job in final.items() if not job["final"]]
    wrong = [
        f"{job_id}: {job['status']} {paths[job_id]}"
        for job_id, job in final.items()
        if job["final"] and job["status"] != expected_outcome(paths[job_id])
    ]
    finals = final_transitions(compose(stack, "logs", "--no-color", "scheduler"))
    # agent killed -> the first of its unfinished jobs running elsewhere
    elsewhere = [
        seconds
        for job_id in unfinished
        if (seconds := redispatch_seconds(final[job_id], dead_agent, killed_at)) is not None
    ]
    return ChaosReport(
        jobs=len(job_ids),
        lost=len(not_final),
        double_final=sum(1 for job_id in job_ids if finals[job_id] > 1),
        wrong_outcome=len(wrong),
        redispatch_s=[min(elsewhere)] if elsewhere else [],
        faults=faults,
        dead_letters=int(get_json(stack, "/v1/admin/dead-letters")["total"]),
        not_final=not_final,
        wrong=wrong,
    )
