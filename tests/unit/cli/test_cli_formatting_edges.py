"""Edges of the CLI's text output that `make mutation` found unchecked."""

from __future__ import annotations

import pytest

from qgjob_cli.formatting import summary, to_json


@pytest.mark.parametrize(
    ("statuses", "text"),
    [
        ([], "0 jobs: "),
        (["passed"], "1 job: 1 passed"),
        (["passed", "failed", "passed"], "3 jobs: 1 failed, 2 passed"),
    ],
)
def test_summary_counts_jobs_in_singular_and_plural(statuses: list[str], text: str) -> None:
    assert summary([{"job_id": str(i), "status": s} for i, s in enumerate(statuses)]) == text


def test_json_output_is_indented_two_spaces_for_reading_in_ci_logs() -> None:
    assert to_json({"jobs": [{"job_id": "a"}]}) == (
        '{\n  "jobs": [\n    {\n      "job_id": "a"\n    }\n  ]\n}'
    )


def test_help_epilog_shows_examples_only_when_given() -> None:
    from qgjob_cli.exit_codes import epilog  # noqa: PLC0415

    assert "Examples:\nqgjob run x" in epilog("qgjob run x")
    assert "Examples:" not in epilog()
    assert "Exit codes:" in epilog()
    assert "Exit codes:" in epilog("x")


def test_a_table_aligns_each_column_two_spaces_apart_and_trims_line_ends() -> None:
    from qgjob_cli.formatting import table  # noqa: PLC0415 (kept next to its one use)

    assert table([["A", "BB", "C"], ["long", "x", ""], ["y", "", "z"]]).splitlines() == [
        "A     BB  C",
        "long  x",
        "y         z",
    ]
