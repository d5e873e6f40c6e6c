/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel features a BTF lookup cannot confirm, probed by loading a tiny
 * program (bpf/features.bpf.c) that uses them: a kernel may carry a kfunc
 * and still refuse it to the program types kiln calls it from.
 */
#ifndef KILN_FEATURES_H
#define KILN_FEATURES_H

enum kernel_feature {
	/* The CPU side's in-kernel fill: a task work from a perf-event program, VMAs read there. */
	FEATURE_TASK_WORK_IN_PERF_EVENT,
	/* The off-CPU side's user stacks: a task work from tp_btf sched_switch. */
	FEATURE_TASK_WORK_IN_TRACEPOINT,
	/* The CPU side's fill at the dynamic loader: VMAs read in a sleepable uprobe. */
	FEATURE_VMAS_IN_SLEEPABLE_UPROBE,
	FEATURE__COUNT,
};

/*
 * 0 when this kernel lets such a program use the feature, else a negative
 * errno with *ret_reason (static storage) saying why not, in the kernel's
 * words when its verifier refused. Each probed once, then cached.
 */
int features__probe(enum kernel_feature feature, const char **ret_reason);

/* What the feature is for, in a phrase: "task works from perf-event programs". */
const char *features__name(enum kernel_feature feature);

#endif /* KILN_FEATURES_H */
