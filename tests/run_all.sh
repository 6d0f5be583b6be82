#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: lint (ruff, mypy strict on the pure
# packages) and the layering contracts first, then unit + chart tests (fast), then
# the full-stack tests on one shared stack.
# pytest's exit code 5 ("no tests collected") is a failure here, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PATH="$PWD/.tools/bin:$PATH"

run() {
  echo "==> [test] $*"
  "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "error: pytest collected no tests for: $*" >&2; exit 1; fi
  if [ $rc -ne 0 ]; then exit $rc; fi
}

run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
run .venv/bin/mypy
run .venv/bin/lint-imports
run $PY -m pytest -q -m "not stack and not nodeloss" "$@"
echo "==> [test] preparing the default models for the full-stack tests"
run .venv/bin/petit models prepare --fleet deploy/fleet.local.yaml
run $PY -m pytest -q -m stack -p no:randomly --timeout=1800 "$@"
echo "==> [test] a real node loss on a two-node Ray cluster (its own cluster, after the shared stack)"
run $PY -m pytest -q -s -m nodeloss -p no:randomly --timeout=900 "$@"
echo "==> [test] all passed"
