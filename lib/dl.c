// SPDX-License-Identifier: Apache-2.0
/* dlopen() and a table of dlsym() lookups, all or nothing. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "lib/dl.h"

int dl_open(const char *soname, const struct dl_symbol *symbols, size_t count, void **ret_handle,
	    char *error, size_t error_size)
{
	void *handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		snprintf(error, error_size, "%s", dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < count; i++) {
		/* POSIX guarantees function pointers and void * convert both ways. */
		*symbols[i].address = dlsym(handle, symbols[i].name);
		if (*symbols[i].address)
			continue;
		snprintf(error, error_size, "%s: no %s", soname, symbols[i].name);
		/* No half-loaded library: nothing may call into what is about to be closed. */
		for (size_t j = 0; j <= i; j++)
			*symbols[j].address = NULL;
		dlclose(handle);
		return -ENOENT;
	}
	if (ret_handle)
		*ret_handle = handle;
	return 0;
}
