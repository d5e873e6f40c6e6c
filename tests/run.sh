#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs kiln's tests: unit tests, the fuzz corpus replayed (FUZZ_BUILD, from
# make fuzz-build), integration tests that load the real BPF programs (as
# root only; otherwise they are skipped, said so), then the unit tests and
# one integration file again from a build with ASan and UBSan
# (SANITIZE_BUILD, from make sanitize-build). `--sanitized` runs only that
# last part, for a BUILD that is itself sanitized. Every
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

# What the sanitized build runs as root: one window of kiln profiling
# programs with known stacks (CFI unwinding, inlined code, a JIT's perf
# map, off-CPU), read back by go tool pprof.
SANITIZED_INTEGRATION=${SANITIZED_INTEGRATION:-tests/integration/sanitized_run.py}
# Any sanitizer report is fatal (the build has -fno-sanitize-recover too), leaks included.
SANITIZER_ENV=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
	LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp)

unit_only=false
sanitized_only=false
[ "${1:-}" = "--unit-only" ] && unit_only=true
[ "${1:-}" = "--sanitized" ] && sanitized_only=true

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

# build_fixtures BUILD: the unit tests' fixtures, where that build's tests look.
build_fixtures() {
	if ! tests/fixtures/build.sh "$1/tests/fixtures" >"$1/fixtures.log" 2>&1; then
		cat "$1/fixtures.log"
		echo "FAIL building test fixtures in $1" | tee -a "$log"
		status=1
	fi
}

# unit_tests BUILD [ENV...]: every unit test binary of that build.
unit_tests() {
	local build=$1 t
	shift
	for t in "$build"/tests/unit/*/test_*; do
		[ -x "$t" ] && run "$UNIT_TIMEOUT_S" env "$@" "$t"
	done
}

# sanitized_tests BUILD: the unit tests and one integration file of a sanitized build.
sanitized_tests() {
	build_fixtures "$1"
	unit_tests "$1" "${SANITIZER_ENV[@]}"
	if [ "$(id -u)" -eq 0 ]; then
		run "$INTEGRATION_TIMEOUT_S" env "${SANITIZER_ENV[@]}" BUILD="$1" \
			python3 "$SANITIZED_INTEGRATION"
	else
		echo "skip sanitized integration test: it needs root" | tee -a "$log"
	fi
}

if $sanitized_only; then
	sanitized_tests "$BUILD"
else
	build_fixtures "$BUILD"
	unit_tests "$BUILD"
	# The fuzz corpus, every file once through its target, under ASan and UBSan.
	if [ -n "${FUZZ_BUILD:-}" ]; then
		run "$UNIT_TIMEOUT_S" env FUZZ_BUILD="$FUZZ_BUILD" tests/fuzz/fuzz.sh replay
	fi
fi

if ! $unit_only && ! $sanitized_only; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "skip integration tests: they need root (they load BPF programs)" | tee -a "$log"
	else
		for t in tests/integration/test_*.py; do
			run "$INTEGRATION_TIMEOUT_S" python3 "$t"
		done
	fi
	if [ -n "${SANITIZE_BUILD:-}" ]; then
		sanitized_tests "$SANITIZE_BUILD"
	fi
fi

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo
grep '^FAIL ' "$log"
grep '^skip ' "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
