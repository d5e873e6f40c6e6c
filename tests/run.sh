#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs kiln's tests: unit tests, then integration tests that load the real
# BPF programs (as root only; otherwise they are skipped, said so). Every
# test prints "ok NAME" or "FAIL NAME"; the last line tallies them as
# "N passed, N failed". A test file that runs longer than its limit is
# killed and fails, and the run goes on with the next file.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD

# Per-file limits, several times the measured runs on a loaded 2-CPU
# machine (all unit binaries together 60 s; test_offcpu.py 56 to 74 s,
# test_symbols.py 51 s), so that only a hung file reaches them.
UNIT_TIMEOUT_S=${UNIT_TIMEOUT_S:-120}
INTEGRATION_TIMEOUT_S=${INTEGRATION_TIMEOUT_S:-600}

unit_only=false
[ "${1:-}" = "--unit-only" ] && unit_only=true

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

# run LIMIT_S COMMAND...: runs one test file, killed (its whole process
# group: kiln and the workloads it started too) after LIMIT_S seconds.
run() {
	local limit=$1 code
	shift
	echo "== $*"
	timeout --kill-after=30 "$limit" "$@" 2>&1 | tee -a "$log"
	code=${PIPESTATUS[0]}
	if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
		status=1
		echo "FAIL $* timed out after $limit s" | tee -a "$log"
	elif [ "$code" -ne 0 ]; then
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
	[ -x "$t" ] && run "$UNIT_TIMEOUT_S" "$t"
done

if ! $unit_only; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "skip integration tests: they need root (they load BPF programs)" | tee -a "$log"
	else
		for t in tests/integration/test_*.py; do
			run "$INTEGRATION_TIMEOUT_S" python3 "$t"
		done
	fi
fi

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo
grep '^FAIL ' "$log"
grep '^skip ' "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
