"""The job statuses and targets the CLI spells, exactly as the server does.

The CLI installs without qgjob-contract (other projects' CI installs it from git), so it
keeps its own copy of these strings; tests/unit/cli/test_cli_contract_sync.py fails when
they drift from the contract's.
"""

from __future__ import annotations

from typing import Final

# In lifecycle order: queued -> assigned -> running -> one of the final four.
STATUSES: Final = ("queued", "assigned", "running", "passed", "failed", "error", "cancelled")
# The final statuses the CLI interprets; any other final status (one a newer server adds)
# counts like error, an infrastructure outcome.
PASSED: Final = "passed"
FAILED: Final = "failed"
ERROR: Final = "error"
CANCELLED: Final = "cancelled"

# The roles of API tokens (qgjob_contract.roles.Role).
ROLES: Final = ("submitter", "viewer", "admin")

TARGETS: Final = ("emulator", "device", "browserstack")
DEFAULT_TARGET: Final = "emulator"  # the server's own default: sent explicitly all the same
