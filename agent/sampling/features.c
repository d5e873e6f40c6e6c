// SPDX-License-Identifier: Apache-2.0
/* Probes BPF task works by loading bpf/features.bpf.c's programs, one at a time. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/features.h"
#include "bpf/features.skel.h"
#include "lib/array.h"

#define LOG_SIZE (64 * 1024) /* the probes' logs are ~2 KiB */
#define REASON_SIZE 160

struct probe_result {
	int err;
	char reason[REASON_SIZE];
};

static struct probe_result results[TASK_WORK_USERS];
static pthread_once_t probed = PTHREAD_ONCE_INIT;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

/*
 * The verifier's reason: the line after the last instruction it printed
 * ("27: (85) call ...\nsleepable callback in ..."), else its first line.
 */
static void verifier_reason(const char *log, char *reason, size_t size)
{
	const char *line = log, *found = NULL, *next;

	for (; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		if (isdigit((unsigned char)*line) && strchr(line, ':') &&
		    strchr(line, ':') < next && *next)
			found = next;
	}
	if (!found)
		found = log;
	snprintf(reason, size, "%.*s", (int)strcspn(found, "\n"), found);
}

static bool kernel_has_kfuncs(void)
{
	static const char *const kfuncs[] = { "bpf_task_work_schedule_resume_impl",
					      "bpf_iter_task_vma_new" };
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found = vmlinux != NULL;

	for (size_t i = 0; found && i < ARRAY_SIZE(kfuncs); i++)
		found = btf__find_by_name_kind(vmlinux, kfuncs[i], BTF_KIND_FUNC) >= 0;
	btf__free(vmlinux);
	return found;
}

static void probe(struct probe_result *result, enum task_work_user user, char *log)
{
	struct features_bpf *skel = features_bpf__open();
	struct bpf_program *wanted, *prog;

	if (!skel) {
		result->err = -errno;
		snprintf(result->reason, sizeof(result->reason), "opening the probe: %s",
			 strerror(errno));
		return;
	}
	wanted = user == TASK_WORK_IN_PERF_EVENT ? skel->progs.task_work_in_perf_event
						 : skel->progs.task_work_in_tracepoint;
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, prog == wanted);
	log[0] = '\0';
	bpf_program__set_log_buf(wanted, log, LOG_SIZE);
	bpf_program__set_log_level(wanted, 1);
	result->err = features_bpf__load(skel);
	if (result->err)
		verifier_reason(log, result->reason, sizeof(result->reason));
	features_bpf__destroy(skel);
}

static void probe_all(void)
{
	static char log[LOG_SIZE];
	libbpf_print_fn_t previous;

	if (!kernel_has_kfuncs()) {
		for (int user = 0; user < TASK_WORK_USERS; user++) {
			results[user].err = -EOPNOTSUPP;
			snprintf(results[user].reason, sizeof(results[user].reason),
				 "this kernel has no BPF task works (6.18)");
		}
		return;
	}
	/* A refusal is an answer, not an error: libbpf would print the whole log. */
	previous = libbpf_set_print(quiet);
	for (int user = 0; user < TASK_WORK_USERS; user++)
		probe(&results[user], user, log);
	libbpf_set_print(previous);
}

int features__task_work(enum task_work_user user, const char **ret_reason)
{
	if (user < 0 || user >= TASK_WORK_USERS)
		return -EINVAL;
	pthread_once(&probed, probe_all);
	if (results[user].err && ret_reason)
		*ret_reason = results[user].reason;
	return results[user].err;
}
