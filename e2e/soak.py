"""`make soak`: 50,000 no-op jobs through the real compose stack with a short retention.

Checks that nothing in Redis grows with the number of jobs ever run (issue 7, item 6): the
stack runs with SIM_TEST_SECONDS=0, SIM_INSTALL_SECONDS=0 and JOB_RETENTION_S short, jobs are
pushed through POST /v1/jobs (1,000 per request) while at most a few thousand are in flight,
and at 10,000 and at 50,000 finished jobs it reads Redis `used_memory` (INFO memory), its key
count, and the resident memory (VmRSS, summed over the service's processes) of the scheduler
and of the API. Each checkpoint is measured in the same state: nothing in flight, and once the
retention has swept every finished job (the job index is empty), so what is left is what
does not depend on the jobs run; how many jobs a checkpoint happened to finish within the
last JOB_RETENTION_S (it varies with the throughput just before it) does not count.
Goal: the 50k figures within +10% of the 10k ones.

Its stack runs under its own compose project (QGJOB_SOAK_PROJECT, default qgjob-soak) on a
free port and is removed with its volumes at the end. Progress goes to stderr; the LAST line
of stdout is one JSON object with every figure. Not part of `make test` (several minutes).

    python -m e2e.soak [--jobs 50000] [--checkpoint 10000] [--retention 20] [--agents 4]
                       [--max-seconds S]

On a loaded machine, --max-seconds (or Ctrl-C) stops the push early: the stack is measured
where it stopped (`at_stop`, with jobs possibly in flight), growth is against the 10k
figures, and the JSON says `"complete": false`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from qgjob_contract.names import Keys

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUEST_JOBS = 1000  # API_MAX_JOBS_PER_REQUEST's default
# The service's resident memory: its processes' VmRSS summed (gunicorn runs a master and its
# workers), leaving out this probe itself and any healthcheck that happens to be running
# (each a Python process of ~20 MB that would add noise of that size to one reading).
_RSS = (
    "import glob, os\n"
    "total = 0\n"
    "for path in glob.glob('/proc/[0-9]*/status'):\n"
    "    pid = path.split('/')[2]\n"
    "    try:\n"
    "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
    "        lines = open(path).read().splitlines()\n"
    "    except OSError:\n"
    "        continue\n"
    "    if int(pid) == os.getpid() or b'healthcheck' in cmd or b'healthz' in cmd:\n"
    "        continue\n"
    "    total += sum(int(l.split()[1]) for l in lines if l.startswith('VmRSS:'))\n"
    "print(total * 1024)\n"
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Soak:
    def __init__(self, project: str, *, retention_s: int, agents: int, batch: int) -> None:
        self.project = project
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.agents = agents
        self.session = requests.Session()
        self.env = {
            **os.environ,
            "QGJOB_API_PORT": str(self.port),
            "SIM_TEST_SECONDS": "0",
            "SIM_INSTALL_SECONDS": "0",
            "JOB_RETENTION_S": str(retention_s),
            "BATCH_MAX_JOBS": str(batch),
            "AGENT_STOP_GRACE_PERIOD": "10s",
            "LOG_LEVEL": "WARNING",
        }

    def compose(self, *args: str, timeout: float = 900, capture: bool = False) -> str:
        done = subprocess.run(
            ["docker", "compose", "-p", self.project, *args],
            cwd=REPO_ROOT,
            env=self.env,
            check=True,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else sys.stderr,
            text=True,
        )
        return done.stdout if capture else ""

    def up(self) -> None:
        scale = ["--scale", f"agent-emulator={self.agents}"]
        scale += ["--scale", "agent-device=0", "--scale", "agent-browserstack=0"]
        try:
            self.compose("up", "-d", "--wait", "--build", *scale)
        except subprocess.CalledProcessError:
            log("compose up --wait failed (a slow healthcheck?); waiting for live agents")
        self.wait(lambda: self.live_agents() == self.agents, 180, f"{self.agents} live agents")

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", timeout=300)

    def wait(self, probe: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if probe():
                    return
            except (requests.RequestException, subprocess.CalledProcessError) as exc:
                log(f"  (waiting for {what}: {exc!r})")
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(1)

    def _agents(self) -> list[dict[str, Any]]:
        response = self.session.get(f"{self.api}/v1/agents", timeout=10)
        response.raise_for_status()
        agents: list[dict[str, Any]] = response.json()["agents"]
        return agents

    def live_agents(self) -> int:
        return sum(1 for a in self._agents() if a["alive"] and a["state"] != "offline")

    def finished(self) -> int:
        """Jobs the agents ran to the end (their counters), whatever is left in Redis."""
        return sum(int(a["jobs_run"]) for a in self._agents() if a["alive"])

    def submit(self, count: int, serial: int) -> None:
        jobs = [
            {
                "org_id": "soak",
                "app_version_id": "noop",
                "test_path": f"tests/noop-{i % 20}.spec.js",
            }
            for i in range(count)
        ]
        for attempt in range(10):
            try:
                response = self.session.post(
                    f"{self.api}/v1/jobs",
                    json=jobs,
                    timeout=60,
                )
            except requests.RequestException as exc:
                log(f"  submit {serial} failed ({exc!r}); again")
            else:
                if response.status_code == 201:
                    return
                log(f"  submit {serial}: {response.status_code} {response.text[:200]}; again")
            time.sleep(min(2**attempt, 10))
        raise SystemExit(f"soak: submit {serial} kept failing")

    def redis_info(self) -> dict[str, int]:
        out = self.compose("exec", "-T", "redis", "redis-cli", "info", "memory", capture=True)
        fields = dict(
            line.split(":", 1) for line in out.splitlines() if ":" in line and line[0] != "#"
        )
        keys = self.compose("exec", "-T", "redis", "redis-cli", "dbsize", capture=True)
        return {"used_memory": int(fields["used_memory"].strip()), "keys": int(keys.strip())}

    def rss(self, service: str) -> int:
        out = self.compose("exec", "-T", service, "python", "-c", _RSS, capture=True)
        return int(out.strip().splitlines()[-1])

    def retained(self) -> int:
        """Jobs still in the job index (finished within the retention, or unfinished)."""
        out = self.compose(
            "exec", "-T", "redis", "redis-cli", "zcard", Keys.JOBS_BY_TIME, capture=True
        )
        return int(out.strip())

    def swept(self, timeout_s: float) -> int:
        """Wait (polling, up to `timeout_s`) until the retention has removed every job;
        returns how many are left (0 unless the deadline passed)."""
        deadline = time.monotonic() + timeout_s
        while (left := self.retained()) and time.monotonic() < deadline:
            time.sleep(1)
        return left

    def measure(self) -> dict[str, int]:
        info = self.redis_info()
        return {
            "redis_used_memory": info["used_memory"],
            "redis_keys": info["keys"],
            "scheduler_rss": self.rss("scheduler"),
            "api_rss": self.rss("api"),
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    soak = Soak(args.project, retention_s=args.retention, agents=args.agents, batch=args.batch)
    started = time.monotonic()
    log(f"soak: starting the stack (project {args.project}, retention {args.retention} s)")
    soak.up()
    figures: dict[str, Any] = {
        "jobs": args.jobs,
        "retention_s": args.retention,
        "agents": args.agents,
        "batch_max_jobs": args.batch,
    }
    try:
        figures["complete"] = _push(soak, args, figures)
        last = "at_50k" if figures["complete"] else "at_stop"
        if not figures["complete"]:  # --max-seconds or Ctrl-C: measure where it stopped
            done = soak.finished()
            figures["at_stop"] = {"finished": done, **soak.measure()}
            log(f"soak: stopped early at {done} jobs: {figures['at_stop']}")
        if "at_10k" in figures:
            for field in ("redis_used_memory", "scheduler_rss", "api_rss", "redis_keys"):
                first, then = figures["at_10k"][field], figures[last][field]
                figures[f"{field}_growth"] = round(then / first - 1, 4) if first else None
            figures["within_10pct"] = all(
                figures[f"{field}_growth"] is not None and figures[f"{field}_growth"] <= 0.10
                for field in ("redis_used_memory", "scheduler_rss", "api_rss")
            )
    finally:
        if args.keep:
            log(f"soak: stack left running: docker compose -p {args.project} down -v")
        else:
            soak.down()
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def _push(soak: Soak, args: argparse.Namespace, figures: dict[str, Any]) -> bool:
    """Submit and measure at the checkpoints; False when stopped early (--max-seconds, or
    Ctrl-C) before the last checkpoint."""
    submitted = serial = 0
    checkpoints = {args.checkpoint: "10k", args.jobs: "50k"}
    pushed_at = time.monotonic()
    try:
        while True:
            done = soak.finished()
            for threshold, name in list(checkpoints.items()):
                if done >= threshold:
                    left = soak.swept(timeout_s=3 * args.retention + 60)
                    figures[f"at_{name}"] = {"finished": done, "jobs_left": left, **soak.measure()}
                    figures[f"at_{name}_s"] = round(time.monotonic() - pushed_at, 1)
                    log(f"soak: {name} checkpoint at {done} jobs: {figures[f'at_{name}']}")
                    del checkpoints[threshold]
            if not checkpoints:
                break
            if args.max_seconds and time.monotonic() - pushed_at > args.max_seconds:
                log(f"soak: --max-seconds {args.max_seconds} reached at {done} finished jobs")
                return False
            # Never past the next checkpoint: each is measured with nothing in flight and
            # every job swept, so the two measures see the same state.
            cap = min(checkpoints)
            if submitted < cap and submitted - done < args.in_flight:
                count = min(REQUEST_JOBS, cap - submitted)
                soak.submit(count, serial)
                submitted += count
                serial += 1
                if serial % 10 == 0:
                    log(f"soak: {submitted} submitted, {done} finished")
                continue
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("soak: interrupted")
        return False
    figures["jobs_per_s"] = round(args.jobs / (time.monotonic() - pushed_at), 1)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--checkpoint", type=int, default=10_000)
    parser.add_argument("--retention", type=int, default=20, help="JOB_RETENTION_S (s)")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="BATCH_MAX_JOBS")
    parser.add_argument("--in-flight", type=int, default=3000, help="most jobs not finished")
    parser.add_argument("--project", default=os.environ.get("QGJOB_SOAK_PROJECT", "qgjob-soak"))
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=0,
        help="stop pushing after this long, measure, and print (complete: false); 0: never",
    )
    figures = run(parser.parse_args())
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
