#!/usr/bin/env bash
# Appends the summary table (counts, failures with log tails, link to the run) to
# $GITHUB_STEP_SUMMARY, from the JUnit report; says so when there is none.
set -euo pipefail
args=(--junit "$INPUT_JUNIT_PATH" --title "$INPUT_SUMMARY_TITLE")
if [ -n "${QGJOB_EXIT_CODE:-}" ]; then args+=(--exit-code "$QGJOB_EXIT_CODE"); fi
"${RUNNER_TEMP:?}/qgjob-venv/bin/python" -m qgjob_cli.gh_summary "${args[@]}"
