/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel symbols from /proc/kallsyms, modules included. */
#ifndef KILN_KSYMS_H
#define KILN_KSYMS_H

#include <stdint.h>

struct ksyms;

struct ksym {
	uint64_t addr;
	const char *name;
	const char *module; /* NULL for the kernel image itself */
};

/* Loads a kallsyms-format file; NULL with errno set on failure. */
struct ksyms *ksyms__load(const char *path);
void ksyms__free(struct ksyms *ksyms);

/* The symbol with the greatest address <= addr (text symbols only). 0 or -ENOENT. */
int ksyms__lookup(const struct ksyms *ksyms, uint64_t addr, struct ksym *ret_sym);

/* Number of symbols loaded. */
unsigned long ksyms__count(const struct ksyms *ksyms);

#endif /* KILN_KSYMS_H */
