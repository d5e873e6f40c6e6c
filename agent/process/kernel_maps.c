// SPDX-License-Identifier: Apache-2.0
/* A process's mappings from the unwinder's BPF entry, for processes gone from /proc. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent/process/kernel_maps.h"
#include "bpf/unwind.h"

static int convert(const struct process_unwind *entry, struct proc_maps *ret_maps)
{
	uint32_t count = entry->mapping_count;
	struct proc_maps maps = {};

	if (count > UNWIND_MAX_MAPPINGS)
		count = UNWIND_MAX_MAPPINGS;
	maps.mappings = calloc(count ? count : 1, sizeof(*maps.mappings));
	if (!maps.mappings)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		const struct unwind_mapping *in = &entry->mappings[i];
		struct proc_mapping *out = &maps.mappings[maps.count];

		/* Sorted and apart, as procmaps__find expects: anything else is skipped. */
		if (in->end <= in->start || (maps.count && in->start < out[-1].end))
			continue;
		*out = (struct proc_mapping){
			.start = in->start,
			.end = in->end,
			.offset = in->file_offset,
			.inode = in->inode,
			.dev_major = UNWIND_DEV_MAJOR(in->dev),
			.dev_minor = UNWIND_DEV_MINOR(in->dev),
			.perms = PROC_MAP_READ | PROC_MAP_EXEC,
			.path = strdup(""),
		};
		if (!out->path) {
			procmaps__free(&maps);
			return -ENOMEM;
		}
		maps.count++;
	}
	*ret_maps = maps;
	return 0;
}

int kernel_maps__read(int process_unwind_fd, uint32_t pid, struct proc_maps *ret_maps)
{
	struct process_unwind *entry = malloc(sizeof(*entry)); /* 6 KiB: not on the stack */
	int err;

	if (!entry)
		return -ENOMEM;
	err = bpf_map_lookup_elem(process_unwind_fd, &pid, entry) ? -errno : 0;
	if (!err)
		err = convert(entry, ret_maps);
	free(entry);
	return err;
}

void kernel_maps__sweep(int fd, struct kernel_maps_sweep *sweep)
{
	uint32_t key;
	size_t taken = 0;

	if (fd < 0)
		return;
	if (!sweep->keys) {
		sweep->keys = calloc(UNWIND_MAX_REPLACED, sizeof(*sweep->keys));
		if (!sweep->keys)
			return;
	}
	for (size_t i = 0; i < sweep->count; i++)
		bpf_map_delete_elem(fd, &sweep->keys[i]);
	/* Taken first, deleted at the next sweep: get_next_key from a deleted key starts over. */
	while (taken < UNWIND_MAX_REPLACED && !bpf_map_get_next_key(fd, taken ? &key : NULL, &key))
		sweep->keys[taken++] = key;
	sweep->count = taken;
}

void kernel_maps__sweep_free(struct kernel_maps_sweep *sweep)
{
	free(sweep->keys);
	*sweep = (struct kernel_maps_sweep){};
}
