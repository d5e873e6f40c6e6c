/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Exec tracking, in every profiling program; the agent attaches only the
 * copy of the first program loaded, whose shared maps every program uses.
 * Included after bpf/stacks.bpf.h (count_stat, the unwinder's maps).
 */
#ifndef KILN_PROCESS_BPF_H
#define KILN_PROCESS_BPF_H

/*
 * Tells the agent a process exec'd, so that it builds the tables of what
 * the new image maps already (the executable, ld.so) before its first
 * samples need them. Not marked known: its first sample announces it as
 * new, with its libraries mapped by then.
 */
static __always_inline void announce_exec(__u32 pid)
{
	/* Another program: the agent relabels it, sampled meanwhile. */
	bpf_map_delete_elem(&excluded_processes, &pid);
	if (!filter_pids || bpf_map_lookup_elem(&pid_filter, &pid))
		send_process_event(pid, PROCESS_EVENT_EXEC);
}

/*
 * Whether the new image's file has a table the kernel places already (it
 * ran before): then its loader's has one too, and there is nothing to build
 * early. A shell loop of coreutils execs hundreds of times a second; this
 * spares the agent a maps read for each.
 */
static __always_inline bool exec_file_placeable(struct linux_binprm *bprm)
{
	struct unwind_file_key key = {};
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);

	key.inode = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	return bpf_map_lookup_elem(&unwind_files, &key) != NULL;
}

/*
 * Keeps the entry of the image an exec replaces, when one was made (the
 * process was sampled): a forked child's samples before its exec lie in
 * its parent's files, which its maps after the exec no longer show.
 */
static __always_inline void keep_replaced_image(__u32 pid)
{
	struct process_unwind *process = find_process_unwind(pid);

	if (process && bpf_map_update_elem(&replaced_images, &pid, process, BPF_ANY))
		count_stat(CPU_STAT_REPLACED_FULL);
}

/*
 * An exec replaces the mappings: the unwinder forgets the old ones (kept for
 * naming the samples before it), and the next sample announces the process
 * again so the agent reads the new.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = BPF_CORE_READ(task, tgid);

	count_stat(CPU_STAT_EXECS);
	keep_replaced_image(pid);
	bpf_map_delete_elem(&process_unwind, &pid);
	bpf_map_delete_elem(&python_processes, &pid);
	bpf_map_delete_elem(&known_processes, &pid);
	if (exec_file_placeable(bprm))
		count_stat(CPU_STAT_EXECS_PLACEABLE);
	else
		announce_exec(pid);
	return 0;
}

/*
 * A thread exits: its fill request goes. When it was the last of its
 * group, the process's entry is marked exited rather than deleted: the
 * agent may still read it to name the process's last samples, and deletes
 * it after the window (unwind_maps__sweep_exited).
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
	struct process_unwind *process;
	__u32 pid, tid;
	__u8 one = 1;

	if (!task)
		return 0;
	tid = task->pid;
	pid = task->tgid;
	bpf_map_delete_elem(&fill_requests, &tid);
	/* do_exit counts the group's live threads down before this tracepoint. */
	if (BPF_CORE_READ(task, signal, live.counter))
		return 0;
	/* Its code objects go with it; a later process with its pid is not this Python. */
	bpf_map_delete_elem(&python_processes, &pid);
	process = bpf_map_lookup_elem(&process_unwind, &pid);
	if (!process)
		return 0;
	__sync_fetch_and_or(&process->flags, PROCESS_UNWIND_EXITED);
	if (bpf_map_update_elem(&exited_processes, &pid, &one, BPF_ANY))
		count_stat(CPU_STAT_EXITED_FULL);
	return 0;
}

#endif /* KILN_PROCESS_BPF_H */
