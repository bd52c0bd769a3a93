"""The Lua scripts name record fields by string: every one must be a field of the record it
touches (or a field the scheduler keeps in a batch hash), so a renamed field cannot leave a
script silently writing the old name."""

from __future__ import annotations

import re
from dataclasses import fields
from importlib.resources import files

import pytest

from qgjob_contract import leases
from qgjob_contract.records import Agent, Batch, Job, Lease
from qgjob_scheduler.dispatch import BATCH_PRIVATE_FIELDS

# A single-quoted Lua literal that looks like a field name (Redis commands and flags are
# upper case; message text has spaces).
_FIELD_LIKE = re.compile(r"^[a-z][a-z_]*$")
RECORD_FIELDS = (
    {f.name for f in fields(Job)}
    | {f.name for f in fields(Agent)}
    | {f.name for f in fields(Batch)}
    | {f.name for f in fields(Lease)}
    | set(BATCH_PRIVATE_FIELDS)
)


def _scripts() -> list[tuple[str, str]]:
    found = []
    for package in ("qgjob_scheduler", "qgjob_contract"):
        for path in (files(package) / "lua").iterdir():
            if path.name.endswith(".lua"):
                found.append((f"{package}/{path.name}", path.read_text()))
    return found


@pytest.mark.parametrize(("name", "text"), _scripts(), ids=lambda v: v if "/" in v else "")
def test_every_field_a_script_names_is_a_record_field(name: str, text: str) -> None:
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    literals = set(re.findall(r"'([^']*)'", code))
    named = {literal for literal in literals if _FIELD_LIKE.match(literal)}
    assert named <= RECORD_FIELDS, f"{name} names unknown fields: {named - RECORD_FIELDS}"


def test_the_lease_script_receives_the_lease_records_field_names() -> None:
    lease_fields = {f.name for f in fields(Lease)} - {"agent_id"}
    passed = {leases.FIELD_INSTANCE, leases.FIELD_RENEWED, leases.FIELD_STARTED}
    assert passed == lease_fields
