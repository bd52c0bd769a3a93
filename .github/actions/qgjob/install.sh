#!/usr/bin/env bash
# Installs the qgjob CLI into its own virtualenv under $RUNNER_TEMP (no clash with the
# project's Python, no PEP 668 refusal on the runner's system Python).
# INPUT_CLI_PACKAGE: a pip requirement; empty installs cli/ of the repository holding this action.
set -euo pipefail
venv="${RUNNER_TEMP:?}/qgjob-venv"
python3 -m venv "$venv"
package="${INPUT_CLI_PACKAGE:-$ACTION_PATH/../../../cli}"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$package"
"$venv/bin/qgjob" --version
