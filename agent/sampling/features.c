// SPDX-License-Identifier: Apache-2.0
/* Probes BPF task works by loading bpf/features.bpf.c's programs, one at a time. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/features.h"
#include "agent/sampling/verifier_log.h"
#include "bpf/features.skel.h"
#include "lib/array.h"

#define LOG_SIZE (64 * 1024) /* the probes' logs are ~2 KiB */
#define REASON_SIZE 160

struct probe_result {
	int err;
	char reason[REASON_SIZE];
};

/* Each feature's probe program, and the kfuncs it needs, older kernels lacking them. */
static const struct {
	const char *name;
	const char *program;
	const char *kfuncs[2];
	const char *missing;
} probes[FEATURE__COUNT] = {
	[FEATURE_TASK_WORK_IN_PERF_EVENT] = { "task works from perf-event programs (CPU fill)",
					      "task_work_in_perf_event",
					      { "bpf_task_work_schedule_resume_impl",
						"bpf_iter_task_vma_new" },
					      "this kernel has no BPF task works (6.18)" },
	[FEATURE_TASK_WORK_IN_TRACEPOINT] = { "task works from sched_switch (off-CPU task-work)",
					      "task_work_in_tracepoint",
					      { "bpf_task_work_schedule_resume_impl" },
					      "this kernel has no BPF task works (6.18)" },
	[FEATURE_VMAS_IN_SLEEPABLE_UPROBE] = { "the VMA iterator in sleepable uprobes (loader fill)",
					       "vmas_in_sleepable_uprobe",
					       { "bpf_iter_task_vma_new" },
					       "this kernel has no VMA iterator (6.7)" },
};

static struct probe_result results[FEATURE__COUNT];
static pthread_once_t probed = PTHREAD_ONCE_INIT;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static bool kernel_has_kfuncs(const struct btf *vmlinux, const char *const *kfuncs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (kfuncs[i] && btf__find_by_name_kind(vmlinux, kfuncs[i], BTF_KIND_FUNC) < 0)
			return false;
	return true;
}

static void probe(struct probe_result *result, enum kernel_feature feature,
		  const struct btf *vmlinux, char *log)
{
	struct bpf_program *wanted = NULL, *prog;
	struct features_bpf *skel;

	if (!vmlinux || !kernel_has_kfuncs(vmlinux, probes[feature].kfuncs,
					   ARRAY_SIZE(probes[feature].kfuncs))) {
		result->err = -EOPNOTSUPP;
		snprintf(result->reason, sizeof(result->reason), "%s", probes[feature].missing);
		return;
	}
	skel = features_bpf__open();
	if (!skel) {
		result->err = -errno;
		snprintf(result->reason, sizeof(result->reason), "opening the probe: %s",
			 strerror(errno));
		return;
	}
	bpf_object__for_each_program(prog, skel->obj)
	{
		bool is_wanted = !strcmp(bpf_program__name(prog), probes[feature].program);

		bpf_program__set_autoload(prog, is_wanted);
		if (is_wanted)
			wanted = prog;
	}
	log[0] = '\0';
	if (wanted) {
		bpf_program__set_log_buf(wanted, log, LOG_SIZE);
		bpf_program__set_log_level(wanted, 1);
	}
	result->err = wanted ? features_bpf__load(skel) : -ENOENT;
	if (result->err)
		verifier_log__reason(log, result->reason, sizeof(result->reason));
	features_bpf__destroy(skel);
}

static void probe_all(void)
{
	static char log[LOG_SIZE];
	struct btf *vmlinux = btf__load_vmlinux_btf();
	libbpf_print_fn_t previous;

	/* A refusal is an answer, not an error: libbpf would print the whole log. */
	previous = libbpf_set_print(quiet);
	for (int feature = 0; feature < FEATURE__COUNT; feature++)
		probe(&results[feature], feature, vmlinux, log);
	libbpf_set_print(previous);
	btf__free(vmlinux);
}

int features__probe(enum kernel_feature feature, const char **ret_reason)
{
	if (feature < 0 || feature >= FEATURE__COUNT)
		return -EINVAL;
	pthread_once(&probed, probe_all);
	if (results[feature].err && ret_reason)
		*ret_reason = results[feature].reason;
	return results[feature].err;
}

const char *features__name(enum kernel_feature feature)
{
	return feature >= 0 && feature < FEATURE__COUNT ? probes[feature].name : "unknown";
}
