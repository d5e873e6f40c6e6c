// SPDX-License-Identifier: Apache-2.0
/* libcurl through dlopen(), so that only a pushing kiln pays for it. */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "agent/push/curl_api.h"
#include "lib/array.h"

#define LIBCURL_SONAME "libcurl.so.4"

static struct curl_api api;
static void *library; /* set once every symbol is found and libcurl is initialized */

static const struct {
	const char *name;
	size_t offset;
} symbols[] = {
#define SYMBOL(field, name)                                                                        \
	{                                                                                          \
		name, offsetof(struct curl_api, field)                                             \
	}
	SYMBOL(global_init, "curl_global_init"),   SYMBOL(global_cleanup, "curl_global_cleanup"),
	SYMBOL(easy_init, "curl_easy_init"),	   SYMBOL(easy_cleanup, "curl_easy_cleanup"),
	SYMBOL(easy_setopt, "curl_easy_setopt"),   SYMBOL(easy_perform, "curl_easy_perform"),
	SYMBOL(easy_getinfo, "curl_easy_getinfo"), SYMBOL(easy_strerror, "curl_easy_strerror"),
	SYMBOL(easy_escape, "curl_easy_escape"),   SYMBOL(free, "curl_free"),
	SYMBOL(slist_append, "curl_slist_append"), SYMBOL(slist_free_all, "curl_slist_free_all"),
	SYMBOL(version_info, "curl_version_info"),
#undef SYMBOL
};

int curl_api_load(char *error, size_t error_size)
{
	void *handle;
	int err;

	if (library)
		return 0;
	handle = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		snprintf(error, error_size, "%s", dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < ARRAY_SIZE(symbols); i++) {
		void *address = dlsym(handle, symbols[i].name);

		if (!address) {
			snprintf(error, error_size, "%s: no %s", LIBCURL_SONAME, symbols[i].name);
			err = -ENOENT;
			goto cleanup;
		}
		/* POSIX guarantees function pointers and void * convert both ways. */
		*(void **)((char *)&api + symbols[i].offset) = address;
	}
	if (api.global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(error, error_size, "curl_global_init failed");
		err = -EIO;
		goto cleanup;
	}
	library = handle;
	return 0;

cleanup:
	dlclose(handle);
	return err;
}

const struct curl_api *curl_api_get(void)
{
	return library ? &api : NULL;
}

void curl_api_unload(void)
{
	if (!library)
		return;
	api.global_cleanup();
	dlclose(library);
	library = NULL;
}
