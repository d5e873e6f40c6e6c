#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs kiln's tests: unit tests, then integration tests that load the real
# BPF programs. Every test prints "ok NAME" or "FAIL NAME"; the last line
# tallies them as "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD

unit_only=false
[ "${1:-}" = "--unit-only" ] && unit_only=true

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() {
	echo "== $*"
	"$@" 2>&1 | tee -a "$log"
	local code=${PIPESTATUS[0]}
	if [ "$code" -ne 0 ]; then
		status=1
		# A crash (a traceback) fails no check by name: make it one.
		echo "FAIL $* exited $code" | tee -a "$log"
	fi
}

if ! tests/fixtures/build.sh "$BUILD/tests/fixtures" >"$BUILD/fixtures.log" 2>&1; then
	cat "$BUILD/fixtures.log"
	echo "FAIL building test fixtures" | tee -a "$log"
	status=1
fi

for t in "$BUILD"/tests/unit/*/test_*; do
	[ -x "$t" ] && run "$t"
done

if ! $unit_only; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL integration tests need root (they load BPF programs)" | tee -a "$log"
		status=1
	else
		for t in tests/integration/test_*.py; do
			run python3 "$t"
		done
	fi
fi

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo
grep '^FAIL ' "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
