/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel features a BTF lookup cannot confirm, probed by loading a tiny
 * program (bpf/features.bpf.c) that uses them: a kernel may carry a kfunc
 * and still refuse it to the program types kiln calls it from.
 */
#ifndef KILN_FEATURES_H
#define KILN_FEATURES_H

enum task_work_user {
	TASK_WORK_IN_PERF_EVENT, /* the CPU side's in-kernel fill, with the VMA iterator */
	TASK_WORK_IN_TRACEPOINT, /* the off-CPU side's user stacks, from tp_btf sched_switch */
	TASK_WORK_USERS,
};

/*
 * 0 when this kernel lets such a program schedule a BPF task work, else a
 * negative errno with *ret_reason (static storage) saying why not, in the
 * kernel's words when its verifier refused. Probed once per user, then cached.
 */
int features__task_work(enum task_work_user user, const char **ret_reason);

#endif /* KILN_FEATURES_H */
