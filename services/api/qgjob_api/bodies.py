"""The request's JSON body, read the same way by every route that takes one: JSON only, its
size bounded by MAX_CONTENT_LENGTH (413) and its depth by guards.MAX_JSON_DEPTH (400)."""

from __future__ import annotations

from typing import Any

from flask import request

from qgjob_api.validation import parse_json


def request_json() -> Any:
    return parse_json(request.get_data(cache=False), is_json=request.is_json)
