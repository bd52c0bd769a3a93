"""The kinds of device a test can run on."""

from __future__ import annotations

from enum import StrEnum


class Target(StrEnum):
    EMULATOR = "emulator"
    DEVICE = "device"
    BROWSERSTACK = "browserstack"


DEFAULT_TARGET = Target.EMULATOR
