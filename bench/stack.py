"""The real compose stack under the benchmark's own project name, and a client for its API.

Simulator timings and the policy go through the environment, the number of agents through
`--scale`, exactly as a user would run them. Only emulator agents run (device and
browserstack are scaled to 0), so the machine's cores go to the workload.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROJECT = "qgjob-bench"
# Unfinished jobs looked up per polling round while a workload runs (`Stack.wait_final`).
_PROBE = 20
IDEMPOTENCY_KEY = "Idempotency-Key"  # the API's header: a retried submit creates nothing twice
TARGET = "emulator"

# The raw RQ baseline, run inside the scheduler container (it has rq, and reaches the
# stack's Redis): enqueue N no-op jobs, then drain them with one SimpleWorker, timed.
_RQ_BASELINE = """
import json, sys, time
from redis import Redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
count = int(sys.argv[1])
redis = Redis.from_url("redis://redis:6379/0")
queue = Queue("bench.rq-noop", connection=redis, serializer=JSONSerializer)
queue.empty()
with redis.pipeline() as pipe:
    for _ in range(count):
        queue.enqueue("os.getpid", pipeline=pipe)
    pipe.execute()
worker = SimpleWorker([queue], connection=redis, serializer=JSONSerializer)
started = time.monotonic()
worker.work(burst=True, logging_level="WARNING")
elapsed = time.monotonic() - started
print(json.dumps({"jobs": count, "seconds": elapsed}))
"""


# Transient answers a loaded machine gives (a gunicorn worker being replaced, the broker
# briefly unreachable: 503, a request cut short) are retried with backoff, POSTs included:
# every submit carries an `Idempotency-Key`, so a retry creates nothing twice.
_RETRY = Retry(
    total=8,
    connect=8,
    read=4,
    status=8,
    backoff_factor=0.5,
    backoff_max=10,
    status_forcelist=(409, 429, 502, 503, 504),  # 409: the same key still in progress
    allowed_methods=None,
    raise_on_status=False,
)


def session() -> requests.Session:
    """A client session that retries transient failures (see `_RETRY`)."""
    client = requests.Session()
    adapter = HTTPAdapter(max_retries=_RETRY)
    client.mount("http://", adapter)
    client.mount("https://", adapter)
    return client


def patience_for(load: float, cpus: int) -> float:
    """How much longer than on an idle machine a wait may take: the load per core, at least
    1, at most 10 (pure)."""
    return min(max(load / max(cpus, 1), 1.0), 10.0)


def patience() -> float:
    """`patience_for` the machine's 1-minute load average. Deadlines are multiplied by it, so
    a benchmark on a machine shared with other work slows down instead of crashing (at load
    100 on 2 cores a service took more than 180 s to turn healthy)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return patience_for(load, os.cpu_count() or 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr, with the seconds since the benchmark started and the
    load average (figures on a shared machine are read beside the load they ran under)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    elapsed = time.monotonic() - _STARTED
    print(f"[{elapsed:6.1f} s, load {load:.1f}] {message}", file=sys.stderr, flush=True)


class Stack:
    def __init__(self, project: str) -> None:
        self.project = project
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.session = session()
        self._local = threading.local()
        self._env: dict[str, str] = {}

    # --- compose -------------------------------------------------------------------------

    def compose(self, *args: str, timeout: float = 900, capture: bool = False) -> str:
        env = {**os.environ, **self._env, "QGJOB_API_PORT": str(self.port)}
        done = subprocess.run(
            ["docker", "compose", "-p", self.project, *args],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else sys.stderr,
            text=True,
        )
        return done.stdout if capture else ""

    def up(self, agents: int, settings: Mapping[str, str], *, build: bool = False) -> None:
        """(Re)start the stack with `settings` (environment) and `agents` emulator agents.

        Services whose settings changed are recreated (agents come back cold, with new ids).
        Returns once `agents` live agents report.
        """
        self._env = {
            "AGENT_HEARTBEAT_S": "1",
            "AGENT_STOP_GRACE_PERIOD": "10s",
            **settings,
        }
        started = time.monotonic()
        command = (
            "up",
            "-d",
            "--wait",
            *(["--build"] if build else []),
            "--scale",
            f"agent-emulator={agents}",
            "--scale",
            "agent-device=0",
            "--scale",
            "agent-browserstack=0",
        )
        for attempt in range(1, 4):
            try:
                self.compose(*command)
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                # On a loaded machine a healthcheck can time out while its service works
                # (at load 38 the scheduler's check, a Python process, exceeded its 10 s
                # timeout every time while the scheduler consumed and dispatched), or a
                # service that lost a race at start exits. Healthy, or at least every
                # service running and the API answering (the warm-up suite then proves the
                # stack works end to end), is enough; otherwise run `up` again (it starts
                # what has stopped).
                log(f"compose up failed ({error}); waiting for the services")
                try:
                    self.wait(lambda: self.services(healthy=True), 60, "every service healthy")
                    break
                except TimeoutError:
                    pass
                try:
                    self.wait(self.services, 120, "every service running, the API answering")
                    log("services run, some healthchecks time out under this load: going on")
                    break
                except TimeoutError:
                    if attempt == 3:
                        raise
                    log(f"services still not up: compose up again (attempt {attempt + 1})")
        self.wait(lambda: self.live_agents() == agents, 120, f"{agents} live agents")
        log(f"stack up ({agents} agents, {settings}) in {time.monotonic() - started:.1f} s")

    def services(self, healthy: bool = False) -> bool:
        """Every service's container running and the API answering `/healthz`; with
        `healthy`, every healthcheck passing too."""
        try:
            out = self.compose("ps", "--format", "json", capture=True, timeout=120)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return False
        services = [json.loads(line) for line in out.splitlines() if line.strip()]
        if not services or not all(s.get("State") == "running" for s in services):
            return False
        if healthy:
            return all(s.get("Health") in ("healthy", "") for s in services)
        try:
            return self.session.get(f"{self.api}/healthz", timeout=10).ok
        except requests.RequestException:
            return False

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", timeout=300)

    def rq_baseline(self, jobs: int) -> dict[str, Any]:
        out = self.compose(
            "exec",
            "-T",
            "scheduler",
            "python",
            "-c",
            _RQ_BASELINE,
            str(jobs),
            capture=True,
            timeout=300 * patience(),
        )
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    # --- API -----------------------------------------------------------------------------

    def agents(self) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.api}/v1/agents", timeout=10)
        response.raise_for_status()
        agents: list[dict[str, Any]] = response.json()["agents"]
        return [a for a in agents if a["target"] == TARGET]

    def live_agents(self) -> int:
        try:
            return sum(1 for a in self.agents() if a["alive"] and a["state"] != "offline")
        except requests.RequestException:
            return -1

    def idle(self) -> bool:
        return all(a["current_batch_id"] is None for a in self.agents() if a["alive"])

    def submit_suite(self, jobs: Sequence[dict[str, Any]]) -> list[str]:
        """One request per at most 1,000 jobs (the API's limit); their ids."""
        ids: list[str] = []
        for start in range(0, len(jobs), 1000):
            response = self.session.post(
                f"{self.api}/v1/jobs",
                json=list(jobs[start : start + 1000]),
                headers={IDEMPOTENCY_KEY: uuid.uuid4().hex},
                timeout=120,
            )
            response.raise_for_status()
            ids += [job["job_id"] for job in response.json()["jobs"]]
        return ids

    def submit_each(self, jobs: Sequence[dict[str, Any]], threads: int = 8) -> list[str]:
        """One request per job, `threads` at a time (each thread its own session)."""

        def post(job: dict[str, Any]) -> str:
            client: requests.Session | None = getattr(self._local, "session", None)
            if client is None:
                client = self._local.session = session()
            response = client.post(
                f"{self.api}/v1/jobs",
                json=job,
                headers={IDEMPOTENCY_KEY: uuid.uuid4().hex},
                timeout=60,
            )
            response.raise_for_status()
            job_id: str = response.json()["job"]["job_id"]
            return job_id

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(post, jobs))

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.session.get(f"{self.api}/v1/jobs/{job_id}", timeout=10)
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def lookup(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Records of up to 1,000 jobs in one request (`POST /v1/jobs/lookup`)."""
        response = self.session.post(
            f"{self.api}/v1/jobs/lookup", json={"job_ids": list(job_ids)}, timeout=60
        )
        response.raise_for_status()
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs

    def wait_final(
        self, job_ids: Sequence[str], timeout: float, *, then_idle: bool = True
    ) -> list[dict[str, Any]]:
        """Poll until every job is final (then, with `then_idle`, until every agent is idle
        again: the next workload starts on a quiet stack); their records, in the order of
        `job_ids`.

        While the workload runs, one request every half second looks up the first
        `_PROBE` unfinished jobs, so polling takes little of the machine the stack runs on
        (the figures come from the records, not from when polling saw them); once those
        are final, the rest are read 1,000 per request.
        """
        records: dict[str, dict[str, Any]] = {}
        waiting = list(job_ids)
        started = time.monotonic()
        size = _PROBE
        while waiting:
            chunk = waiting[:size]
            try:
                found = {r["job_id"]: r for r in self.lookup(chunk) if r["final"]}
            except requests.RequestException as error:  # retries spent: poll again
                log(f"looking up {len(chunk)} jobs failed ({error}); trying again")
                found = {}
            records.update(found)
            still = [job_id for job_id in chunk if job_id not in found]
            waiting = still + waiting[len(chunk) :]
            if not still:
                size = 1000  # the probe is done: read the rest in large requests
                continue
            size = _PROBE
            if time.monotonic() - started > timeout * patience():
                raise TimeoutError(
                    f"{len(waiting)} jobs not final after {timeout:.0f} s x the load"
                )
            time.sleep(0.5)
        if then_idle:
            self.wait(self.idle, 60, "agents idle")
        return [records[job_id] for job_id in job_ids]

    @staticmethod
    def wait(probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `probe` until true; the deadline is `timeout` times `patience()` (the load),
        re-read while waiting, so a load that rises meanwhile extends it. A probe that
        raises a transient HTTP error counts as false."""
        started = time.monotonic()
        while True:
            try:
                if probe():
                    return
            except requests.RequestException as error:
                log(f"waiting for {what}: {error}")
            waited = time.monotonic() - started
            if waited > timeout * patience():
                raise TimeoutError(f"timed out after {waited:.0f} s waiting for {what}")
            time.sleep(0.2)


def jobs_for(
    org: str, versions: Sequence[str], count: int, *, paths: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """`count` jobs spread round-robin over `versions`; test paths unique unless given."""
    return [
        {
            "org_id": org,
            "app_version_id": versions[i % len(versions)],
            "test_path": paths[i] if paths else f"tests/{org}/t{i}.spec.js",
            "target": TARGET,
        }
        for i in range(count)
    ]


def run_id() -> str:
    return uuid.uuid4().hex[:6]


@contextmanager
def running(project: str, keep: bool = False) -> Iterator[Stack]:
    stack = Stack(project)
    try:
        yield stack
    finally:
        if keep:
            log(f"stack left running: docker compose -p {project} down -v")
        else:
            stack.down()
