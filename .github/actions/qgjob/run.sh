#!/usr/bin/env bash
# Runs `qgjob run` from the action's inputs (INPUT_* variables). The step itself never
# fails: the CLI's exit code goes to $GITHUB_OUTPUT as exit-code, so the summary and the
# upload still run, and finish.sh fails the job with it.
set -uo pipefail
qgjob="${RUNNER_TEMP:?}/qgjob-venv/bin/qgjob"
args=(run --org-id "$INPUT_ORG_ID" --app-version-id "$INPUT_APP_VERSION_ID"
  --priority "$INPUT_PRIORITY" --poll-interval "$INPUT_POLL_INTERVAL" --junit "$INPUT_JUNIT_PATH")
for target in ${INPUT_TARGETS//,/ }; do
  args+=(--target "$target")
done
if [ -n "${INPUT_TIMEOUT:-}" ]; then args+=(--timeout "$INPUT_TIMEOUT"); fi
if [ -n "${INPUT_TESTS_FROM:-}" ]; then args+=(--tests-from "$INPUT_TESTS_FROM"); fi
set -f  # globs are for qgjob to expand (it knows `**`), not the shell
for test in $INPUT_TESTS; do
  args+=("$test")
done
set +f
export QGJOB_API_URL="$INPUT_API_URL"
if [ -n "${INPUT_TOKEN:-}" ]; then export QGJOB_TOKEN="$INPUT_TOKEN"; fi
"$qgjob" "${args[@]}"
code=$?
echo "exit-code=$code" >>"${GITHUB_OUTPUT:?}"
echo "qgjob exited $code"
