// SPDX-License-Identifier: Apache-2.0
/* libcurl through dlopen(), so that only a pushing kiln pays for it. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#include "agent/push/curl_api.h"
#include "lib/array.h"
#include "lib/dl.h"

#define LIBCURL_SONAME "libcurl.so.4"

static struct curl_api api;
static void *library; /* set once every symbol is found and libcurl is initialized */

#define SYMBOL(field, name)                                                                        \
	{                                                                                          \
		name, (void **)&api.field                                                          \
	}
static const struct dl_symbol symbols[] = {
	SYMBOL(global_init, "curl_global_init"),   SYMBOL(global_cleanup, "curl_global_cleanup"),
	SYMBOL(easy_init, "curl_easy_init"),	   SYMBOL(easy_cleanup, "curl_easy_cleanup"),
	SYMBOL(easy_setopt, "curl_easy_setopt"),   SYMBOL(easy_perform, "curl_easy_perform"),
	SYMBOL(easy_getinfo, "curl_easy_getinfo"), SYMBOL(easy_strerror, "curl_easy_strerror"),
	SYMBOL(easy_escape, "curl_easy_escape"),   SYMBOL(free, "curl_free"),
	SYMBOL(slist_append, "curl_slist_append"), SYMBOL(slist_free_all, "curl_slist_free_all"),
	SYMBOL(version_info, "curl_version_info"),
};
#undef SYMBOL

int curl_api_load(char *error, size_t error_size)
{
	void *handle;
	int err;

	if (library)
		return 0;
	err = dl_open(LIBCURL_SONAME, symbols, ARRAY_SIZE(symbols), &handle, error, error_size);
	if (err)
		return err;
	if (api.global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(error, error_size, "curl_global_init failed");
		dlclose(handle);
		return -EIO;
	}
	library = handle;
	return 0;
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
