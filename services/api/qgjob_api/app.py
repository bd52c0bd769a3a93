"""Composition root: `create_app(config)` wires Redis, the per-thread publishers and routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from qgjob_api import answers, auth, guards, openapi, ratelimits, store
from qgjob_api.admin import admin_blueprint
from qgjob_api.bodies import request_json
from qgjob_api.cancel import cancel_blueprint
from qgjob_api.config import Config
from qgjob_api.endpoints import ENDPOINTS
from qgjob_api.errors import HttpError, NotFound, Unavailable
from qgjob_api.intake import Intake
from qgjob_api.runs import runs_blueprint
from qgjob_api.submit import Publisher, submit_jobs
from qgjob_api.token_routes import tokens_blueprint
from qgjob_api.validation import parse_job, parse_job_query, parse_jobs
from qgjob_contract.amqp import ConfirmingPublisher, PublishError
from qgjob_contract.records import Job

log = logging.getLogger(__name__)

PublisherFactory = Callable[[], Publisher]

# Request bodies above this are refused (413): room for the largest allowed batch.
_BODY_BYTES_BASE = 64 * 1024
_BODY_BYTES_PER_JOB = 8 * 1024


class _JsonProvider(DefaultJSONProvider):
    sort_keys = False  # records keep their field order


class ThreadPublishers:
    """One publisher per thread: pika connections are not thread-safe (gunicorn threads)."""

    def __init__(self, factory: PublisherFactory) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> Publisher:
        publisher: Publisher | None = getattr(self._local, "publisher", None)
        if publisher is None:
            publisher = self._local.publisher = self._factory()
        return publisher


def create_app(  # noqa: PLR0915 (the composition root: every route is wired here)
    config: Config,
    *,
    redis_client: redis.Redis | None = None,
    publisher_factory: PublisherFactory | None = None,
) -> Flask:
    """The API. `publisher_factory` makes one publisher per thread (default: a
    ConfirmingPublisher on config.rabbitmq_url); it also makes /readyz's broker probe."""
    client = redis_client
    if client is None:
        client = redis.Redis.from_url(
            config.redis_url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            # A blip is retried; a Redis that is down gives a 503 in about a second.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        )

    factory = publisher_factory or partial(ConfirmingPublisher, config.rabbitmq_url)
    publishers = ThreadPublishers(factory)

    app = Flask(__name__, static_folder=None)  # no static files: no /static route
    app.json = _JsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = (
        _BODY_BYTES_BASE + _BODY_BYTES_PER_JOB * config.max_jobs_per_request
    )
    _register_error_handlers(app)
    auth.install(app, client, mode=config.auth_mode, admin_token=config.admin_token)
    # path ids and header sizes, before any route reads Redis
    guards.install(app, legacy=frozenset(name for name, e in ENDPOINTS.items() if e.legacy))
    app.register_blueprint(runs_blueprint(client, publishers.get, config))

    def find_job(job_id: str) -> Job:
        job = store.get_job(client, job_id)
        if job is None or not auth.current().sees(job.org_id):
            raise NotFound(f"no job with id {job_id!r}")
        return job

    intake = Intake(client, config)

    @app.post("/submit")
    def submit() -> tuple[dict[str, Any], int, dict[str, str]]:
        job_in = parse_job(body := request_json())
        auth.current().check_submit(job_in.org_id)

        def work() -> tuple[dict[str, Any], int]:
            (job,) = submit_jobs(
                client, publishers.get(), [job_in], submitted_by=auth.current().token_id
            )
            answer = {
                "message": "Job submitted successfully",
                "job_id": job.job_id,
                "assigned_agent": job.assigned_agent,
            }
            return answers.shown(answers.SubmitAnswer, answer), 201

        return intake.respond(
            "submit", body, orgs=[job_in.org_id], targets=[job_in.target], work=work
        )

    @app.get("/status/<job_id>")
    def status(job_id: str) -> dict[str, Any]:
        return answers.job_record(find_job(job_id))  # the seed's route (legacy in the spec)

    @app.get("/v1/jobs/<job_id>")
    def job_record(job_id: str) -> dict[str, Any]:
        return answers.job_record(find_job(job_id))

    @app.post("/v1/jobs")
    def create_jobs() -> tuple[dict[str, Any], int, dict[str, str]]:
        body = request_json()
        inputs, is_batch = parse_jobs(body, max_jobs=config.max_jobs_per_request)
        for job_in in inputs:
            auth.current().check_submit(job_in.org_id)

        def work() -> tuple[dict[str, Any], int]:
            jobs = submit_jobs(
                client, publishers.get(), inputs, submitted_by=auth.current().token_id
            )
            if is_batch:
                return {"jobs": answers.job_records(jobs)}, 201
            return {"job": answers.job_record(jobs[0])}, 201

        orgs, targets = [j.org_id for j in inputs], [j.target for j in inputs]
        return intake.respond("jobs", body, orgs=orgs, targets=targets, work=work)

    @app.get("/v1/jobs")
    def list_jobs() -> dict[str, Any]:
        query = parse_job_query(request.args)
        org_id, none = auth.current().listing_org(query.org_id)
        if none:
            return {"jobs": [], "next_cursor": None}
        filters = store.JobFilter(
            org_id=org_id,
            app_version_id=query.app_version_id,
            status=query.status,
            target=query.target,
        )
        jobs, next_cursor = store.list_jobs(client, filters, limit=query.limit, cursor=query.cursor)
        return {
            "jobs": answers.job_records(jobs),
            "next_cursor": None if next_cursor is None else next_cursor.encode(),
        }

    @app.get("/v1/agents")
    def list_agents() -> dict[str, Any]:
        agents = store.list_agents(client, timeout_s=config.agent_timeout_s)
        return answers.shown(answers.Agents, {"agents": agents})

    for blueprint in (
        admin_blueprint(client, publishers.get),
        cancel_blueprint(
            client,
            publishers.get,
            config,
            requested_by=lambda: auth.current().actor,
            sees=lambda org_id: auth.current().sees(org_id),
        ),
        tokens_blueprint(
            client,
            retention_s=config.job_retention_s,
            minting=config.auth_mode == auth.AUTH_TOKENS,
        ),
    ):
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return answers.shown(answers.Health, {"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int, dict[str, str]]:
        checks = {"redis": "ok", "rabbitmq": "ok"}
        try:
            client.ping()
        except redis.RedisError as exc:
            log.warning("not ready: Redis unreachable: %s", exc)
            checks["redis"] = "unreachable"
        probe = factory()  # a fresh connection: a cached one may not know the broker died
        try:
            probe.check()
        except PublishError as exc:
            log.warning("not ready: RabbitMQ unreachable: %s", exc)
            checks["rabbitmq"] = "unreachable"
        finally:
            probe.close()
        failed = [name for name, state in checks.items() if state != "ok"]
        if failed:
            message = "not ready: " + ", ".join(failed) + " unreachable"
            body = {"error": Unavailable.code, "message": message, "checks": checks}
            return answers.shown(answers.NotReady, body), 503, Unavailable.retry_after()
        return answers.shown(answers.Ready, {"status": "ready", "checks": checks}), 200, {}

    # documents every route above; before the limiter wraps them
    openapi.install(app, tokens=config.auth_mode == auth.AUTH_TOKENS)
    ratelimits.install(
        app,
        storage_uri=config.redis_url,
        submit=config.rate_limit_submit,
        read=config.rate_limit_read,
    )
    return app


def _register_error_handlers(app: Flask) -> None:
    """Every error answer is JSON `{"error": code, "message": text}`; none is HTML."""

    @app.errorhandler(HttpError)
    def api_error(exc: HttpError) -> tuple[dict[str, str], int, dict[str, str]]:
        return exc.body(), exc.status, exc.headers()

    @app.errorhandler(redis.RedisError)
    def redis_error(exc: redis.RedisError) -> tuple[dict[str, str], int, dict[str, str]]:
        log.error("Redis unavailable on %s %s: %s", request.method, request.path, exc)
        error = Unavailable("the job store (Redis) is unavailable")
        return error.body(), error.status, error.headers()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = exc.get_response()  # keeps the status and headers such as Allow
        name = exc.name.lower().replace(" ", "_").replace("'", "")
        body = {"error": name, "message": exc.description or exc.name}
        response.set_data(app.json.dumps(body, separators=(",", ":")))
        response.mimetype = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[dict[str, str], int]:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return {"error": "internal_error", "message": "internal server error"}, 500
