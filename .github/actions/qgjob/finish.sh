#!/usr/bin/env bash
# Fails the step with the qgjob CLI's exit code (1 when the run step never reported one).
set -euo pipefail
code="${QGJOB_EXIT_CODE:-}"
if [ -z "$code" ]; then
  echo "qgjob did not run (see the steps above)" >&2
  exit 1
fi
exit "$code"
