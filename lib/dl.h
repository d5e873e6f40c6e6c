/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Optional libraries loaded with dlopen() and their functions resolved from
 * a table: kiln links neither libcurl nor libdebuginfod, whose dependencies
 * would cost every kiln megabytes of RSS, and loads them only when used.
 */
#ifndef KILN_DL_H
#define KILN_DL_H

#include <stddef.h>

/* One function to resolve: its name, and where its address goes. */
struct dl_symbol {
	const char *name;
	void **address;
};

/*
 * Opens soname (RTLD_NOW | RTLD_LOCAL) and resolves every symbol. Returns 0
 * and the handle (for dlclose) in ret_handle, which may be NULL for a library
 * kept for the process's life; or -ENOENT, with the loader's message or the
 * missing symbol's name in error, every address NULL again and the library
 * closed.
 */
int dl_open(const char *soname, const struct dl_symbol *symbols, size_t count, void **ret_handle,
	    char *error, size_t error_size);

#endif /* KILN_DL_H */
