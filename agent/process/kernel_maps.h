/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A process's executable mappings as the kernel side keeps them: its entry
 * in the unwinder's process map (bpf/unwind.h), which BPF fills at the
 * process's first sample and keeps after it exits until the agent is done
 * with it. Mappings name their file by device, inode and offset only: the
 * way to name the frames of a process that exited before /proc was read.
 */
#ifndef KILN_KERNEL_MAPS_H
#define KILN_KERNEL_MAPS_H

#include <stdint.h>

#include "symbolizer/procmaps.h"

/*
 * Reads pid's entry from process_unwind_fd into *ret_maps: start, end,
 * offset, device and inode of each mapping, executable and readable, path
 * "" (unknown). Returns 0, -ENOENT when the map has no entry for pid, or a
 * negative errno; *ret_maps is untouched on failure.
 */
int kernel_maps__read(int process_unwind_fd, uint32_t pid, struct proc_maps *ret_maps);

/*
 * The entries of a map of them kept for a while (replaced_images): each
 * sweep deletes those the previous one found, so an entry outlives the
 * window its samples are in. keys holds UNWIND_MAX_REPLACED.
 */
struct kernel_maps_sweep {
	uint32_t *keys;
	size_t count;
};

void kernel_maps__sweep(int fd, struct kernel_maps_sweep *sweep);
void kernel_maps__sweep_free(struct kernel_maps_sweep *sweep);

#endif /* KILN_KERNEL_MAPS_H */
