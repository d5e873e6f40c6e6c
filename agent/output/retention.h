/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local output directory's bound: the profiles kiln writes there
 * (cpu-<stamp>.pb.gz, offcpu-<stamp>.pb.gz, from this run or earlier ones)
 * take at most max_bytes. Past it the oldest are deleted, down to nine
 * tenths of the bound, and counted. Other files are never touched. Memory
 * stays constant however many files the directory holds: a prune reads the
 * directory and deletes the oldest of it in batches.
 */
#ifndef KILN_OUTPUT_RETENTION_H
#define KILN_OUTPUT_RETENTION_H

#include <stdint.h>

struct output_retention;

struct output_retention_stats {
	uint64_t bytes; /* kiln's profiles in the directory, as last counted plus written since */
	uint64_t files; /* as last counted */
	uint64_t deleted; /* profiles deleted to stay within the bound, since start */
	uint64_t deleted_bytes;
	uint64_t prunes; /* times the bound was reached */
	int last_error; /* negative errno of the last failed read or delete; 0 if none */
};

/* Counts what dir already holds and prunes it if it is over max_bytes (0: no bound). */
struct output_retention *output_retention__open(const char *dir, uint64_t max_bytes);
void output_retention__free(struct output_retention *retention);

/*
 * Accounts for the profile just written as name (in the directory) and
 * prunes when the bound is passed; name itself is never deleted.
 */
void output_retention__added(struct output_retention *retention, const char *name);

void output_retention__stats(const struct output_retention *retention,
			     struct output_retention_stats *ret_stats);

#endif /* KILN_OUTPUT_RETENTION_H */
