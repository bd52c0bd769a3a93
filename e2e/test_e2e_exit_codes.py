"""`qgjob submit --wait` exit codes from real servers: 6, 7, 8 and 130 from the stack; 4 from
a real HTTP server in this process that answers 503 (alone, or in front of the stack). Exit 4
from the real API (503 while its RabbitMQ is stopped) is in test_e2e_faults.py, whose stack
of its own may lose a container.

The codes' meanings are the README's (`qgjob_cli`'s ExitCode); the numbers are spelled here
as a CI script would spell them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from e2e.conftest import Stack, qgjob_exe


def _version(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("qgjob: error:")]


def test_a_job_ending_error_exits_6(stack: Stack) -> None:
    done = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id={_version('exit6')}",
        "--target=device",
        "--test=tests/login.spec.js",
        "--test=tests/infra-error.spec.js",  # matches SIM_ERROR_PATTERN *infra-error*
        "--wait",
        "--poll-interval=0.2",
    )
    assert done.returncode == 6, (done.stdout, done.stderr)
    assert "1 error, 1 passed" in done.stdout


def test_a_timeout_shorter_than_the_work_exits_7_and_the_jobs_still_finish(stack: Stack) -> None:
    done = stack.qgjob(
        "submit",
        "--org-id=qualgent",
        f"--app-version-id={_version('exit7')}",
        *(f"--test=tests/slow{i}.spec.js" for i in range(10)),  # an install and 10 tests
        "--wait",
        "--timeout=1",
        "--poll-interval=0.2",
        "--json",
    )
    assert done.returncode == 7, (done.stdout, done.stderr)
    (line,) = _error_lines(done.stderr)
    assert "gave up waiting after 1 s" in line
    result = json.loads(done.stdout)
    assert result["timed_out"] is True
    assert not all(job["final"] for job in result["jobs"])
    finished = stack.wait_final([job["job_id"] for job in result["jobs"]])
    assert {job["status"] for job in finished} == {"passed"}


def test_interrupting_a_wait_exits_130_with_one_line(stack: Stack) -> None:
    process = subprocess.Popen(
        [
            qgjob_exe(),
            "submit",
            "--org-id=qualgent",
            f"--app-version-id={_version('exit130')}",
            *(f"--test=tests/long{i}.spec.js" for i in range(10)),
            "--wait",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack.qgjob_env(),
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        first_id = process.stdout.readline().strip()  # printed once the submit is accepted
        assert str(uuid.UUID(first_id)) == first_id
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:  # a failure above: the CLI must not poll on unwatched
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert _error_lines(stderr) == ["qgjob: error: interrupted"], stderr
    assert "Traceback" not in stderr
    stack.wait_final([first_id])  # the jobs themselves are not affected


def test_a_job_cancelled_while_the_cli_waits_exits_8(stack: Stack, no_live_agent: str) -> None:
    """The job waits queued (no live agent of its target) while `qgjob submit --wait` polls;
    `qgjob cancel` ends it `cancelled` and the wait exits 8 (nothing failed)."""
    process = subprocess.Popen(
        [
            qgjob_exe(),
            "submit",
            "--org-id=qualgent",
            f"--app-version-id={_version('exit8')}",
            f"--target={no_live_agent}",
            "--test=tests/cancelled.spec.js",
            "--wait",
            "--poll-interval=0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack.qgjob_env(),
    )
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        job_id = process.stdout.readline().strip()  # printed once the submit is accepted
        assert str(uuid.UUID(job_id)) == job_id
        cancel = stack.qgjob("cancel", job_id)
        assert cancel.returncode == 0, cancel.stderr
        assert cancel.stdout.strip() == f"cancel requested: {job_id}"
        stdout, stderr = process.communicate(timeout=90)
    finally:
        watchdog.cancel()
        if process.poll() is None:  # a failure above: the CLI must not poll on unwatched
            process.kill()
            process.communicate()
    assert process.returncode == 8, (stdout, stderr)
    assert "1 job: 1 cancelled" in stdout
    assert _error_lines(stderr) == [], stderr
    assert "Traceback" not in stderr
    assert stack.job(job_id)["status"] == "cancelled"


Answer = Callable[[BaseHTTPRequestHandler], bool]  # True when it answered the request


@contextmanager
def http_server(answer: Answer, upstream: str | None = None) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1: `answer` may answer a request itself; otherwise it
    is forwarded to `upstream` (the stack's API). Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            if answer(self):
                return
            assert upstream is not None
            length = int(self.headers.get("Content-Length") or 0)
            forwarded = requests.request(
                self.command,
                upstream + self.path,
                data=self.rfile.read(length) if length else None,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                timeout=30,
            )
            self.send_response(forwarded.status_code)
            self.send_header("Content-Type", forwarded.headers.get("Content-Type", ""))
            self.send_header("Content-Length", str(len(forwarded.content)))
            self.end_headers()
            self.wfile.write(forwarded.content)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _unavailable(handler: BaseHTTPRequestHandler) -> None:
    body = b'{"error": "unavailable", "message": "the event broker (RabbitMQ) is unavailable"}'
    handler.send_response(503)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _always_503(handler: BaseHTTPRequestHandler) -> bool:
    _unavailable(handler)
    return True


def test_a_server_answering_503_exits_4(stack: Stack) -> None:
    with http_server(_always_503) as url:
        done = stack.qgjob(
            f"--api-url={url}",
            "submit",
            "--org-id=qualgent",
            "--app-version-id=v1",
            "--test=tests/a.spec.js",
            "--wait",
        )
        status = stack.qgjob(f"--api-url={url}", "status", f"--job-id={uuid.uuid4()}")
    assert done.returncode == 4, done.stderr
    assert len(_error_lines(done.stderr)) == 1
    assert "503" in done.stderr or "unavailable" in done.stderr
    assert status.returncode == 4, status.stderr


def test_wait_rides_out_a_short_outage_and_exits_4_on_a_long_one(stack: Stack) -> None:
    """The submit reaches the real stack; then polls get 503 from the server in front of it:
    two in a row are retried through (exit 0), five in a row end the wait (exit 4)."""
    failures = {"left": 0}
    lock = threading.Lock()

    def flaky_polls(handler: BaseHTTPRequestHandler) -> bool:
        if handler.command == "POST" and handler.path == "/v1/jobs":
            return False  # the submit itself goes through; every poll after it may fail
        with lock:
            if failures["left"] <= 0:
                return False
            failures["left"] -= 1
        _unavailable(handler)
        return True

    with http_server(flaky_polls, upstream=stack.api_url) as url:
        failures["left"] = 2
        short = stack.qgjob(
            f"--api-url={url}",
            "submit",
            "--org-id=qualgent",
            f"--app-version-id={_version('blip')}",
            "--test=tests/a.spec.js",
            "--wait",
        )
        assert short.returncode == 0, short.stderr
        assert short.stderr.count("qgjob: warning: retrying") == 2, short.stderr

        failures["left"] = 10**6
        long = stack.qgjob(
            f"--api-url={url}",
            "submit",
            "--org-id=qualgent",
            f"--app-version-id={_version('outage')}",
            "--test=tests/a.spec.js",
            "--wait",
        )
    assert long.returncode == 4, long.stderr
    assert long.stderr.count("qgjob: warning: retrying") == 4, long.stderr
    assert len(_error_lines(long.stderr)) == 1
