"""Lua scripts live in `.lua` files next to the module that runs them; this reads them."""

from __future__ import annotations

from importlib.resources import files


def script(package: str, name: str) -> str:
    """The text of `lua/<name>.lua` in `package` (installed as package data)."""
    return (files(package) / "lua" / f"{name}.lua").read_text(encoding="utf-8")
