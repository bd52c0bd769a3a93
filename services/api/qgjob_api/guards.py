"""Bounds on hostile input that hold for every route (issue 9, point 7).

- Ids in paths (`/v1/jobs/<job_id>`, `/v1/runs/<run_id>`, `/v1/admin/tokens/<token_id>/...`)
  are checked against PATH_IDS before any route reads Redis, so a key is only ever built from
  letters, digits, '.', '_' and '-' (a token id: 16 hex digits): 400, but 404 on the seed's
  `/status/<job_id>`, which answered any unknown id so. The same patterns are in the OpenAPI
  document (qgjob_api.openapi.finish).
- Request heads: at most MAX_HEADER_FIELDS fields of at most MAX_HEADER_VALUE bytes each, else
  431 in our JSON error shape. gunicorn's own limits (services/api/Dockerfile) sit above these
  as a backstop for heads Flask never sees.
- JSON bodies: at most MAX_JSON_DEPTH levels of arrays and objects (`check_depth`, called by
  validation.parse_json). The body's size is bounded by Flask's MAX_CONTENT_LENGTH (413).

Pure functions plus one `before_request` hook; no Redis.
"""

from __future__ import annotations

import re
from typing import Any, Final

from flask import Flask, request

from qgjob_api.errors import HeaderTooLarge, InvalidJson, NotFound, ValidationFailed

MAX_ID: Final = 128
ID_PATTERN: Final = r"^[A-Za-z0-9._-]+$"
TOKEN_ID_PATTERN: Final = r"^[0-9a-f]{16}$"  # noqa: S105 (a pattern, not a secret)
# Path parameter name -> (pattern, longest value).
PATH_IDS: Final[dict[str, tuple[str, int]]] = {
    "job_id": (ID_PATTERN, MAX_ID),
    "run_id": (ID_PATTERN, MAX_ID),
    "token_id": (TOKEN_ID_PATTERN, 16),
}
_COMPILED: Final = {name: re.compile(pattern) for name, (pattern, _) in PATH_IDS.items()}

MAX_HEADER_FIELDS: Final = 40
MAX_HEADER_VALUE: Final = 4096
MAX_JSON_DEPTH: Final = 32


def check_path_id(name: str, value: str) -> None:
    """Refuse (400) a path id that could not name a record."""
    if name not in PATH_IDS:
        return
    _, longest = PATH_IDS[name]
    if len(value) > longest or _COMPILED[name].fullmatch(value) is None:
        if name == "token_id":
            raise ValidationFailed(name, "must be 16 hex digits (a token id)")
        raise ValidationFailed(
            name, f"must be 1 to {longest} characters: letters, digits, '.', '_' or '-'"
        )


def check_headers(fields: list[tuple[str, str]]) -> None:
    """Refuse (431) a request head with too many fields or one too long."""
    if len(fields) > MAX_HEADER_FIELDS:
        raise HeaderTooLarge(f"at most {MAX_HEADER_FIELDS} header fields, got {len(fields)}")
    for name, value in fields:
        if len(value) > MAX_HEADER_VALUE:
            raise HeaderTooLarge(
                f"header {name[:64]!r} is over {MAX_HEADER_VALUE} characters ({len(value)})"
            )


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse (400) JSON nested deeper than `limit` arrays/objects; iterative, so a deep
    document cannot exhaust the stack here."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise InvalidJson(f"the body is nested deeper than {limit} levels")
        pending.extend((child, depth + 1) for child in children)


def install(app: Flask, *, legacy: frozenset[str] = frozenset()) -> None:
    """Check every request's head and path ids before its route runs (register after
    auth.install: a caller without a valid token learns nothing from these answers).

    On the `legacy` endpoints (the seed's routes) an id that could not name a record is
    answered as the seed answered an unknown id, 404 `not_found`; it never reaches Redis."""

    @app.before_request
    def bound_input() -> None:
        check_headers(list(request.headers.items()))
        for name, value in (request.view_args or {}).items():
            if not isinstance(value, str):
                continue
            try:
                check_path_id(name, value)
            except ValidationFailed:
                if request.endpoint not in legacy:
                    raise
                raise NotFound(f"no job with id {value[:MAX_ID]!r}") from None
