# shellcheck shell=bash
# Sourced by the tests in tests/e2e: the `ok`/`FAIL` lines each test prints
# and the `N passed, N failed` tally they end with.
passed=0
failed=0

# ok NAME
ok() {
  echo "ok   $1"
  passed=$((passed + 1))
}

# fail NAME [DETAILS]: the last 30 lines of DETAILS, indented, under the line.
fail() {
  echo "FAIL $1"
  [ $# -lt 2 ] || printf '%s\n' "$2" | tail -n 30 | sed 's/^/       /'
  failed=$((failed + 1))
}

# finish: the tally; exit 0 only if nothing failed.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
