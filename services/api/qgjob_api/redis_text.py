"""Redis replies as text: a client made with decode_responses answers str, another bytes."""

from __future__ import annotations


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
