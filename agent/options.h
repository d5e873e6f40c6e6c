/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line options of the kiln daemon. */
#ifndef KILN_OPTIONS_H
#define KILN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_VERSION "0.1.0"
#define MAX_PID_FILTERS 1024

struct kiln_options {
	uint64_t frequency_hz;
	uint64_t duration_s;
	uint64_t iterations; /* 0: run until stopped */
	uint32_t pids[MAX_PID_FILTERS];
	size_t pid_count;
	const char *output_dir;
	uint64_t max_stacks; /* distinct stacks per window (BPF) */
	uint64_t max_sample_keys; /* distinct (pid, tid, stacks) per window (BPF) */
	uint64_t max_processes; /* processes the agent tracks */
	bool unwind_fp; /* --unwind fp: frame pointers instead of DWARF CFI */
	uint64_t max_unwind_memory; /* bytes of BPF memory for unwind tables */
	bool off_cpu; /* --off-cpu */
	bool no_cpu; /* --no-cpu: off-CPU only */
	uint64_t off_cpu_min_block_us;
	uint32_t off_cpu_states; /* bit per enum offcpu_state */
	const char *debuginfod_urls; /* --debuginfod-urls; NULL: $DEBUGINFOD_URLS */
	bool verbose;
};

enum options_result {
	OPTIONS_RUN,
	OPTIONS_EXIT_OK, /* --help or --version was printed */
	OPTIONS_EXIT_USAGE, /* bad command line, reason printed: exit 2 */
};

/* Fills opts from argv after setting every default. */
enum options_result options_parse(int argc, char **argv, struct kiln_options *opts);

#endif /* KILN_OPTIONS_H */
