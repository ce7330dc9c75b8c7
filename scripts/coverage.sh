#!/usr/bin/env bash
# Statement and branch coverage of the product (src/shiftsync without the stand-in) and of the
# stand-in (src/shiftsync/local), from `make test`'s selection of the suite, counting the Python
# processes the suite starts (`python -m shiftsync` in the e2e tests, the stand-in's server): the
# `patch` setting in pyproject.toml. A child started with an environment of its own (without
# COVERAGE_PROCESS_CONFIG) or killed with SIGKILL is not counted.
#
#   scripts/coverage.sh [CHECKOUT]     # default: this checkout; `make coverage` runs it
#
# CHECKOUT may be another checkout of shiftsync (e.g. `git worktree add /tmp/cov-base <commit>`):
# its suite runs against its own src/, measured with this checkout's settings, so that two
# commits are compared alike.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "${1:-$here}" && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
cd "$root"
# The suite's own exit code is reported, not hidden: coverage of a failing suite means little.
status=0
COVERAGE_FILE="$data/.coverage" PYTHONPATH="$root/src" "$python" -m coverage run \
    --rcfile="$here/pyproject.toml" -m pytest -q -p no:cacheprovider "${@:2}" || status=$?
COVERAGE_FILE="$data/.coverage" "$python" -m coverage combine --rcfile="$here/pyproject.toml" -q "$data"
COVERAGE_FILE="$data/.coverage" "$python" -m coverage json --rcfile="$here/pyproject.toml" -q \
    -o "$data/coverage.json"
"$python" - "$data/coverage.json" "$(git -C "$root" rev-parse --short HEAD)" "$status" <<'PY'
import json
import sys

report, commit, status = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
parts = {"product": [0, 0, 0, 0], "stand-in": [0, 0, 0, 0]}
for name, file in report["files"].items():
    part = "stand-in" if "/shiftsync/local/" in f"/{name}" else "product"
    summary = file["summary"]
    totals = parts[part]
    totals[0] += summary["covered_lines"]
    totals[1] += summary["num_statements"]
    totals[2] += summary["covered_branches"]
    totals[3] += summary["num_branches"]
print(f"coverage at {commit} (suite exit code {status}):")
for part, (lines, statements, taken, branches) in parts.items():
    print(
        f"  {part:<9} statements {lines}/{statements} ({100 * lines / statements:.1f}%), "
        f"branches {taken}/{branches} ({100 * taken / branches:.1f}%)"
    )
PY
exit "$status"
