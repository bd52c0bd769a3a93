"""The roles of API tokens (issue 9), spelled once for the API and checked against the CLI's
copy (`qgjob_cli.vocabulary.ROLES`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    # submit, cancel and read the jobs and runs of its own org
    SUBMITTER = "submitter"
    # read the jobs and runs of its own org
    VIEWER = "viewer"
    # every org, the agents, the dead-letter queue and the tokens
    ADMIN = "admin"


# The id recorded (`submitted_by`, `cancel_requested_by`) for the QGJOB_ADMIN_TOKEN of the
# environment, which has no record of its own.
ENV_ADMIN_TOKEN_ID: Final = "admin"  # noqa: S105 (an id, not a secret)
# The id recorded when auth is off (no token is asked for).
ANONYMOUS: Final = "anonymous"
