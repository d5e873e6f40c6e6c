// SPDX-License-Identifier: Apache-2.0
/*
 * Fuzzes the /proc/PID/maps parser: whatever it accepts must be sorted,
 * non-overlapping and found again by procmaps__find.
 */
#include <stdbool.h>

#include "symbolizer/procmaps.h"
#include "tests/fuzz/fuzz.h"

static void check_maps(const struct proc_maps *maps, bool exec_only)
{
	for (size_t i = 0; i < maps->count; i++) {
		const struct proc_mapping *mapping = &maps->mappings[i];

		FUZZ_CHECK(mapping->start < mapping->end);
		FUZZ_CHECK(mapping->path != NULL);
		FUZZ_CHECK(!exec_only || (mapping->perms & PROC_MAP_EXEC));
		if (i > 0)
			FUZZ_CHECK(maps->mappings[i - 1].end <= mapping->start);
		FUZZ_CHECK(procmaps__find(maps, mapping->start) == mapping);
		FUZZ_CHECK(procmaps__find(maps, mapping->end - 1) == mapping);
	}
	if (maps->count)
		FUZZ_CHECK(procmaps__find(maps, maps->mappings[maps->count - 1].end) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int exec_only = 0; exec_only <= 1; exec_only++) {
		struct proc_maps maps = {};
		FILE *file;

		/* fmemopen wants a size of at least 1. */
		file = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
		FUZZ_CHECK(file != NULL);
		if (procmaps__parse(file, exec_only, &maps) == 0) {
			check_maps(&maps, exec_only);
			procmaps__free(&maps);
		}
		fclose(file);
	}
	return 0;
}
