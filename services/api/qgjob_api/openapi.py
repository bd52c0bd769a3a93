"""The API's contract as OpenAPI 3.1 (spectree), at GET /openapi.json, and a page at /docs.

The document is generated from the models the routes validate their input with
(qgjob_api.validation) and build their answers with (qgjob_api.answers), as the endpoint
table names them (qgjob_api.endpoints): nothing here is a second hand-written schema. What
the models cannot say is added by `finish`: path ids' patterns (guards.PATH_IDS), the
Idempotency-Key request header, and the Retry-After and Idempotent-Replayed answer headers.

Why spectree and not flask-openapi3: flask-openapi3 replaces the Flask app and its routes'
signatures, and validates requests itself with its own 422 body; spectree only decorates a
view, and with `skip_validation` it documents the models while the routes validate with the
same models themselves, so every error keeps our `{"error", "message"}` shape and the seed
routes (`POST /submit`, `GET /status/<id>`) answer exactly what they answered before.

`install` wraps every routed view once all routes exist (a route missing from the endpoint
table fails at start, so none is left out of the spec). The seed routes are tagged `legacy`
and marked deprecated.
"""

from __future__ import annotations

import copy
import re
import typing
from typing import Any, Final

from flask import Blueprint, Flask, Response, current_app
from spectree import Response as Responses
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import SecureType

from qgjob_api import guards, idempotency
from qgjob_api.answers import ErrorBody, NotReady, Ready
from qgjob_api.endpoints import ENDPOINTS, Access, Endpoint

TITLE: Final = "qgjob API"
SPEC_PATH: Final = "/openapi.json"
DOCS_PATH: Final = "/docs"
LEGACY: Final = "legacy"
RETRY_AFTER: Final = "Retry-After"

# Error answers any operation may give (a 400 only where there is input to refuse).
_ERRORS: Final = {
    f"HTTP_{code}": ErrorBody for code in (401, 403, 404, 405, 409, 413, 415, 422, 429, 431, 503)
}

# Listings whose query strings treat an empty value as absent (`?status=`): their query
# parameters say `allowEmptyValue`, so a client (and the fuzzer) knows "" is accepted.
EMPTY_IS_ABSENT: Final = frozenset({"list_jobs", "runs.list_runs"})


def _op(endpoint: Endpoint) -> dict[str, Any]:
    """spectree's arguments for one endpoint of the table."""
    public = endpoint.access is Access.PUBLIC
    ok = {f"HTTP_{endpoint.ok}": endpoint.answer}
    if endpoint.also_ok is not None:
        ok[f"HTTP_{endpoint.also_ok}"] = endpoint.answer
    if public:
        unavailable = NotReady if endpoint.answer is Ready else ErrorBody
        # the head checks (qgjob_api.guards) and a method a route lacks apply to probes too
        responses: dict[str, Any] = {
            **ok,
            "HTTP_405": ErrorBody,
            "HTTP_431": ErrorBody,
            "HTTP_503": unavailable,
        }
    else:
        responses = {**ok, **_ERRORS, "HTTP_400": ErrorBody}
    return {
        "json": endpoint.json,
        "query": endpoint.query,
        "resp": Responses(**responses),
        "tags": (LEGACY, *endpoint.tags) if endpoint.legacy else endpoint.tags,
        "deprecated": endpoint.legacy,
        "security": {} if public else None,
    }


# Flask endpoint -> spectree's `validate` arguments, from the one endpoint table.
OPERATIONS: Final[dict[str, dict[str, Any]]] = {
    name: _op(endpoint) for name, endpoint in ENDPOINTS.items()
}


def make_spec(*, tokens: bool = True) -> SpecTree:
    """The spec tree; `tokens`: the API asks for a bearer token (QGJOB_AUTH=tokens), so the
    document requires it on every operation but the probes. With auth off the scheme stays
    described but nothing requires it: the document says what the running API does."""
    return SpecTree(
        "flask",
        title=TITLE,
        version="1",
        description=(
            "qgjob's HTTP API. Every error body is JSON {error, message[, field]}. With "
            "QGJOB_AUTH=tokens every route but /healthz and /readyz needs "
            "'Authorization: Bearer <token>'. The `legacy` routes are the seed's contract, "
            "kept unchanged."
        ),
        validation_error_status=400,
        validation_error_model=ErrorBody,
        naming_strategy=lambda model: model.__name__,
        security_schemes=[
            SecurityScheme(
                name="bearer",
                data=SecuritySchemeData(
                    type=SecureType.HTTP, scheme="bearer", description="QGJOB_AUTH=tokens"
                ),
            )
        ],
        security={"bearer": []} if tokens else {},
    )


def install(app: Flask, *, tokens: bool = True) -> SpecTree:
    """Document every routed view and add the spec and docs routes. Call once every other
    route exists, before ratelimits.install. `tokens`: see make_spec."""
    tree = make_spec(tokens=tokens)
    # Not named "openapi...": spectree leaves endpoints of that name out of the document.
    routes = Blueprint("contract", __name__)

    document: dict[str, Any] = {}

    @routes.get(SPEC_PATH)
    def spec() -> Any:
        if not document:  # built once, on first use (every route exists by then)
            document.update(finish(tree.spec, app))
        return current_app.json.response(document)

    @routes.get(DOCS_PATH)
    def docs() -> Response:
        page = tree.config.page_templates["redoc"].format(
            spec_url=SPEC_PATH,
            spec_path=DOCS_PATH.strip("/"),
            **tree.config.swagger_oauth2_config(),
        )
        return Response(page, mimetype="text/html")

    app.register_blueprint(routes)
    missing = sorted(set(app.view_functions) - set(ENDPOINTS))
    if missing:
        raise RuntimeError(f"routes without an OpenAPI operation: {', '.join(missing)}")
    for endpoint, view in list(app.view_functions.items()):
        documented = tree.validate(**OPERATIONS[endpoint], skip_validation=True)(view)
        app.view_functions[endpoint] = typing.cast("Any", documented)
    tree.app = app
    return tree


def _operation_keys(app: Flask) -> dict[str, list[tuple[str, str]]]:
    """Flask endpoint -> the (path as in the spec, method) pairs it serves."""
    found: dict[str, list[tuple[str, str]]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        found.setdefault(rule.endpoint, []).extend((path, m.lower()) for m in methods)
    return found


_IDEMPOTENCY_KEY: Final = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": (
        "the same key with the same body answers the first answer again (header "
        f"{idempotency.REPLAYED_HEADER}: true) and creates nothing; with another body, 422"
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        "pattern": "^[ -~]+$",
    },
}
_REPLAYED: Final = {
    idempotency.REPLAYED_HEADER: {
        "description": "set on an answer replayed for a repeated Idempotency-Key",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_RETRY_AFTER: Final = {
    RETRY_AFTER: {
        "description": "seconds to wait before trying again",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _headers(operation: dict[str, Any], endpoint: Endpoint) -> None:
    """The headers of one operation: Idempotency-Key in, Idempotent-Replayed and
    Retry-After out."""
    answers = operation.get("responses", {})
    for code in ("429", "503"):
        if code in answers:
            answers[code].setdefault("headers", {}).update(_RETRY_AFTER)
    if endpoint.idempotent:
        operation.setdefault("parameters", []).append(dict(_IDEMPOTENCY_KEY))
        answers[str(endpoint.ok)].setdefault("headers", {}).update(_REPLAYED)


def finish(spec: dict[str, Any], app: Flask) -> dict[str, Any]:
    """What spectree cannot say from the models: path ids' patterns (guards.PATH_IDS, checked
    before any route runs), the listings where an empty query value counts as absent, and
    the headers (`_headers`)."""
    document = copy.deepcopy(spec)
    keys = _operation_keys(app)
    for endpoint, pairs in keys.items():
        for path, method in pairs:
            operation = document["paths"].get(path, {}).get(method)
            if operation is None:
                continue
            _headers(operation, ENDPOINTS[endpoint])
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in guards.PATH_IDS:
                    pattern, max_length = guards.PATH_IDS[parameter["name"]]
                    parameter["schema"] = {
                        "type": "string",
                        "pattern": pattern,
                        "minLength": 1,
                        "maxLength": max_length,
                    }
                if parameter["in"] == "query" and endpoint in EMPTY_IS_ABSENT:
                    parameter["allowEmptyValue"] = True
    return document
