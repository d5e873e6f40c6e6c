// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Probes for what a kernel's BTF cannot tell: whether the verifier lets a
 * program of a given type use a kfunc that is there. BPF task works are the
 * case: kernels that have bpf_task_work_schedule_resume_impl may still
 * refuse it outside sleepable programs ("sleepable callback in a program
 * that is not sleepable"), which is every program kiln would call it from.
 * The VMA iterator in a sleepable uprobe is probed the same way. The agent
 * loads one program at a time and attaches none (agent/sampling/features.c);
 * nothing here ever runs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct probe_work {
	struct bpf_task_work work;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_work);
} probe_works SEC(".maps");

extern int bpf_task_work_schedule_resume_impl(struct task_struct *task, struct bpf_task_work *tw,
					      void *map__map, bpf_task_work_callback_t callback,
					      void *aux__prog) __ksym __weak;
extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
				 __u64 addr) __ksym __weak;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym __weak;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym __weak;

/* What the CPU side's fill does in its work: walk the task's VMAs. */
static int walk_vmas(struct bpf_map *map, void *key, void *value)
{
	struct bpf_iter_task_vma vmas;

	bpf_iter_task_vma_new(&vmas, bpf_get_current_task_btf(), 0);
	bpf_iter_task_vma_next(&vmas);
	bpf_iter_task_vma_destroy(&vmas);
	return 0;
}

static int do_nothing(struct bpf_map *map, void *key, void *value)
{
	return 0;
}

static __always_inline int schedule(bpf_task_work_callback_t callback)
{
	struct probe_work *work;
	__u32 key = 0;

	work = bpf_map_lookup_elem(&probe_works, &key);
	if (!work)
		return 0;
	bpf_task_work_schedule_resume_impl(bpf_get_current_task_btf(), &work->work, &probe_works,
					   callback, NULL);
	return 0;
}

/* The CPU side's in-kernel fill (bpf/cpu.bpf.c). */
SEC("perf_event")
int task_work_in_perf_event(void *ctx)
{
	return schedule(walk_vmas);
}

/* The CPU side's fill at the dynamic loader's hook (bpf/cpu.bpf.c). */
SEC("uprobe.s")
int vmas_in_sleepable_uprobe(void *ctx)
{
	return walk_vmas(NULL, NULL, NULL);
}

/* The off-CPU side's user stacks (bpf/offcpu.bpf.c). */
SEC("tp_btf/sched_switch")
int task_work_in_tracepoint(__u64 *ctx)
{
	return schedule(do_nothing);
}
