#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The libFuzzer targets in FUZZ_BUILD (make fuzz-build), under ASan and UBSan:
#   tests/fuzz/fuzz.sh run [TARGET...]     fuzzes each for FUZZ_SECONDS on one CPU, then
#                                          merges what found new paths into its corpus,
#                                          which it keeps minimal
#   tests/fuzz/fuzz.sh replay [TARGET...]  runs each over its corpus once, no mutation
# TARGET is a name like fuzz_elf_file; all by default. A crash, leak, UB or
# hang fails the target: its input is kept in FUZZ_BUILD/crashes/TARGET/.
set -uo pipefail
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# Any report is fatal; an input slower than this is a hang.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
TIMEOUT_S=30

mode=${1:-}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for source in tests/fuzz/fuzz_*.c; do
		targets+=("$(basename "$source" .c)")
	done
fi

# fuzz_one TARGET: fuzzes into a fresh directory, then merges it into the corpus.
fuzz_one() {
	local target=$1 bin=$FUZZ_BUILD/tests/fuzz/$1 corpus=tests/fuzz/corpus/$1
	local new=$FUZZ_BUILD/new/$1 crashes=$FUZZ_BUILD/crashes/$1 log=$FUZZ_BUILD/logs/$1.log
	mkdir -p "$corpus" "$crashes" "$FUZZ_BUILD/logs"
	rm -rf "$new" && mkdir -p "$new"
	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout="$TIMEOUT_S" -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$new" "$corpus" >"$log" 2>&1
	local code=$?
	grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/$target: /"
	if [ "$code" -ne 0 ]; then
		tail -40 "$log"
		echo "FAIL fuzz.$target: exited $code, inputs in $crashes/"
		return 1
	fi
	# The corpus becomes the smallest inputs, old and new, that cover all
	# that any of them covers (-merge=1 tries small ones first), plus every
	# file named by hand: real files and regression inputs. libFuzzer names
	# its own by their SHA-1.
	local merged=$FUZZ_BUILD/merged/$1 file
	rm -rf "$merged" && mkdir -p "$merged"
	"$bin" -merge=1 -timeout="$TIMEOUT_S" "$merged" "$corpus" "$new" >>"$log" 2>&1 ||
		{ tail -20 "$log"; echo "FAIL fuzz.$target: merge"; return 1; }
	for file in "$corpus"/*; do
		[[ $(basename "$file") =~ ^[0-9a-f]{40}$ ]] || cp "$file" "$merged/"
	done
	rm -rf "$corpus" && mv "$merged" "$corpus"
	echo "ok   fuzz.$target: $(find "$corpus" -type f | wc -l) corpus files," \
		"$(du -sb "$corpus" | cut -f1) bytes"
}

# replay_one TARGET: every corpus file once; the output only when one fails.
replay_one() {
	local target=$1 bin=$FUZZ_BUILD/tests/fuzz/$1 corpus=tests/fuzz/corpus/$1 log
	local files=("$corpus"/*)
	log=$(mktemp)
	if "$bin" -timeout="$TIMEOUT_S" -runs=1 "${files[@]}" >"$log" 2>&1; then
		echo "ok   fuzz_corpus.$target: ${#files[@]} files"
		rm -f "$log"
		return 0
	fi
	grep -v -E '^(Running:|Executed) ' "$log" | tail -60
	rm -f "$log"
	echo "FAIL fuzz_corpus.$target"
	return 1
}

case "$mode" in
run) step=fuzz_one ;;
replay) step=replay_one ;;
*)
	echo "usage: $0 run|replay [TARGET...]" >&2
	exit 2
	;;
esac
status=0
for target in "${targets[@]}"; do
	"$step" "$target" || status=1
done
exit $status
