// SPDX-License-Identifier: Apache-2.0
/*
 * In-cluster config as a pod gives it: $KUBERNETES_SERVICE_HOST and _PORT
 * (IPv4, IPv6 in brackets, the port defaulting to 443), the service
 * account's token and CA under its directory; outside a pod, or with a
 * file missing, a message that says which.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/kubernetes.h"
#include "tests/unit/testing.h"

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = fopen(path, "w");
	CHECK(file != NULL);
	if (file) {
		fputs(text, file);
		fclose(file);
	}
}

static void test_in_cluster(void)
{
	char dir[] = "/tmp/kiln-sa-XXXXXX", error[PATH_MAX + 256], command[PATH_MAX];
	struct kubernetes_opts opts = {};

	CHECK(mkdtemp(dir) != NULL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	CHECK(kubernetes_in_cluster(NULL, dir, &opts, error, sizeof(error)) == -ENOENT);
	CHECK(strstr(error, "KUBERNETES_SERVICE_HOST is not set") != NULL);

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	CHECK(kubernetes_in_cluster(NULL, dir, &opts, error, sizeof(error)) == -ENOENT);
	CHECK(strstr(error, "service account token") != NULL && strstr(error, dir) != NULL);
	write_file(dir, "token", "secret\n");
	CHECK(kubernetes_in_cluster(NULL, dir, &opts, error, sizeof(error)) == -ENOENT);
	CHECK(strstr(error, "service account CA") != NULL);
	write_file(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\n");

	CHECK(kubernetes_in_cluster(NULL, dir, &opts, error, sizeof(error)) == 0);
	CHECK_STR(opts.api_url, "https://10.96.0.1:443");
	CHECK(strstr(opts.token_file, "/token") && strstr(opts.ca_file, "/ca.crt"));
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	CHECK(kubernetes_in_cluster(NULL, dir, &opts, error, sizeof(error)) == 0);
	CHECK_STR(opts.api_url, "https://[fd00:10:96::1]:6443");
	/* A URL given wins, without its trailing slashes. */
	CHECK(kubernetes_in_cluster("https://api.example:8443//", dir, &opts, error,
				    sizeof(error)) == 0);
	CHECK_STR(opts.api_url, "https://api.example:8443");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	CHECK(system(command) == 0);
}

TEST_MAIN("kubernetes", TEST(test_in_cluster))
