/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded with dlopen() only when kiln pushes: linked in, libcurl
 * and the thirty libraries it pulls (TLS, HTTP/2, Kerberos, LDAP...) cost
 * every kiln about 6 MB of RSS at start, pushing or not.
 */
#ifndef KILN_CURL_API_H
#define KILN_CURL_API_H

#include <stddef.h>
#include <curl/curl.h>

/* The libcurl functions kiln calls, from libcurl.so.4. */
struct curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *curl);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_escape)(CURL *curl, const char *text, int length);
	void (*free)(void *pointer);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
	void (*slist_free_all)(struct curl_slist *list);
	curl_version_info_data *(*version_info)(CURLversion version);
};

/*
 * Loads libcurl and runs curl_global_init (call before starting threads).
 * Returns 0, or a negative errno with the loader's message in error.
 */
int curl_api_load(char *error, size_t error_size);
/* The loaded functions; NULL before curl_api_load succeeded. */
const struct curl_api *curl_api_get(void);
/* curl_global_cleanup and dlclose; safe when nothing was loaded. */
void curl_api_unload(void);

#endif /* KILN_CURL_API_H */
