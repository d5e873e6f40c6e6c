// SPDX-License-Identifier: Apache-2.0
/* Table-driven command-line parsing: every flag is one row of option_table. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/http/http_address.h"
#include "agent/options.h"
#include "agent/push/protocol.h"
#include "agent/push/pyroscope.h"
#include "agent/sampling/offcpu_state.h"
#include "lib/array.h"

enum option_kind {
	OPTION_UINT, /* a decimal number within [min, max] */
	OPTION_PID, /* repeatable; the process must exist */
	OPTION_STRING,
	OPTION_SIZE, /* bytes: a number with K, M or G (binary); M when bare */
	OPTION_STATES, /* a comma list of off-CPU task states */
	OPTION_CHOICE, /* one word of spec->choices, stored as its index (uint32_t) */
	OPTION_URLS, /* space-separated http(s):// or file:// URLs; "" for none */
	OPTION_FLAG,
	OPTION_HEADER, /* repeatable "Name: value" */
	OPTION_ADDRESS, /* HOST:PORT or [IPv6]:PORT to listen on; "" for none */
	OPTION_CONFIG, /* --config FILE: read before the other flags */
	OPTION_HELP,
	OPTION_VERSION,
};

struct option_spec {
	const char *name;
	char short_name;
	enum option_kind kind;
	size_t offset; /* of the field in struct kiln_options */
	uint64_t min, max;
	const char *arg_name;
	const char *help;
	const char *const *choices; /* OPTION_CHOICE: the words, NULL-terminated */
	bool remote_only; /* meaningless without --remote-store: an error then */
};

static const char *const unwind_choices[] = { "dwarf", "fp", NULL };
static const char *const python_choices[] = { "on", "off", NULL };
static const char *const kubernetes_choices[] = { "auto", "on", "off", NULL };
static const char *const otlp_transport_choices[] = { "http", "grpc", NULL };

static const char *const off_cpu_hooks_choices[] = { "auto", "task-work", "sys-exit", "raw-tp",
						     NULL };
_Static_assert(ARRAY_SIZE(off_cpu_hooks_choices) == OFF_CPU_HOOKS__COUNT + 1,
	       "one word per enum off_cpu_hooks_choice");

#define FIELD(f) offsetof(struct kiln_options, f)

static const struct option_spec option_table[] = {
	{ "frequency", 'F', OPTION_UINT, FIELD(frequency_hz), 1, 10000, "HZ",
	  "samples per second on each CPU (default 19)" },
	{ "duration", 'd', OPTION_UINT, FIELD(duration_s), 1, 86400, "SECONDS",
	  "length of a profile window (default 10)" },
	{ "iterations", 'n', OPTION_UINT, FIELD(iterations), 0, UINT32_MAX, "N",
	  "stop after N windows; 0 runs until SIGINT/SIGTERM (default 0)" },
	{ "pid", 'p', OPTION_PID, 0, 1, 4194304, "PID",
	  "profile only this process and its threads (repeatable)" },
	{ "output-dir", 'o', OPTION_STRING, FIELD(output_dir), 0, 0, "DIR",
	  "where profiles are written (default ./profiles; none with --remote-store)" },
	{ "output-max-bytes", 0, OPTION_SIZE, FIELD(output_max_bytes), 0, 1ULL << 50, "SIZE",
	  "bound on the profiles in --output-dir: the oldest are deleted past it (default 1G; 0: "
	  "none)" },
	{ "max-stacks", 0, OPTION_UINT, FIELD(max_stacks), 64, 1 << 22, "N",
	  "distinct stacks kept in BPF per window (default 16384)" },
	{ "max-sample-keys", 0, OPTION_UINT, FIELD(max_sample_keys), 64, 1 << 22, "N",
	  "distinct (pid, tid, stack) counts kept in BPF per window (default 16384)" },
	{ "max-processes", 0, OPTION_UINT, FIELD(max_processes), 16, 1 << 22, "N",
	  "processes whose mappings the agent keeps (default 8192)" },
	{ "unwind", 0, OPTION_CHOICE, FIELD(unwind_fp), 0, 0, "dwarf|fp",
	  "user stacks from DWARF CFI (default) or frame pointers", unwind_choices },
	{ "no-kernel-fill", 0, OPTION_FLAG, FIELD(no_kernel_fill), 0, 0, NULL,
	  "new processes' mappings read by the agent alone, not filled by the kernel at "
	  "their loader or first sample" },
	{ "python", 0, OPTION_CHOICE, FIELD(python_off), 0, 0, "on|off",
	  "CPython's frames (3.6-3.13) in place of its evaluator's, with --unwind dwarf "
	  "(default on)",
	  python_choices },
	{ "max-unwind-memory", 0, OPTION_SIZE, FIELD(max_unwind_memory), 64 << 10, 4ULL << 30,
	  "SIZE", "BPF map memory for unwind tables, LRU evicted (default 64M; K, M, G)" },
	{ "off-cpu", 0, OPTION_FLAG, FIELD(off_cpu), 0, 0, NULL,
	  "also profile off-CPU time: where threads wait (offcpu-*.pb.gz)" },
	{ "no-cpu", 0, OPTION_FLAG, FIELD(no_cpu), 0, 0, NULL,
	  "no CPU profile (with --off-cpu: off-CPU only)" },
	{ "off-cpu-min-block", 0, OPTION_UINT, FIELD(off_cpu_min_block_us), 0, 10000000, "USEC",
	  "blocks shorter than this get no stack, only totals (default 1000)" },
	{ "off-cpu-states", 0, OPTION_STATES, FIELD(off_cpu_states), 0, 0, "LIST",
	  "states that count: sleeping,uninterruptible,preempted (default all)" },
	{ "off-cpu-hooks", 0, OPTION_CHOICE, FIELD(off_cpu_hooks), 0, 0,
	  "auto|task-work|sys-exit|raw-tp",
	  "kernel hooks for off-CPU time; auto picks the best the kernel has",
	  off_cpu_hooks_choices },
	{ "remote-store", 0, OPTION_STRING, FIELD(remote_store), 0, 0, "URL",
	  "push profiles to this Pyroscope or Parca (http:// or https://)" },
	{ "remote-protocol", 0, OPTION_STRING, FIELD(remote_protocol), 0, 0, "pyroscope|parca|otlp",
	  "how to push: Pyroscope's /ingest, Parca's gRPC WriteRaw or OpenTelemetry's OTLP "
	  "(default pyroscope)",
	  .remote_only = true },
	{ "otlp-transport", 0, OPTION_CHOICE, FIELD(otlp_transport), 0, 0, "http|grpc",
	  "OTLP over HTTP (POST /v1development/profiles) or gRPC (default http)",
	  otlp_transport_choices, .remote_only = true },
	{ "service-name", 0, OPTION_STRING, FIELD(service_name), 0, 0, "NAME",
	  "service_name label of every pushed profile (default: the process name)",
	  .remote_only = true },
	{ "bearer-token-file", 0, OPTION_STRING, FIELD(bearer_token_file), 0, 0, "FILE",
	  "send 'Authorization: Bearer' with the token in FILE (re-read per request)",
	  .remote_only = true },
	{ "basic-auth-file", 0, OPTION_STRING, FIELD(basic_auth_file), 0, 0, "FILE",
	  "HTTP basic authentication, FILE holding user:password", .remote_only = true },
	{ "header", 0, OPTION_HEADER, 0, 0, 0, "'NAME: VALUE'",
	  "extra request header, e.g. 'X-Scope-OrgID: team' (repeatable)", .remote_only = true },
	{ "tls-ca", 0, OPTION_STRING, FIELD(tls_ca), 0, 0, "FILE",
	  "CA certificates to verify the backend with (default: the system's)",
	  .remote_only = true },
	{ "tls-cert", 0, OPTION_STRING, FIELD(tls_cert), 0, 0, "FILE",
	  "client certificate (PEM), with --tls-key", .remote_only = true },
	{ "tls-key", 0, OPTION_STRING, FIELD(tls_key), 0, 0, "FILE", "client key (PEM)",
	  .remote_only = true },
	{ "tls-insecure-skip-verify", 0, OPTION_FLAG, FIELD(tls_insecure_skip_verify), 0, 0, NULL,
	  "do not verify the backend's certificate (testing only)", .remote_only = true },
	{ "remote-connect-timeout", 0, OPTION_UINT, FIELD(remote_connect_timeout_s), 1, 600,
	  "SECONDS", "give up connecting after this (default 5)" },
	{ "remote-timeout", 0, OPTION_UINT, FIELD(remote_timeout_s), 1, 3600, "SECONDS",
	  "give up on one upload after this, then retry (default 30)" },
	{ "remote-drain-timeout", 0, OPTION_UINT, FIELD(remote_drain_timeout_s), 0, 3600, "SECONDS",
	  "on exit, keep pushing spooled profiles this long (default 10)" },
	{ "spool-dir", 0, OPTION_STRING, FIELD(spool_dir), 0, 0, "DIR",
	  "profiles wait here until delivered (default /var/lib/kiln/spool)", .remote_only = true },
	{ "spool-max-bytes", 0, OPTION_SIZE, FIELD(spool_max_bytes), 64 << 10, 1ULL << 40, "SIZE",
	  "spool bound; the oldest profiles are dropped past it (default 256M)" },
	{ "max-memory", 0, OPTION_SIZE, FIELD(max_memory), 4 << 20, 1ULL << 40, "SIZE",
	  "what the agent's caches (DWARF, ELF symbols, perf maps) may hold in all, each least "
	  "used first evicted past its share (default 24M)" },
	{ "max-dwarf-memory", 0, OPTION_SIZE, FIELD(max_dwarf_memory), 1 << 20, 1ULL << 40, "SIZE",
	  "debug information held open, estimated, instead of its share of --max-memory "
	  "(default half of it)" },
	{ "debuginfod-urls", 0, OPTION_URLS, FIELD(debuginfod_urls), 0, 0, "URLS",
	  "debuginfod servers for missing debug files, space-separated; \"\" for none "
	  "(default $DEBUGINFOD_URLS)" },
	{ "http-address", 0, OPTION_ADDRESS, FIELD(http_address), 0, 0, "HOST:PORT",
	  "serve /metrics (Prometheus) and /healthz here, [IPv6]:PORT too; \"\" for none "
	  "(default 127.0.0.1:7071)" },
	{ "kubernetes", 0, OPTION_CHOICE, FIELD(kubernetes), 0, 0, "auto|on|off",
	  "watch this node's pods in the Kubernetes API for __meta_kubernetes_* labels, with "
	  "--config; auto: when running in a pod (default auto)",
	  kubernetes_choices },
	{ "kubernetes-api", 0, OPTION_STRING, FIELD(kubernetes_api), 0, 0, "URL",
	  "the API server (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)" },
	{ "kubernetes-service-account-dir", 0, OPTION_STRING, FIELD(kubernetes_sa_dir), 0, 0, "DIR",
	  "the pod's token and ca.crt (default /var/run/secrets/kubernetes.io/serviceaccount)" },
	{ "node-name", 0, OPTION_STRING, FIELD(node_name), 0, 0, "NAME",
	  "this node's name in the Kubernetes API (default $NODE_NAME, else the host name)" },
	{ "config", 'c', OPTION_CONFIG, 0, 0, 0, "FILE",
	  "YAML file of settings (each flag by its long name) and relabel_configs; flags win" },
	{ "verbose", 'v', OPTION_FLAG, FIELD(verbose), 0, 0, NULL, "log debugging detail" },
	{ "probe-kernel", 0, OPTION_FLAG, FIELD(probe_kernel), 0, 0, NULL,
	  "say which BPF features this kernel allows kiln, then exit" },
	{ "help", 'h', OPTION_HELP, 0, 0, 0, NULL, "show this help and exit" },
	{ "version", 'V', OPTION_VERSION, 0, 0, 0, NULL, "show the version and exit" },
};

#define OPTION_COUNT ARRAY_SIZE(option_table)

static void print_help(const char *prog)
{
	printf("Usage: %s [OPTION]...\n"
	       "Continuous whole-host CPU profiler: samples kernel and user stacks in BPF\n"
	       "and writes one gzip-compressed pprof file per window.\n\n",
	       prog);
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *spec = &option_table[i];
		char left[96];

		snprintf(left, sizeof(left), "%c%c%s--%s%s%s", spec->short_name ? '-' : ' ',
			 spec->short_name ? spec->short_name : ' ', spec->short_name ? ", " : "  ",
			 spec->name, spec->arg_name ? " " : "",
			 spec->arg_name ? spec->arg_name : "");
		/* A long left column puts the help on a line of its own. */
		if (strlen(left) > 28)
			printf("  %s\n  %-28s %s\n", left, "", spec->help);
		else
			printf("  %-28s %s\n", left, spec->help);
	}
	printf("\nProfiles: OUTPUT_DIR/cpu-<UTC start>.pb.gz; view with\n"
	       "  go tool pprof -http=: profiles/cpu-*.pb.gz\n");
}

/* Where the setting being applied came from, when from the config file: "FILE:LINE: ". */
static char error_origin[512];

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kiln: %s", error_origin);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'kiln --help' for more information.\n");
	return OPTIONS_EXIT_USAGE;
}

/* Strict: digits only, no sign, no trailing text, within range. */
static int parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *ret_value)
{
	unsigned long long value;
	char *end;

	if (!*text || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (value < min || value > max)
		return -ERANGE;
	*ret_value = value;
	return 0;
}

static const struct option_spec *find_option(const char *arg, const char **ret_inline_value)
{
	*ret_inline_value = NULL;
	for (size_t i = 0; i < OPTION_COUNT; i++) {
		const struct option_spec *spec = &option_table[i];
		size_t len = strlen(spec->name);

		if (arg[0] == '-' && arg[1] != '-') {
			if (spec->short_name && arg[1] == spec->short_name) {
				if (arg[2])
					*ret_inline_value = arg + 2;
				return spec;
			}
			continue;
		}
		if (strncmp(arg + 2, spec->name, len) != 0)
			continue;
		if (arg[2 + len] == '=') {
			*ret_inline_value = arg + 3 + len;
			return spec;
		}
		if (arg[2 + len] == '\0')
			return spec;
	}
	return NULL;
}

/* Options for pushing to a backend (--remote-store and what goes with it). */

/* "64K", "4G": a limit as the user would write it. */
static void size_text(uint64_t bytes, char *out, size_t size)
{
	static const char units[] = "KMGT";
	int unit = -1;

	while (unit < 3 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		unit++;
	}
	if (unit < 0)
		snprintf(out, size, "%" PRIu64, bytes);
	else
		snprintf(out, size, "%" PRIu64 "%c", bytes, units[unit]);
}

/* RFC 9110 token characters, what a header name is made of. */
static bool is_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int add_header(const char *value, struct kiln_options *opts)
{
	const char *colon = strchr(value, ':');

	if (!colon || colon == value)
		return usage_error("--header: '%s' is not 'Name: value'", value);
	for (const char *c = value; c < colon; c++)
		if (!is_token_char(*c))
			return usage_error("--header: '%s': the name has a character headers "
					   "may not have",
					   value);
	if (strpbrk(value, "\r\n"))
		return usage_error("--header: a line break in '%s'", value);
	if (opts->header_count == MAX_REMOTE_HEADERS)
		return usage_error("--header: at most %d headers", MAX_REMOTE_HEADERS);
	opts->headers[opts->header_count++] = value;
	return OPTIONS_RUN;
}

/* Settings that need each other, and files that must be readable. */
static int check_remote_options(struct kiln_options *opts, const bool *seen)
{
	const struct {
		const char *name;
		const char *value;
	} files[] = {
		{ "bearer-token-file", opts->bearer_token_file },
		{ "basic-auth-file", opts->basic_auth_file },
		{ "tls-ca", opts->tls_ca },
		{ "tls-cert", opts->tls_cert },
		{ "tls-key", opts->tls_key },
	};
	if (!opts->remote_store) {
		for (size_t i = 0; i < OPTION_COUNT; i++)
			if (seen[i] && option_table[i].remote_only)
				return usage_error("--%s: only with --remote-store",
						   option_table[i].name);
		if (!opts->output_dir)
			opts->output_dir = "./profiles";
		return OPTIONS_RUN;
	}
	if (opts->remote_protocol && !push_protocol_find(opts->remote_protocol)) {
		char words[128] = "";

		for (size_t i = 0; push_protocols[i]; i++)
			snprintf(words + strlen(words), sizeof(words) - strlen(words), "%s%s",
				 i ? ", " : "", push_protocols[i]->name);
		return usage_error("--remote-protocol: unknown value '%s' (%s)",
				   opts->remote_protocol, words);
	}
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (seen[i] && option_table[i].offset == FIELD(otlp_transport) &&
		    (!opts->remote_protocol || strcmp(opts->remote_protocol, "otlp")))
			return usage_error("--otlp-transport: only with --remote-protocol otlp");
	if ((strncmp(opts->remote_store, "http://", 7) || !opts->remote_store[7]) &&
	    (strncmp(opts->remote_store, "https://", 8) || !opts->remote_store[8]))
		return usage_error("--remote-store: '%s' is not an http:// or https:// URL",
				   opts->remote_store);
	/* Pyroscope's rule for service names. */
	if (opts->service_name && !pyroscope_service_name_valid(opts->service_name))
		return usage_error("--service-name: '%s' may hold only letters, digits and _ . - /",
				   opts->service_name);
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (seen[i] && !opts->output_dir &&
		    option_table[i].offset == FIELD(output_max_bytes))
			return usage_error("--%s: with --remote-store, only with --output-dir",
					   option_table[i].name);
	if (opts->bearer_token_file && opts->basic_auth_file)
		return usage_error("--bearer-token-file and --basic-auth-file: choose one");
	if (!opts->tls_cert != !opts->tls_key)
		return usage_error("--%s: needs --%s too", opts->tls_cert ? "tls-cert" : "tls-key",
				   opts->tls_cert ? "tls-key" : "tls-cert");
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i].value && access(files[i].value, R_OK))
			return usage_error("--%s: cannot read %s: %s", files[i].name,
					   files[i].value, strerror(errno));
	if (!opts->spool_dir)
		opts->spool_dir = "/var/lib/kiln/spool";
	return OPTIONS_RUN;
}

/* "a, b, c" from a NULL-terminated list, for the error naming what is allowed. */
static void join_words(const char *const *words, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; words[i]; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "", words[i]);
}

static int apply_option(const struct option_spec *spec, const char *value,
			struct kiln_options *opts)
{
	char *field = (char *)opts + spec->offset;
	uint64_t number;
	int err;

	switch (spec->kind) {
	case OPTION_UINT:
	case OPTION_PID:
		err = parse_uint(value, spec->min, spec->max, &number);
		if (err == -EINVAL)
			return usage_error("--%s: '%s' is not a non-negative whole number",
					   spec->name, value);
		if (err)
			return usage_error("--%s: %s is out of range (%" PRIu64 " to %" PRIu64 ")",
					   spec->name, value, spec->min, spec->max);
		if (spec->kind == OPTION_UINT) {
			memcpy(field, &number, sizeof(number));
			return OPTIONS_RUN;
		}
		if (kill((pid_t)number, 0) && errno == ESRCH)
			return usage_error("--pid: no process with pid %s", value);
		if (opts->pid_count == MAX_PID_FILTERS)
			return usage_error("--pid: at most %d processes", MAX_PID_FILTERS);
		opts->pids[opts->pid_count++] = (uint32_t)number;
		return OPTIONS_RUN;
	case OPTION_STRING:
		if (!*value)
			return usage_error("--%s: empty value", spec->name);
		memcpy(field, &value, sizeof(value));
		return OPTIONS_RUN;
	case OPTION_SIZE: {
		char digits[32];
		size_t len = strlen(value);
		uint64_t unit = 1 << 20;

		if (len && len < sizeof(digits) && strchr("KkMmGg", value[len - 1])) {
			unit = strchr("Kk", value[len - 1])   ? 1 << 10
			       : strchr("Mm", value[len - 1]) ? 1 << 20
							      : 1 << 30;
			len--;
		}
		if (len >= sizeof(digits))
			return usage_error("--%s: '%s' is not a size", spec->name, value);
		memcpy(digits, value, len);
		digits[len] = '\0';
		if (parse_uint(digits, 0, UINT64_MAX / unit, &number))
			return usage_error("--%s: '%s' is not a size (a number, with K, M or G)",
					   spec->name, value);
		number *= unit;
		if (number < spec->min || number > spec->max) {
			char min[24], max[24];

			size_text(spec->min, min, sizeof(min));
			size_text(spec->max, max, sizeof(max));
			return usage_error("--%s: %s is out of range (%s to %s)", spec->name, value,
					   min, max);
		}
		memcpy(field, &number, sizeof(number));
		return OPTIONS_RUN;
	}
	case OPTION_STATES: {
		char list[128], *saveptr = NULL;
		uint32_t mask = 0;

		if (strlen(value) >= sizeof(list))
			return usage_error("--%s: too long", spec->name);
		strcpy(list, value);
		for (char *name = strtok_r(list, ",", &saveptr); name;
		     name = strtok_r(NULL, ",", &saveptr)) {
			size_t i;

			for (i = 0; offcpu_state_names[i]; i++)
				if (!strcmp(name, offcpu_state_names[i]))
					break;
			if (!offcpu_state_names[i]) {
				char words[128];

				join_words(offcpu_state_names, words, sizeof(words));
				return usage_error("--%s: unknown state '%s' (%s)", spec->name,
						   name, words);
			}
			mask |= 1u << i;
		}
		if (!mask)
			return usage_error("--%s: no state given", spec->name);
		memcpy(field, &mask, sizeof(mask));
		return OPTIONS_RUN;
	}
	case OPTION_CHOICE: {
		char words[128];

		for (uint32_t i = 0; spec->choices[i]; i++) {
			if (!strcmp(value, spec->choices[i])) {
				memcpy(field, &i, sizeof(i));
				return OPTIONS_RUN;
			}
		}
		join_words(spec->choices, words, sizeof(words));
		return usage_error("--%s: unknown value '%s' (%s)", spec->name, value, words);
	}
	case OPTION_URLS: {
		char list[4096], *saveptr = NULL;

		if (strlen(value) >= sizeof(list))
			return usage_error("--%s: too long", spec->name);
		strcpy(list, value);
		for (char *url = strtok_r(list, " ", &saveptr); url;
		     url = strtok_r(NULL, " ", &saveptr)) {
			if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8) &&
			    strncmp(url, "file://", 7))
				return usage_error("--%s: '%s' is not an http://, https:// or "
						   "file:// URL",
						   spec->name, url);
		}
		memcpy(field, &value, sizeof(value));
		return OPTIONS_RUN;
	}
	case OPTION_ADDRESS: {
		struct http_address address;

		if (*value && http_address_parse(value, &address))
			return usage_error("--%s: '%s' is not HOST:PORT (an IPv4 address, or "
					   "[IPv6]:PORT; port 1 to 65535)",
					   spec->name, value);
		memcpy(field, &value, sizeof(value));
		return OPTIONS_RUN;
	}
	case OPTION_FLAG:
		*(bool *)field = true;
		return OPTIONS_RUN;
	case OPTION_HEADER:
		return add_header(value, opts);
	case OPTION_CONFIG:
	case OPTION_HELP:
	case OPTION_VERSION:
		break;
	}
	return OPTIONS_RUN;
}

/* The option a long name (no dashes) names, or NULL. */
static const struct option_spec *find_long(const char *name)
{
	for (size_t i = 0; i < OPTION_COUNT; i++)
		if (!strcmp(option_table[i].name, name))
			return &option_table[i];
	return NULL;
}

/*
 * One pass over argv: applies every flag (apply true), or only marks in
 * seen which flags are there (apply false); either way finds --config.
 */
static int scan_argv(int argc, char **argv, struct kiln_options *opts, bool apply, bool *seen,
		     const char **config_path)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct option_spec *spec;
		int result;

		if (arg[0] != '-' || arg[1] == '\0')
			return usage_error("unexpected argument '%s'", arg);
		spec = find_option(arg, &value);
		if (!spec)
			return usage_error("unknown option '%s'", arg);
		switch (spec->kind) {
		case OPTION_HELP:
			print_help(argv[0]);
			return OPTIONS_EXIT_OK;
		case OPTION_VERSION:
			printf("kiln %s\n", KILN_VERSION);
			return OPTIONS_EXIT_OK;
		case OPTION_FLAG:
			if (value)
				return usage_error("--%s takes no value", spec->name);
			break;
		default:
			if (!value) {
				if (i + 1 >= argc)
					return usage_error("--%s needs a value (%s)", spec->name,
							   spec->arg_name);
				value = argv[++i];
			}
		}
		seen[spec - option_table] = true;
		if (spec->kind == OPTION_CONFIG) {
			if (*config_path && strcmp(*config_path, value))
				return usage_error("--config: one file only");
			*config_path = value;
			continue;
		}
		if (!apply)
			continue;
		result = apply_option(spec, value, opts);
		if (result != OPTIONS_RUN)
			return result;
	}
	return OPTIONS_RUN;
}

/* A config file's setting, as its flag would take it: "true" for a flag that is on. */
static int apply_setting(const struct config_setting *setting, struct kiln_options *opts,
			 const bool *on_command_line, bool *seen)
{
	const struct option_spec *spec = find_long(setting->name);

	if (!spec || spec->kind == OPTION_HELP || spec->kind == OPTION_VERSION ||
	    spec->kind == OPTION_CONFIG)
		return usage_error("unknown setting '%s'", setting->name);
	if (on_command_line[spec - option_table])
		return OPTIONS_RUN; /* the flag wins */
	seen[spec - option_table] = true;
	if (spec->kind != OPTION_FLAG)
		return apply_option(spec, setting->value, opts);
	if (!strcmp(setting->value, "false"))
		return OPTIONS_RUN;
	if (strcmp(setting->value, "true"))
		return usage_error("%s: true or false, not '%s'", setting->name, setting->value);
	return apply_option(spec, setting->value, opts);
}

static int load_config(const char *path, struct kiln_options *opts, const bool *on_command_line,
		       bool *seen)
{
	char error[1024];
	int result = OPTIONS_RUN;

	if (config_load(path, &opts->config, error, sizeof(error))) {
		fprintf(stderr, "kiln: --config: %s\n", error);
		return OPTIONS_EXIT_USAGE;
	}
	for (size_t i = 0; result == OPTIONS_RUN && i < opts->config->setting_count; i++) {
		const struct config_setting *setting = &opts->config->settings[i];

		snprintf(error_origin, sizeof(error_origin), "%s:%u: ", path, setting->line);
		result = apply_setting(setting, opts, on_command_line, seen);
	}
	error_origin[0] = '\0';
	return result;
}

enum options_result options_parse(int argc, char **argv, struct kiln_options *opts)
{
	*opts = (struct kiln_options){
		.frequency_hz = 19,
		.duration_s = 10,
		.iterations = 0,
		.max_stacks = 16384,
		.max_sample_keys = 16384,
		.max_processes = 8192,
		.max_unwind_memory = 64 << 20,
		.off_cpu_min_block_us = 1000,
		.off_cpu_states = 0x7,
		.remote_connect_timeout_s = 5,
		.remote_timeout_s = 30,
		.remote_drain_timeout_s = 10,
		.spool_max_bytes = 256 << 20,
		.output_max_bytes = 1ULL << 30,
		.max_memory = 24 << 20,
		.http_address = "127.0.0.1:7071",
	};
	bool seen[OPTION_COUNT] = {}, on_command_line[OPTION_COUNT] = {};
	const char *config_path = NULL;
	int result;

	error_origin[0] = '\0';
	result = scan_argv(argc, argv, opts, false, on_command_line, &config_path);
	if (result == OPTIONS_RUN && config_path)
		result = load_config(config_path, opts, on_command_line, seen);
	if (result == OPTIONS_RUN)
		result = scan_argv(argc, argv, opts, true, seen, &config_path);
	if (result != OPTIONS_RUN)
		return result;
	if (opts->no_cpu && !opts->off_cpu)
		return usage_error("--no-cpu: nothing left to profile without --off-cpu");
	if (opts->kubernetes == 1 && !opts->config)
		return usage_error("--kubernetes=on: needs --config, whose relabel_configs use the "
				   "pods' __meta_kubernetes_* labels");
	return check_remote_options(opts, seen);
}

void options_free(struct kiln_options *opts)
{
	config_free(opts->config);
	opts->config = NULL;
}
