"""Human-readable text for job records (the --json output is the records themselves)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from qgjob_cli.client import JobRecord
from qgjob_cli.vocabulary import STATUSES

NONE = "-"
_STATUS_WIDTH = max(len(status) for status in STATUSES)
_STATUS_FIELDS = (
    "job_id",
    "status",
    "assigned_agent",
    "test_path",
    "org_id",
    "app_version_id",
    "target",
    "priority",
    "batch_id",
    "attempts",
    "created_at",
    "assigned_at",
    "started_at",
    "finished_at",
)
_TABLE_COLUMNS = (
    ("JOB ID", "job_id"),
    ("STATUS", "status"),
    ("TARGET", "target"),
    ("APP VERSION", "app_version_id"),
    ("TEST", "test_path"),
    ("AGENT", "assigned_agent"),
    ("CREATED", "created_at"),
)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2)


def _text(value: Any) -> str:
    return NONE if value is None or value == "" else str(value)


def _duration(job: JobRecord) -> str:
    result = job.get("result") or {}
    seconds = result.get("duration_s")
    return f"{seconds:.2f}s" if isinstance(seconds, int | float) else NONE


def job_line(job: JobRecord, test_width: int = 0) -> str:
    """One line per job: id, test path, status, agent, duration, at least two spaces apart.

    The test path is padded to `test_width` so that the lines of one suite line up.
    """
    return "  ".join(
        (
            job["job_id"],
            _text(job.get("test_path")).ljust(test_width),
            job["status"].ljust(_STATUS_WIDTH),
            _text(job.get("assigned_agent")),
            _duration(job),
        )
    )


def summary(jobs: list[JobRecord]) -> str:
    """'3 jobs: 1 failed, 2 passed'."""
    counts = Counter(job["status"] for job in jobs)
    parts = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}: {parts}"


def _result_text(result: dict[str, Any]) -> str:
    text = f"{_text(result.get('outcome'))} in {_duration({'result': result})}"
    if result.get("install_paid"):
        install_s = result.get("install_s")
        paid = f" ({install_s:.2f}s)" if isinstance(install_s, int | float) else ""
        text += f", install paid{paid}"
    if result.get("driver"):
        text += f", driver {result['driver']}"
    if result.get("simulated"):
        text += " (simulated)"
    return text


def status_block(job: JobRecord) -> str:
    """`qgjob status`: one `field: value` line per field, then the result and its log tail."""
    rows = [(name, _text(job.get(name))) for name in _STATUS_FIELDS]
    result = job.get("result")
    if isinstance(result, dict):
        rows.append(("result", _result_text(result)))
        if result.get("reason"):
            rows.append(("reason", str(result["reason"])))
    width = max(len(name) for name, _ in rows) + 3
    lines = [f"{name + ':':<{width}}{value}" for name, value in rows]
    log_tail = result.get("log_tail") if isinstance(result, dict) else None
    if log_tail:
        lines.append("log_tail:")
        lines += [f"  {line}" for line in str(log_tail).splitlines()]
    return "\n".join(lines)


def table(rows: list[list[str]]) -> str:
    """Rows (the first one is the header) as aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def jobs_table(jobs: list[JobRecord]) -> str:
    """`qgjob list`: aligned columns with a header row."""
    rows = [[title for title, _ in _TABLE_COLUMNS]]
    rows += [[_text(job.get(field)) for _, field in _TABLE_COLUMNS] for job in jobs]
    return table(rows)
