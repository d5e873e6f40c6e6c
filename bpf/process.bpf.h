/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Exec tracking, in every profiling program; the agent attaches only the
 * copy of the first program loaded, whose shared maps every program uses.
 * Included after bpf/stacks.bpf.h (count_stat, the unwinder's maps).
 */
#ifndef KILN_PROCESS_BPF_H
#define KILN_PROCESS_BPF_H

/*
 * An exec replaces the mappings: the unwinder forgets the old ones, and the
 * next sample announces the process again so the agent reads the new.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = BPF_CORE_READ(task, tgid);

	count_stat(CPU_STAT_EXECS);
	bpf_map_delete_elem(&process_unwind, &pid);
	bpf_map_delete_elem(&known_processes, &pid);
	return 0;
}

#endif /* KILN_PROCESS_BPF_H */
