/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line options of the kiln daemon. */
#ifndef KILN_OPTIONS_H
#define KILN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KILN_VERSION "0.1.0"
#define MAX_PID_FILTERS 1024
#define MAX_REMOTE_HEADERS 32

/* --off-cpu-hooks; the last three follow enum offcpu_hooks (bpf/offcpu.h) plus one. */
enum off_cpu_hooks_choice {
	OFF_CPU_HOOKS_AUTO,
	OFF_CPU_HOOKS_TASK_WORK,
	OFF_CPU_HOOKS_SYS_EXIT,
	OFF_CPU_HOOKS_RAW_TP,
	OFF_CPU_HOOKS__COUNT,
};

struct kiln_config;

struct kiln_options {
	struct kiln_config *config; /* --config: the file read; NULL without one */
	uint64_t frequency_hz;
	uint64_t duration_s;
	uint64_t iterations; /* 0: run until stopped */
	uint32_t pids[MAX_PID_FILTERS];
	size_t pid_count;
	const char *output_dir;
	uint64_t output_max_bytes; /* the profiles kiln keeps in output_dir; 0: no bound */
	uint64_t max_stacks; /* distinct stacks per window (BPF) */
	uint64_t max_sample_keys; /* distinct (pid, tid, stacks) per window (BPF) */
	uint64_t max_processes; /* processes the agent tracks */
	uint32_t unwind_fp; /* --unwind: 0 dwarf (default), 1 fp (frame pointers) */
	uint64_t max_unwind_memory; /* bytes of BPF memory for unwind tables */
	uint32_t python_off; /* --python: 0 on (default), 1 off */
	bool off_cpu; /* --off-cpu */
	bool no_cpu; /* --no-cpu: off-CPU only */
	bool no_kernel_fill; /* --no-kernel-fill: the agent alone reads new processes' mappings */
	uint64_t off_cpu_min_block_us;
	uint32_t off_cpu_states; /* bit per enum offcpu_state */
	uint32_t off_cpu_hooks; /* enum off_cpu_hooks_choice */
	const char *debuginfod_urls; /* --debuginfod-urls; NULL: $DEBUGINFOD_URLS */
	uint64_t max_memory; /* --max-memory: the caches' budget, shared out by the agent */
	uint64_t max_dwarf_memory; /* what open DWARF may hold, estimated; 0: its share */
	bool verbose;
	bool probe_kernel; /* --probe-kernel: say what the kernel allows kiln, then exit */
	/* --http-address: where /metrics and /healthz are served; "": nowhere. */
	const char *http_address;
	/* Kubernetes metadata: --kubernetes is 0 auto, 1 on, 2 off. */
	uint32_t kubernetes;
	const char *kubernetes_api; /* NULL: from $KUBERNETES_SERVICE_HOST/PORT */
	const char *kubernetes_sa_dir; /* NULL: the service account's mount */
	const char *node_name; /* NULL: $NODE_NAME, else the host name */
	/* Pushing to a backend (--remote-store and the flags after it). */
	const char *remote_store; /* URL; NULL: local files only */
	const char *
		remote_protocol; /* --remote-protocol: a name in push_protocols[]; NULL: the first */
	uint32_t otlp_transport; /* --otlp-transport: 0 http, 1 grpc */
	const char *service_name; /* NULL: each process's name */
	const char *bearer_token_file;
	const char *basic_auth_file;
	const char *headers[MAX_REMOTE_HEADERS]; /* "Name: value" */
	size_t header_count;
	const char *tls_ca;
	const char *tls_cert;
	const char *tls_key;
	bool tls_insecure_skip_verify;
	uint64_t remote_connect_timeout_s;
	uint64_t remote_timeout_s;
	uint64_t remote_drain_timeout_s; /* on SIGTERM, for what is still spooled */
	const char *spool_dir;
	uint64_t spool_max_bytes;
};

enum options_result {
	OPTIONS_RUN,
	OPTIONS_EXIT_OK, /* --help or --version was printed */
	OPTIONS_EXIT_USAGE, /* bad command line, reason printed: exit 2 */
};

/*
 * Fills opts after setting every default: from the --config file first,
 * then from argv, whose flags win (a flag given on the command line
 * replaces the file's setting, a repeatable one all of the file's).
 */
enum options_result options_parse(int argc, char **argv, struct kiln_options *opts);

/* Frees what options_parse allocated (the config file read). */
void options_free(struct kiln_options *opts);

#endif /* KILN_OPTIONS_H */
