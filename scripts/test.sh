#!/usr/bin/env bash
# The whole suite, once on SQLite and once on a throwaway PostgreSQL.
set -uo pipefail
cd "$(dirname "$0")/.."

pytest_run() {
  # pytest exits 5 when it collected no tests: for this suite that is a broken run, say so.
  local label=$1; shift
  echo "=== suite on $label"
  .venv/bin/pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then
    echo "ERROR: pytest collected no tests on $label (exit 5): the suite is missing or deselected" >&2
    return 1
  fi
  return $rc
}

pg_dir=$(mktemp -d /tmp/keygate-pg.XXXXXX)
chmod 755 "$pg_dir"
cleanup() { scripts/pg.sh stop "$pg_dir"; }
trap cleanup EXIT

pytest_run SQLite -q "$@"
sqlite_rc=$?

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if ! url=$(scripts/pg.sh start "$pg_dir" "$port"); then
  echo "ERROR: could not start PostgreSQL for the test run" >&2
  exit 1
fi
KEYGATE_TEST_DATABASE_URL=$url pytest_run PostgreSQL -q "$@"
pg_rc=$?

echo "=== SQLite exit $sqlite_rc, PostgreSQL exit $pg_rc"
[ $sqlite_rc -eq 0 ] && [ $pg_rc -eq 0 ]
