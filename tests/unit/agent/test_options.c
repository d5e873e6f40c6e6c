// SPDX-License-Identifier: Apache-2.0
/* agent/options: defaults, each flag's good and bad values, and the rules between flags. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "agent/config.h"
#include "agent/http/http_address.h"
#include "agent/options.h"
#include "tests/unit/testing.h"

#define MAX_ARGS 2100

/* What the last parse printed: usage errors on stderr, help and version on stdout. */
static char err_text[8192];
static char out_text[16384];

static void read_back(FILE *file, char *text, size_t size)
{
	size_t len;

	rewind(file);
	len = fread(text, 1, size - 1, file);
	text[len] = '\0';
	fclose(file);
}

/* Parses argv with stdout and stderr caught in err_text and out_text. */
static enum options_result parse_argv(int argc, char **argv, struct kiln_options *opts)
{
	FILE *err_file = tmpfile(), *out_file = tmpfile();
	int saved_err, saved_out;
	enum options_result result;

	if (!err_file || !out_file) {
		perror("tmpfile");
		exit(1);
	}
	fflush(stdout);
	fflush(stderr);
	saved_err = dup(STDERR_FILENO);
	saved_out = dup(STDOUT_FILENO);
	dup2(fileno(err_file), STDERR_FILENO);
	dup2(fileno(out_file), STDOUT_FILENO);
	result = options_parse(argc, argv, opts);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_err, STDERR_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_err);
	close(saved_out);
	read_back(err_file, err_text, sizeof(err_text));
	read_back(out_file, out_text, sizeof(out_text));
	return result;
}

/* parse(&opts, "--flag", "value", ..., NULL) */
static enum options_result parse(struct kiln_options *opts, ...)
{
	char *argv[64] = { "kiln" };
	int argc = 1;
	va_list ap;

	va_start(ap, opts);
	for (char *arg; (arg = va_arg(ap, char *));)
		argv[argc++] = arg;
	va_end(ap);
	return parse_argv(argc, argv, opts);
}

/* A usage error is reported on stderr, once, with the hint to --help. */
static bool usage_error_said(const char *fragment)
{
	return strstr(err_text, fragment) && strstr(err_text, "Try 'kiln --help'") &&
	       !strncmp(err_text, "kiln: ", 6);
}

#define CHECK_USAGE(...)                                                                           \
	do {                                                                                       \
		struct kiln_options _opts;                                                         \
		CHECK(parse(&_opts, __VA_ARGS__, NULL) == OPTIONS_EXIT_USAGE);                     \
		CHECK(strstr(err_text, "Try 'kiln --help'") != NULL);                              \
	} while (0)

#define CHECK_RUNS(...)                                                                            \
	do {                                                                                       \
		struct kiln_options _opts;                                                         \
		CHECK(parse(&_opts, __VA_ARGS__, NULL) == OPTIONS_RUN);                            \
		CHECK(err_text[0] == '\0');                                                        \
	} while (0)

#define FIELD(f) offsetof(struct kiln_options, f)

static uint64_t field_u64(const struct kiln_options *opts, size_t offset)
{
	uint64_t value;

	memcpy(&value, (const char *)opts + offset, sizeof(value));
	return value;
}

static void test_defaults(void)
{
	struct kiln_options opts;

	memset(&opts, 0xa5, sizeof(opts));
	CHECK(parse(&opts, NULL) == OPTIONS_RUN);
	CHECK(err_text[0] == '\0' && out_text[0] == '\0');
	CHECK(opts.frequency_hz == 19);
	CHECK(opts.duration_s == 10);
	CHECK(opts.iterations == 0);
	CHECK(opts.pid_count == 0);
	CHECK_STR(opts.output_dir, "./profiles");
	CHECK(opts.output_max_bytes == 1ULL << 30);
	CHECK(opts.max_stacks == 16384);
	CHECK(opts.max_sample_keys == 16384);
	CHECK(opts.max_processes == 8192);
	CHECK(opts.unwind_fp == 0);
	CHECK(opts.max_unwind_memory == 64ULL << 20);
	CHECK(!opts.off_cpu && !opts.no_cpu);
	CHECK(opts.off_cpu_min_block_us == 1000);
	CHECK(opts.off_cpu_states == 0x7);
	CHECK(opts.off_cpu_hooks == OFF_CPU_HOOKS_AUTO);
	CHECK(opts.debuginfod_urls == NULL);
	/* One budget for the caches; DWARF takes its share of it unless told otherwise. */
	CHECK(opts.max_memory == 24ULL << 20);
	CHECK(opts.max_dwarf_memory == 0);
	CHECK(!opts.verbose);
	CHECK(opts.remote_store == NULL);
	CHECK(opts.remote_protocol == NULL);
	CHECK(opts.service_name == NULL);
	CHECK(opts.bearer_token_file == NULL && opts.basic_auth_file == NULL);
	CHECK(opts.header_count == 0);
	CHECK(opts.tls_ca == NULL && opts.tls_cert == NULL && opts.tls_key == NULL);
	CHECK(!opts.tls_insecure_skip_verify);
	CHECK(opts.remote_connect_timeout_s == 5);
	CHECK(opts.remote_timeout_s == 30);
	CHECK(opts.remote_drain_timeout_s == 10);
	/* No spool without a backend. */
	CHECK(opts.spool_dir == NULL);
	CHECK(opts.spool_max_bytes == 256ULL << 20);
	CHECK_STR(opts.http_address, "127.0.0.1:7071");
}

/* --name=value, --name value, -Xvalue and -X value are one thing; the last one wins. */
static void test_spellings(void)
{
	struct kiln_options opts;

	CHECK(parse(&opts, "--frequency=99", NULL) == OPTIONS_RUN && opts.frequency_hz == 99);
	CHECK(parse(&opts, "--frequency", "98", NULL) == OPTIONS_RUN && opts.frequency_hz == 98);
	CHECK(parse(&opts, "-F97", NULL) == OPTIONS_RUN && opts.frequency_hz == 97);
	CHECK(parse(&opts, "-F", "96", NULL) == OPTIONS_RUN && opts.frequency_hz == 96);
	CHECK(parse(&opts, "-F", "5", "-F", "7", NULL) == OPTIONS_RUN && opts.frequency_hz == 7);
	CHECK(parse(&opts, "-d", "3", "-n", "4", "-v", "-o", "dir", NULL) == OPTIONS_RUN);
	CHECK(opts.duration_s == 3 && opts.iterations == 4 && opts.verbose);
	CHECK_STR(opts.output_dir, "dir");
}

static void test_bad_words(void)
{
	CHECK_USAGE("--frequenc=5"); /* no abbreviations */
	CHECK(usage_error_said("unknown option '--frequenc=5'"));
	CHECK_USAGE("--frequencyy=5");
	CHECK_USAGE("--bogus");
	CHECK_USAGE("-X");
	CHECK_USAGE("profiles");
	CHECK(usage_error_said("unexpected argument 'profiles'"));
	CHECK_USAGE("-");
	CHECK_USAGE("--duration");
	CHECK(usage_error_said("--duration needs a value (SECONDS)"));
	CHECK_USAGE("-F");
	CHECK_USAGE("--output-dir", "");
	CHECK(usage_error_said("--output-dir: empty value"));
	CHECK_USAGE("--output-dir=");
	/* Help stops parsing; a bad word before it does not. */
	CHECK_USAGE("--bogus", "--help");
}

struct uint_option {
	const char *flag;
	size_t offset;
	uint64_t min, max;
	bool remote; /* needs --remote-store beside it */
};

static const struct uint_option uint_options[] = {
	{ "--frequency", FIELD(frequency_hz), 1, 10000 },
	{ "--duration", FIELD(duration_s), 1, 86400 },
	{ "--iterations", FIELD(iterations), 0, UINT32_MAX },
	{ "--max-stacks", FIELD(max_stacks), 64, 1 << 22 },
	{ "--max-sample-keys", FIELD(max_sample_keys), 64, 1 << 22 },
	{ "--max-processes", FIELD(max_processes), 16, 1 << 22 },
	{ "--off-cpu-min-block", FIELD(off_cpu_min_block_us), 0, 10000000 },
	{ "--remote-connect-timeout", FIELD(remote_connect_timeout_s), 1, 600 },
	{ "--remote-timeout", FIELD(remote_timeout_s), 1, 3600 },
	{ "--remote-drain-timeout", FIELD(remote_drain_timeout_s), 0, 3600 },
};

static enum options_result parse_value(const char *flag, uint64_t value, struct kiln_options *opts)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRIu64, value);
	return parse(opts, flag, text, NULL);
}

/* Each number is accepted at both ends of its range and refused one past either. */
static void test_uint_ranges(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(uint_options); i++) {
		const struct uint_option *option = &uint_options[i];
		struct kiln_options opts;
		enum options_result result;

		result = parse_value(option->flag, option->min, &opts);
		CHECK(result == OPTIONS_RUN && field_u64(&opts, option->offset) == option->min);
		result = parse_value(option->flag, option->max, &opts);
		CHECK(result == OPTIONS_RUN && field_u64(&opts, option->offset) == option->max);
		if (result != OPTIONS_RUN)
			fprintf(stderr, "  %s %" PRIu64 ": %s", option->flag, option->max,
				err_text);
		CHECK(parse_value(option->flag, option->max + 1, &opts) == OPTIONS_EXIT_USAGE);
		CHECK(strstr(err_text, "is out of range") != NULL);
		if (option->min > 0) {
			CHECK(parse_value(option->flag, option->min - 1, &opts) ==
			      OPTIONS_EXIT_USAGE);
			CHECK(strstr(err_text, "is out of range") != NULL);
		}
	}
	CHECK_USAGE("--frequency", "0");
	CHECK(usage_error_said("--frequency: 0 is out of range (1 to 10000)"));
}

/* Strict numbers: digits only. */
static void test_uint_syntax(void)
{
	static const char *const bad[] = {
		"", "+5", "-5", "5x", " 5", "5 ", "0x10", "1e3", "18446744073709551616", "ten"
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kiln_options opts;

		CHECK(parse(&opts, "--duration", bad[i], NULL) == OPTIONS_EXIT_USAGE);
		CHECK(strstr(err_text, "is not a non-negative whole number") != NULL);
	}
	CHECK_RUNS("--duration", "007");
}

struct size_case {
	const char *flag;
	size_t offset;
	const char *text;
	uint64_t bytes; /* 0: refused */
};

static void test_sizes(void)
{
	static const struct size_case cases[] = {
		/* K, M and G are binary, either case; a bare number is megabytes. */
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "64K", 64 << 10 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "64k", 64 << 10 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "100", 100 << 20 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "100M", 100 << 20 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "100m", 100 << 20 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "4G", 4ULL << 30 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "4096M", 4ULL << 30 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "1g", 1ULL << 30 },
		/* Out of range: 64K to 4G. */
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "63K", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "5G", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "4097M", 0 },
		/* Not sizes. */
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "100MB", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "1T", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "K", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "-1M", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "1.5G", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "", 0 },
		{ "--max-unwind-memory", FIELD(max_unwind_memory), "99999999999999999999G", 0 },
		/* 2^34 G is 2^64 bytes: refused, not wrapped to 0. */
		{ "--output-max-bytes", FIELD(output_max_bytes), "17179869184G", 0 },
		{ "--output-max-bytes", FIELD(output_max_bytes), "1048576G", 1ULL << 50 },
		{ "--output-max-bytes", FIELD(output_max_bytes), "1048577G", 0 },
		{ "--spool-max-bytes", FIELD(spool_max_bytes), "64K", 64 << 10 },
		{ "--spool-max-bytes", FIELD(spool_max_bytes), "1024G", 1ULL << 40 },
		{ "--spool-max-bytes", FIELD(spool_max_bytes), "1025G", 0 },
		{ "--spool-max-bytes", FIELD(spool_max_bytes), "63K", 0 },
		{ "--max-dwarf-memory", FIELD(max_dwarf_memory), "1M", 1 << 20 },
		{ "--max-dwarf-memory", FIELD(max_dwarf_memory), "1023K", 0 },
		{ "--max-dwarf-memory", FIELD(max_dwarf_memory), "2G", 2ULL << 30 },
		/* 4M to 1T: under 4 MiB no cache could hold a large binary's symbols. */
		{ "--max-memory", FIELD(max_memory), "4M", 4 << 20 },
		{ "--max-memory", FIELD(max_memory), "40", 40 << 20 },
		{ "--max-memory", FIELD(max_memory), "1024G", 1ULL << 40 },
		{ "--max-memory", FIELD(max_memory), "4095K", 0 },
		{ "--max-memory", FIELD(max_memory), "1025G", 0 },
		{ "--max-memory", FIELD(max_memory), "0", 0 },
		{ "--max-memory", FIELD(max_memory), "lots", 0 },
	};
	struct kiln_options opts;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum options_result result = parse(&opts, cases[i].flag, cases[i].text, NULL);

		if (cases[i].bytes) {
			CHECK(result == OPTIONS_RUN);
			CHECK(field_u64(&opts, cases[i].offset) == cases[i].bytes);
		} else {
			CHECK(result == OPTIONS_EXIT_USAGE);
		}
		if ((result == OPTIONS_RUN) != (cases[i].bytes != 0))
			fprintf(stderr, "  %s %s\n", cases[i].flag, cases[i].text);
	}
	/* 0 means no bound for the output directory. */
	CHECK(parse(&opts, "--output-max-bytes", "0", NULL) == OPTIONS_RUN);
	CHECK(opts.output_max_bytes == 0);
	/* The range is said as the user writes sizes. */
	CHECK_USAGE("--max-unwind-memory", "5G");
	CHECK(usage_error_said("--max-unwind-memory: 5G is out of range (64K to 4G)"));
	CHECK_USAGE("--max-unwind-memory", "1T");
	CHECK(usage_error_said("is not a size"));
	CHECK_USAGE("--max-memory", "1M");
	CHECK(usage_error_said("--max-memory: 1M is out of range (4M to 1T)"));
}

/* argv (argv[0] "kiln") with "flag value" appended times after its first argc words. */
static int append_repeated(char **argv, int argc, char *flag, char *value, int times)
{
	argv[0] = "kiln";
	for (int i = 0; i < times && argc + 2 <= MAX_ARGS; i++) {
		argv[argc++] = flag;
		argv[argc++] = value;
	}
	return argc;
}

/*
 * A repeatable flag taken limit times (opts: that parse) and refused once
 * more, with message.
 */
static bool limit_holds(char **argv, int argc, char *flag, char *value, int limit,
			const char *message, struct kiln_options *opts)
{
	struct kiln_options over;
	bool held;

	argc = append_repeated(argv, argc, flag, value, limit);
	held = parse_argv(argc, argv, opts) == OPTIONS_RUN && !err_text[0];
	argc = append_repeated(argv, argc, flag, value, 1);
	return held && parse_argv(argc, argv, &over) == OPTIONS_EXIT_USAGE &&
	       usage_error_said(message);
}

/* A pid that no process has (kill finds none). */
static pid_t free_pid(void)
{
	for (pid_t pid = 4194304; pid > 1; pid--)
		if (kill(pid, 0) && errno == ESRCH)
			return pid;
	return -1;
}

static void test_pids(void)
{
	static char *argv[MAX_ARGS];
	char own[16], parent[16], missing[16];
	struct kiln_options opts;

	snprintf(own, sizeof(own), "%d", getpid());
	snprintf(parent, sizeof(parent), "%d", getppid());
	snprintf(missing, sizeof(missing), "%d", free_pid());
	CHECK(parse(&opts, "--pid", own, "-p", parent, NULL) == OPTIONS_RUN);
	CHECK(opts.pid_count == 2);
	CHECK(opts.pids[0] == (uint32_t)getpid() && opts.pids[1] == (uint32_t)getppid());
	CHECK_USAGE("--pid", missing);
	CHECK(usage_error_said("--pid: no process with pid"));
	CHECK_USAGE("--pid", "0");
	CHECK_USAGE("--pid", "4194305");
	CHECK_USAGE("--pid", "self");

	/* At most MAX_PID_FILTERS, the same one repeated included. */
	CHECK(limit_holds(argv, 1, "--pid", own, MAX_PID_FILTERS, "--pid: at most 1024 processes",
			  &opts));
	CHECK(opts.pid_count == MAX_PID_FILTERS);
}

static void test_headers(void)
{
	static char *argv[MAX_ARGS];
	struct kiln_options opts;
	char *header = "X-Scope-OrgID: team";
	int argc;

	CHECK(parse(&opts, "--remote-store", "http://127.0.0.1:1", "--header", header, "--header",
		    "A!#$%&'*+-.^_`|~z:", NULL) == OPTIONS_RUN);
	CHECK(opts.header_count == 2);
	/* Kept as given, not copied. */
	CHECK(opts.headers[0] == header);
	CHECK_STR(opts.headers[1], "A!#$%&'*+-.^_`|~z:");

	CHECK_USAGE("--remote-store", "http://x", "--header", "NoColon");
	CHECK(usage_error_said("is not 'Name: value'"));
	CHECK_USAGE("--remote-store", "http://x", "--header", ": value");
	CHECK_USAGE("--remote-store", "http://x", "--header", "Bad Name: value");
	CHECK(usage_error_said("the name has a character headers may not have"));
	CHECK_USAGE("--remote-store", "http://x", "--header", "Bad(Name): value");
	CHECK_USAGE("--remote-store", "http://x", "--header", "X-A: one\r\nX-B: two");
	CHECK(usage_error_said("a line break"));
	CHECK_USAGE("--remote-store", "http://x", "--header", "X-A: one\ntwo");

	argc = append_repeated(argv, 1, "--remote-store", "http://x", 1);
	CHECK(limit_holds(argv, argc, "--header", header, MAX_REMOTE_HEADERS,
			  "--header: at most 32 headers", &opts));
	CHECK(opts.header_count == MAX_REMOTE_HEADERS);
}

/* Every push setting is an error without --remote-store, not silently ignored. */
static void test_remote_only(void)
{
	static const char *const flags[][2] = {
		{ "--remote-protocol", "parca" },
		{ "--service-name", "app" },
		{ "--bearer-token-file", "/dev/null" },
		{ "--basic-auth-file", "/dev/null" },
		{ "--header", "X-A: b" },
		{ "--tls-ca", "/dev/null" },
		{ "--tls-cert", "/dev/null" },
		{ "--tls-key", "/dev/null" },
		{ "--spool-dir", "/tmp" },
	};
	struct kiln_options opts;

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		char expected[64];

		CHECK(parse(&opts, flags[i][0], flags[i][1], NULL) == OPTIONS_EXIT_USAGE);
		snprintf(expected, sizeof(expected), "%s: only with --remote-store", flags[i][0]);
		CHECK(usage_error_said(expected));
	}
	CHECK_USAGE("--tls-insecure-skip-verify");
	CHECK(usage_error_said("--tls-insecure-skip-verify: only with --remote-store"));
	/* Timeouts and the spool bound have defaults either way. */
	CHECK_RUNS("--remote-timeout", "9", "--spool-max-bytes", "1G");
}

static void test_remote_store(void)
{
	struct kiln_options opts;

	CHECK(parse(&opts, "--remote-store", "http://pyroscope:4040", NULL) == OPTIONS_RUN);
	CHECK_STR(opts.remote_store, "http://pyroscope:4040");
	/* Pushing writes no files unless asked to; the spool gets its default. */
	CHECK(opts.output_dir == NULL);
	CHECK_STR(opts.spool_dir, "/var/lib/kiln/spool");
	CHECK(opts.remote_protocol == NULL);
	CHECK(parse(&opts, "--remote-store", "https://parca", "--remote-protocol", "parca",
		    "--spool-dir", "/tmp/spool", "-o", "out", "--tls-insecure-skip-verify",
		    NULL) == OPTIONS_RUN);
	CHECK_STR(opts.remote_protocol, "parca");
	CHECK_STR(opts.spool_dir, "/tmp/spool");
	CHECK_STR(opts.output_dir, "out");
	CHECK(opts.tls_insecure_skip_verify);

	CHECK_USAGE("--remote-store", "http://");
	CHECK(usage_error_said("is not an http:// or https:// URL"));
	CHECK_USAGE("--remote-store", "https://");
	CHECK_USAGE("--remote-store", "ftp://host");
	CHECK_USAGE("--remote-store", "pyroscope:4040");
	CHECK_USAGE("--remote-store", "http://x", "--remote-protocol", "zipkin");
	CHECK(usage_error_said("unknown value 'zipkin' (pyroscope, parca, otlp)"));
}

/* With --remote-store, --output-max-bytes bounds files only --output-dir writes. */
static void test_output_max_bytes_when_pushing(void)
{
	CHECK_USAGE("--remote-store", "http://x", "--output-max-bytes", "1G");
	CHECK(usage_error_said("--output-max-bytes: with --remote-store, only with --output-dir"));
	CHECK_RUNS("--remote-store", "http://x", "--output-max-bytes", "1G", "--output-dir", "d");
	CHECK_RUNS("--output-max-bytes", "1G");
}

static void test_service_name(void)
{
	static const char *const bad[] = {
		"my app", "a:b", "a,b", "name{x}", "caf\xc3\xa9", "a=b"
	};
	struct kiln_options opts;

	CHECK(parse(&opts, "--remote-store", "http://x", "--service-name", "Team_1.api-v2/web",
		    NULL) == OPTIONS_RUN);
	CHECK_STR(opts.service_name, "Team_1.api-v2/web");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(parse(&opts, "--remote-store", "http://x", "--service-name", bad[i], NULL) ==
		      OPTIONS_EXIT_USAGE);
		CHECK(usage_error_said("may hold only letters, digits and _ . - /"));
	}
}

static void test_credentials_and_tls(void)
{
	char readable[] = "/tmp/kiln-test-options-XXXXXX";
	int fd = mkstemp(readable);
	struct kiln_options opts;

	CHECK(fd >= 0);
	close(fd);
	CHECK(parse(&opts, "--remote-store", "http://x", "--bearer-token-file", readable,
		    "--tls-ca", readable, "--tls-cert", readable, "--tls-key", readable,
		    NULL) == OPTIONS_RUN);
	CHECK_STR(opts.bearer_token_file, readable);
	CHECK_STR(opts.tls_cert, readable);
	CHECK_RUNS("--remote-store", "http://x", "--basic-auth-file", readable);

	CHECK_USAGE("--remote-store", "http://x", "--bearer-token-file", readable,
		    "--basic-auth-file", readable);
	CHECK(usage_error_said("--bearer-token-file and --basic-auth-file: choose one"));
	CHECK_USAGE("--remote-store", "http://x", "--tls-cert", readable);
	CHECK(usage_error_said("--tls-cert: needs --tls-key too"));
	CHECK_USAGE("--remote-store", "http://x", "--tls-key", readable);
	CHECK(usage_error_said("--tls-key: needs --tls-cert too"));
	/* Files are checked up front, not at the first upload. */
	CHECK_USAGE("--remote-store", "http://x", "--bearer-token-file", "/nonexistent/token");
	CHECK(usage_error_said("--bearer-token-file: cannot read /nonexistent/token"));
	CHECK_USAGE("--remote-store", "http://x", "--tls-ca", "/nonexistent/ca.pem");
	unlink(readable);
}

static void test_flags(void)
{
	struct kiln_options opts;

	CHECK(parse(&opts, "--off-cpu", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu && !opts.no_cpu);
	CHECK(parse(&opts, "--off-cpu", "--no-cpu", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu && opts.no_cpu);
	CHECK(parse(&opts, "--no-cpu", "--off-cpu", NULL) == OPTIONS_RUN);
	CHECK_USAGE("--no-cpu");
	CHECK(usage_error_said("--no-cpu: nothing left to profile without --off-cpu"));
	CHECK_USAGE("--off-cpu=yes");
	CHECK(usage_error_said("--off-cpu takes no value"));
	CHECK_USAGE("--verbose=1");
}

static void test_choices(void)
{
	static const char *const hooks[] = { "auto", "task-work", "sys-exit", "raw-tp" };
	struct kiln_options opts;

	CHECK(parse(&opts, "--unwind", "fp", NULL) == OPTIONS_RUN && opts.unwind_fp == 1);
	CHECK(parse(&opts, "--unwind=dwarf", NULL) == OPTIONS_RUN && opts.unwind_fp == 0);
	CHECK_USAGE("--unwind", "FP");
	CHECK(usage_error_said("--unwind: unknown value 'FP' (dwarf, fp)"));
	CHECK_USAGE("--unwind", "");
	for (uint32_t i = 0; i < ARRAY_SIZE(hooks); i++) {
		CHECK(parse(&opts, "--off-cpu-hooks", hooks[i], NULL) == OPTIONS_RUN);
		CHECK(opts.off_cpu_hooks == i);
	}
	CHECK(parse(&opts, "--off-cpu-hooks", "raw-tp", NULL) == OPTIONS_RUN &&
	      opts.off_cpu_hooks == OFF_CPU_HOOKS_RAW_TP);
	CHECK_USAGE("--off-cpu-hooks", "kprobe");
	CHECK(usage_error_said("(auto, task-work, sys-exit, raw-tp)"));
}

static void test_states(void)
{
	struct kiln_options opts;
	char long_list[200];

	CHECK(parse(&opts, "--off-cpu-states", "sleeping", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu_states == 1);
	CHECK(parse(&opts, "--off-cpu-states", "uninterruptible", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu_states == 2);
	CHECK(parse(&opts, "--off-cpu-states", "preempted", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu_states == 4);
	CHECK(parse(&opts, "--off-cpu-states", "preempted,sleeping,sleeping", NULL) == OPTIONS_RUN);
	CHECK(opts.off_cpu_states == 5);
	CHECK(parse(&opts, "--off-cpu-states=sleeping,uninterruptible,preempted", NULL) ==
	      OPTIONS_RUN);
	CHECK(opts.off_cpu_states == 7);
	CHECK_USAGE("--off-cpu-states", "running");
	CHECK(usage_error_said("unknown state 'running' (sleeping, uninterruptible, preempted)"));
	CHECK_USAGE("--off-cpu-states", "sleeping,Preempted");
	CHECK_USAGE("--off-cpu-states", "");
	CHECK(usage_error_said("--off-cpu-states: no state given"));
	CHECK_USAGE("--off-cpu-states", ",,");
	memset(long_list, 'a', sizeof(long_list) - 1);
	long_list[sizeof(long_list) - 1] = '\0';
	CHECK_USAGE("--off-cpu-states", long_list);
	CHECK(usage_error_said("--off-cpu-states: too long"));
}

static void test_debuginfod_urls(void)
{
	static char long_list[5000];
	struct kiln_options opts;

	CHECK(parse(&opts, "--debuginfod-urls", "http://a https://b:8002  file:///srv", NULL) ==
	      OPTIONS_RUN);
	CHECK_STR(opts.debuginfod_urls, "http://a https://b:8002  file:///srv");
	/* "" turns debuginfod off, unlike leaving the flag out (NULL: $DEBUGINFOD_URLS). */
	CHECK(parse(&opts, "--debuginfod-urls", "", NULL) == OPTIONS_RUN);
	CHECK_STR(opts.debuginfod_urls, "");
	CHECK_USAGE("--debuginfod-urls", "ftp://a");
	CHECK(usage_error_said("'ftp://a' is not an http://, https:// or file:// URL"));
	CHECK_USAGE("--debuginfod-urls", "http://a debuginfod.example.org");
	memset(long_list, 'a', sizeof(long_list) - 1);
	memcpy(long_list, "http://", 7);
	CHECK_USAGE("--debuginfod-urls", long_list);
	CHECK(usage_error_said("--debuginfod-urls: too long"));
}

static void test_help_and_version(void)
{
	struct kiln_options opts;

	CHECK(parse(&opts, "--help", NULL) == OPTIONS_EXIT_OK);
	CHECK(strstr(out_text, "Usage: kiln [OPTION]...") != NULL);
	/* Every flag is listed. */
	CHECK(strstr(out_text, "-F, --frequency HZ") != NULL);
	CHECK(strstr(out_text, "--off-cpu-states LIST") != NULL);
	CHECK(strstr(out_text, "--header 'NAME: VALUE'") != NULL);
	CHECK(strstr(out_text, "-V, --version") != NULL);
	CHECK(err_text[0] == '\0');
	/* Help comes first: later words are not even parsed. */
	CHECK(parse(&opts, "-h", "--bogus", NULL) == OPTIONS_EXIT_OK);
	CHECK(strstr(out_text, "Usage:") != NULL);
	CHECK(parse(&opts, "--version", NULL) == OPTIONS_EXIT_OK);
	CHECK_STR(out_text, "kiln " KILN_VERSION "\n");
	CHECK(parse(&opts, "-V", NULL) == OPTIONS_EXIT_OK);
	CHECK_STR(out_text, "kiln " KILN_VERSION "\n");
}

/* A config file in a fresh directory: its path (static, one at a time). */
static const char *config_file(const char *text)
{
	static char dir[] = "/tmp/kiln-config-XXXXXX", path[64];
	static bool made;
	FILE *file;

	if (!made && !mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	made = true;
	snprintf(path, sizeof(path), "%s/kiln.yaml", dir);
	file = fopen(path, "w");
	if (!file) {
		perror(path);
		exit(1);
	}
	fputs(text, file);
	fclose(file);
	return path;
}

/* Settings by their long names; the command line wins, a repeatable flag as a whole. */
static void test_config_settings(void)
{
	const char *path = config_file("# kiln's settings\n"
				       "frequency: 99\n"
				       "off-cpu: true\n"
				       "verbose: false\n"
				       "max-memory: 32M\n"
				       "off-cpu-states: sleeping,preempted\n"
				       "header: ['X-A: 1', 'X-B: 2']\n"
				       "remote-store: http://127.0.0.1:4040\n"
				       "relabel_configs:\n"
				       "  - source_labels: [__meta_systemd_unit]\n"
				       "    regex: (.*)\\.service\n"
				       "    target_label: service_name\n"
				       "  - action: drop\n"
				       "    source_labels: [__meta_comm]\n"
				       "    regex: sshd\n");
	struct kiln_options opts;

	CHECK(parse(&opts, "--config", path, NULL) == OPTIONS_RUN);
	CHECK(err_text[0] == '\0');
	CHECK(opts.frequency_hz == 99 && opts.off_cpu && !opts.verbose);
	CHECK(opts.max_memory == 32ULL << 20);
	CHECK(opts.off_cpu_states == 0x5);
	CHECK(opts.header_count == 2);
	CHECK_STR(opts.remote_store, "http://127.0.0.1:4040");
	CHECK(opts.config && relabel_rules__count(opts.config->rules) == 2);
	options_free(&opts);
	CHECK(opts.config == NULL);

	CHECK(parse(&opts, "-F", "49", "--header", "X-C: 3", "-c", path, NULL) == OPTIONS_RUN);
	CHECK(opts.frequency_hz == 49 && opts.off_cpu);
	CHECK(opts.header_count == 1 && !strcmp(opts.headers[0], "X-C: 3"));
	options_free(&opts);

	/* What the file sets counts as given: a push-only setting needs remote-store. */
	path = config_file("service-name: web\n");
	CHECK(parse(&opts, "--config", path, NULL) == OPTIONS_EXIT_USAGE);
	CHECK(usage_error_said("--service-name: only with --remote-store"));
	options_free(&opts);
	/* An empty file is no settings. */
	path = config_file("");
	CHECK(parse(&opts, "--config", path, NULL) == OPTIONS_RUN && opts.frequency_hz == 19);
	options_free(&opts);
}

/* --http-address: numeric HOST:PORT or [IPv6]:PORT, "" for no endpoint; the socket address too. */
static void test_http_address(void)
{
	static const char *const good[] = { "127.0.0.1:7071", "0.0.0.0:1", "10.1.2.3:65535",
					    "[::1]:7071",     "[::]:9000", "[2001:db8::2]:8080" };
	static const char *const bad[] = {
		"127.0.0.1",	   "127.0.0.1:",      ":7071",	      "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:70000", "127.0.0.1:-1", "127.0.0.1:+80",
		"127.0.0.1:80x",   "localhost:7071",  "1:7071",	      "256.0.0.1:7071",
		"::1:7071",	   "[::1]7071",	      "[::1]:",	      "[127.0.0.1]:80",
		"[::1:7071",	   "127.0.0.1:7071 ", "[]:80",	      "127.0.0.1:000080",
	};
	struct http_address address;
	struct kiln_options opts;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		CHECK(parse(&opts, "--http-address", good[i], NULL) == OPTIONS_RUN);
		CHECK_STR(opts.http_address, good[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(parse(&opts, "--http-address", bad[i], NULL) == OPTIONS_EXIT_USAGE);
		if (!usage_error_said("is not HOST:PORT"))
			fprintf(stderr, "'%s' said: %s", bad[i], err_text);
		CHECK(usage_error_said("is not HOST:PORT"));
	}
	/* Scope ids: inet_pton takes none, so neither does kiln. */
	CHECK_USAGE("--http-address=[fe80::1%1]:80");
	/* "" turns the endpoint off; the config file says it by the same name. */
	CHECK(parse(&opts, "--http-address=", NULL) == OPTIONS_RUN);
	CHECK_STR(opts.http_address, "");
	CHECK(parse(&opts, "--config", config_file("http-address: \"\"\n"), NULL) == OPTIONS_RUN);
	CHECK_STR(opts.http_address, "");
	options_free(&opts);
	CHECK(parse(&opts, "--config", config_file("http-address: '[::1]:9'\n"), NULL) ==
	      OPTIONS_RUN);
	CHECK_STR(opts.http_address, "[::1]:9");
	options_free(&opts);
	CHECK(parse(&opts, "--config", config_file("http-address: 1.2.3.4\n"), NULL) ==
	      OPTIONS_EXIT_USAGE);
	CHECK(strstr(err_text, "kiln.yaml:1: --http-address: '1.2.3.4' is not HOST:PORT"));
	options_free(&opts);

	/* What the agent binds. */
	CHECK(http_address_parse("127.0.0.1:7071", &address) == 0);
	CHECK(address.storage.ss_family == AF_INET && address.length == sizeof(struct sockaddr_in));
	CHECK(((struct sockaddr_in *)&address.storage)->sin_port == htons(7071));
	CHECK(((struct sockaddr_in *)&address.storage)->sin_addr.s_addr == htonl(0x7f000001));
	CHECK(http_address_parse("[::1]:9", &address) == 0);
	CHECK(address.storage.ss_family == AF_INET6 &&
	      address.length == sizeof(struct sockaddr_in6));
	CHECK(((struct sockaddr_in6 *)&address.storage)->sin6_port == htons(9));
	CHECK(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&address.storage)->sin6_addr));
	address.length = 123;
	CHECK(http_address_parse("[::1]:0", &address) == -EINVAL && address.length == 123);
}

/* Every bad file exits 2 naming the file, the line and the field. */
static void test_config_errors(void)
{
	static const struct {
		const char *text;
		const char *said;
	} bad[] = {
		{ "frequency: 99\nfrequncy: 10\n", "kiln.yaml:2: unknown setting 'frequncy'" },
		{ "duration: 5\nfrequency: fast\n",
		  "kiln.yaml:2: --frequency: 'fast' is not a non-negative whole number" },
		{ "off-cpu: yes please\n", "kiln.yaml:1: off-cpu: true or false" },
		{ "help: true\n", "unknown setting 'help'" },
		{ "config: other.yaml\n", "unknown setting 'config'" },
		{ "frequency: [1\n", "kiln.yaml:2: " },
		{ "- frequency\n", "kiln.yaml:1: a mapping of settings" },
		{ "unwind:\n  mode: fp\n", "kiln.yaml:2: unwind: a value or a list of values" },
		{ "relabel_configs:\n  - target_label: x\n    regex: '('\n",
		  "kiln.yaml:3: relabel_configs[0].regex: '(' is not a valid regex" },
		{ "relabel_configs:\n  - action: keep\n    regex: a\n  - action: hashmod\n"
		  "    source_labels: [a]\n    target_label: h\n",
		  "kiln.yaml:4: relabel_configs[1].modulus: the hashmod action requires" },
		{ "relabel_configs:\n  - action: replace\n    target: x\n",
		  "kiln.yaml:3: relabel_configs[0]: unknown field 'target'" },
		{ "relabel_configs:\n  - source_labels: [a]\n    target_label: x\n"
		  "    modulus: -1\n",
		  "kiln.yaml:4: relabel_configs[0].modulus: '-1' is not a whole number" },
		{ "relabel_configs: drop\n", "kiln.yaml:1: relabel_configs: a list of rules" },
		/* An alias repeats a list: bounded however often it is repeated. */
		{ "a: &x [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n"
		  "b: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\n"
		  "pid: [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\n",
		  "a value or a list of values" },
	};
	struct kiln_options opts;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *path = config_file(bad[i].text);

		CHECK(parse(&opts, "--config", path, NULL) == OPTIONS_EXIT_USAGE);
		if (!strstr(err_text, bad[i].said))
			fprintf(stderr, "config %zu said: %s", i, err_text);
		CHECK(strstr(err_text, bad[i].said) != NULL);
		options_free(&opts);
	}
	CHECK(parse(&opts, "--config", "/nonexistent/kiln.yaml", NULL) == OPTIONS_EXIT_USAGE);
	CHECK(strstr(err_text, "/nonexistent/kiln.yaml: No such file or directory") != NULL);
	CHECK(parse(&opts, "--config", "/tmp", NULL) == OPTIONS_EXIT_USAGE);
	CHECK(strstr(err_text, "/tmp: not a regular file") != NULL);
	CHECK(parse(&opts, "--config", "a.yaml", "--config", "b.yaml", NULL) == OPTIONS_EXIT_USAGE);
	CHECK(usage_error_said("--config: one file only"));
}

/* A list past the bound on settings is refused, not grown without end. */
static void test_config_bounds(void)
{
	static char text[64 * 1024];
	struct kiln_options opts;
	size_t n = snprintf(text, sizeof(text), "pid: [");

	for (int i = 0; i < CONFIG_MAX_SETTINGS + 1; i++)
		n += snprintf(text + n, sizeof(text) - n, "%s1", i ? "," : "");
	snprintf(text + n, sizeof(text) - n, "]\n");
	CHECK(parse(&opts, "--config", config_file(text), NULL) == OPTIONS_EXIT_USAGE);
	CHECK(strstr(err_text, "kiln.yaml:1: more than 4096 settings") != NULL);
	options_free(&opts);
}

TEST_MAIN("options", TEST(test_defaults), TEST(test_spellings), TEST(test_bad_words),
	  TEST(test_uint_ranges), TEST(test_uint_syntax), TEST(test_sizes), TEST(test_pids),
	  TEST(test_headers), TEST(test_remote_only), TEST(test_remote_store),
	  TEST(test_output_max_bytes_when_pushing), TEST(test_service_name),
	  TEST(test_credentials_and_tls), TEST(test_flags), TEST(test_choices), TEST(test_states),
	  TEST(test_debuginfod_urls), TEST(test_http_address), TEST(test_help_and_version),
	  TEST(test_config_settings), TEST(test_config_errors), TEST(test_config_bounds))
