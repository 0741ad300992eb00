#!/usr/bin/env bash
# Install everything and run every test: one command, exits non-zero on any failure.
#
#   bash scripts/test.sh [--postgres URL] [--workers N] [PYTEST ARGS...]
#
# Runs `ruff check .`, then the whole tests/ directory with pytest-xdist on SQLite, then
# again on PostgreSQL when --postgres URL is given or CRM_TEST_DATABASE_URL is set (e.g.
# postgresql+psycopg://postgres@127.0.0.1:5432/test; each worker gets a fresh database).
# Browser tests use Debian's chromium, installed with apt-get when it is missing.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not e2e" -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"

postgres_url="${CRM_TEST_DATABASE_URL:-}"
workers="${CRM_TEST_WORKERS:-2}"
run_timeout="${CRM_PYTEST_TIMEOUT:-1500}"  # seconds per pytest run: a hung test fails the run
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --postgres) [ $# -ge 2 ] || die "--postgres needs a URL"; postgres_url="$2"; shift 2 ;;
        --postgres=*) postgres_url="${1#*=}"; shift ;;
        --workers) [ $# -ge 2 ] || die "--workers needs a number"; workers="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) pytest_args+=("$1"); shift ;;
    esac
done

ensure_venv
install_project test

if [ -z "${CRM_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    say "chromium is missing: installing Debian's package (Playwright's download is not used)"
    command -v apt-get >/dev/null 2>&1 \
        || die "chromium is not installed and apt-get is not available: install Chromium and put it on PATH, or set CRM_CHROMIUM"
    apt_install chromium
    command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium but it is not on PATH"
fi
# Under this script a missing browser is a failure, never a skip.
export CRM_E2E_REQUIRED=1

failed=()
timings=()
stage() {
    local name="$1" start rc=0
    shift
    say "$name"
    start="$(now)"
    "$@" || rc=$?
    timings+=("$(printf '%-28s %s  %s' "$name" "$(duration $(($(now) - start)))" \
        "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
    [ $rc -eq 0 ] || failed+=("$name")
}

# run_pytest [DATABASE_URL]: the whole suite on SQLite, or on that PostgreSQL server.
run_pytest() {
    local rc=0 database=(-u CRM_TEST_DATABASE_URL)
    [ -z "${1:-}" ] || database=("CRM_TEST_DATABASE_URL=$1")
    env "${database[@]}" timeout -k 30 "$run_timeout" \
        "$VENV/bin/pytest" -n "$workers" tests ${pytest_args[@]+"${pytest_args[@]}"} || rc=$?
    [ $rc -ne 124 ] || warn "pytest was stopped after ${run_timeout}s (CRM_PYTEST_TIMEOUT): a test hangs"
    return $rc
}

stage "ruff check" "$VENV/bin/ruff" check .
stage "pytest on SQLite" run_pytest
if [ -n "$postgres_url" ]; then
    # A test that leaves a transaction open (e.g. an unread streamed response) would make the
    # clean-up's TRUNCATE wait for ever: end such sessions, and fail long lock waits, instead.
    export PGOPTIONS="${PGOPTIONS:--c idle_in_transaction_session_timeout=60s -c lock_timeout=120s}"
    stage "pytest on PostgreSQL" run_pytest "$postgres_url"
else
    warn "PostgreSQL run skipped: set CRM_TEST_DATABASE_URL or pass --postgres URL"
fi

echo
say "Summary"
printf '  %s\n' "${timings[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    printf '\033[31mFAILED:\033[0m %s\n' "${failed[*]}" >&2
    exit 1
fi
echo "All checks passed."
