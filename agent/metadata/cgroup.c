// SPDX-License-Identifier: Apache-2.0
/* Systemd units, containers and Kubernetes pods, from cgroup paths. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "agent/metadata/cgroup.h"
#include "lib/array.h"

#define ID_LENGTH 64

/* The runtimes' unit or directory name prefixes, before the ID. */
static const struct {
	const char *prefix;
	const char *runtime;
} scope_prefixes[] = {
	{ "docker-", "docker" },
	{ "cri-containerd-", "containerd" },
	{ "crio-", "cri-o" },
	{ "libpod-", "podman" },
};

/* A component of a path, not NUL-terminated. */
struct part {
	const char *start;
	size_t length;
};

static bool has_suffix(struct part part, const char *suffix)
{
	size_t n = strlen(suffix);

	return part.length >= n && !memcmp(part.start + part.length - n, suffix, n);
}

static bool has_prefix(struct part part, const char *prefix)
{
	size_t n = strlen(prefix);

	return part.length >= n && !memcmp(part.start, prefix, n);
}

static bool equals(struct part part, const char *text)
{
	return part.length == strlen(text) && !memcmp(part.start, text, part.length);
}

static bool is_id(const char *text, size_t length)
{
	if (length != ID_LENGTH)
		return false;
	for (size_t i = 0; i < length; i++) {
		if (!isxdigit((unsigned char)text[i]) || isupper((unsigned char)text[i]))
			return false;
	}
	return true;
}

static void copy_part(char *dst, size_t size, const char *start, size_t length)
{
	if (length >= size)
		length = size - 1;
	memcpy(dst, start, length);
	dst[length] = '\0';
}

static void set_container(struct cgroup_metadata *metadata, const char *id, const char *runtime)
{
	copy_part(metadata->container_id, sizeof(metadata->container_id), id, ID_LENGTH);
	metadata->container_runtime = runtime;
}

/* "docker-ID" (with ".scope" taken off) or "crio-ID": the container, if it is one. */
static bool prefixed_container(struct cgroup_metadata *metadata, struct part name)
{
	for (size_t i = 0; i < ARRAY_SIZE(scope_prefixes); i++) {
		size_t n = strlen(scope_prefixes[i].prefix);

		if (has_prefix(name, scope_prefixes[i].prefix) &&
		    is_id(name.start + n, name.length - n)) {
			set_container(metadata, name.start + n, scope_prefixes[i].runtime);
			return true;
		}
	}
	return false;
}

/*
 * A pod's UID as a cgroup name holds it: "pod" then 8-4-4-4-12 hex digits,
 * dashes written as '_' by the systemd driver. Stored with dashes.
 */
static bool pod_uid(struct cgroup_metadata *metadata, const char *text, size_t length)
{
	char uid[POD_UID_SIZE];

	if (length != POD_UID_SIZE - 1)
		return false;
	for (size_t i = 0; i < length; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		char c = text[i] == '_' ? '-' : text[i];

		if (dash ? c != '-' : !isxdigit((unsigned char)c))
			return false;
		uid[i] = (char)tolower((unsigned char)c);
	}
	uid[length] = '\0';
	memcpy(metadata->pod_uid, uid, sizeof(uid));
	return true;
}

/* kubepods's QoS part, "burstable" or "besteffort", in either driver's spelling. */
static const char *qos_class(struct part name)
{
	if (has_prefix(name, "burstable"))
		return "Burstable";
	if (has_prefix(name, "besteffort"))
		return "BestEffort";
	return NULL;
}

/*
 * systemd driver: kubepods.slice, kubepods-burstable.slice,
 * kubepods-burstable-podUID.slice, kubepods-podUID.slice (Guaranteed).
 */
static void kubepods_slice(struct cgroup_metadata *metadata, struct part name)
{
	struct part rest = { name.start + 8, name.length - 8 - 6 }; /* "kubepods", ".slice" */
	const char *qos;

	if (!rest.length || *rest.start != '-')
		return;
	rest.start++, rest.length--;
	qos = qos_class(rest);
	if (qos) {
		size_t skip = strlen(qos) + 1; /* "burstable-" */

		metadata->qos_class = qos;
		if (rest.length <= skip)
			return;
		rest.start += skip, rest.length -= skip;
	}
	if (has_prefix(rest, "pod") && pod_uid(metadata, rest.start + 3, rest.length - 3) &&
	    !metadata->qos_class)
		metadata->qos_class = "Guaranteed";
}

/* A unit name: the innermost slice and unit, and the container a scope is. */
static void unit_part(struct cgroup_metadata *metadata, struct part name)
{
	if (has_suffix(name, ".slice")) {
		copy_part(metadata->systemd_slice, sizeof(metadata->systemd_slice), name.start,
			  name.length);
		if (has_prefix(name, "kubepods"))
			kubepods_slice(metadata, name);
		return;
	}
	copy_part(metadata->systemd_unit, sizeof(metadata->systemd_unit), name.start, name.length);
	if (has_suffix(name, ".scope"))
		prefixed_container(metadata,
				   (struct part){ name.start, name.length - strlen(".scope") });
}

/* cgroupfs driver: /docker/ID, /kubepods/burstable/podUID/ID, /libpod_parent/libpod-ID. */
static void plain_part(struct cgroup_metadata *metadata, struct part name, struct part parent,
		       bool in_kubepods)
{
	const char *qos;

	if (is_id(name.start, name.length)) {
		if (equals(parent, "docker"))
			set_container(metadata, name.start, "docker");
		else if (in_kubepods)
			set_container(metadata, name.start, "containerd");
		return;
	}
	if (prefixed_container(metadata, name))
		return;
	if (!in_kubepods)
		return;
	qos = equals(parent, "kubepods") ? qos_class(name) : NULL;
	if (qos && (equals(name, "burstable") || equals(name, "besteffort")))
		metadata->qos_class = qos;
	else if (has_prefix(name, "pod") && pod_uid(metadata, name.start + 3, name.length - 3) &&
		 !metadata->qos_class)
		metadata->qos_class = "Guaranteed";
}

static bool is_unit(struct part name)
{
	static const char *const suffixes[] = { ".slice",  ".scope", ".service",
						".socket", ".mount", ".swap" };

	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		if (has_suffix(name, suffixes[i]))
			return true;
	}
	return false;
}

/* Everything one path says, innermost last (and so winning). */
static void parse_path(const char *path, size_t length, struct cgroup_metadata *metadata)
{
	struct part parent = { "", 0 };
	bool in_kubepods = false;
	const char *end = path + length;

	*metadata = (struct cgroup_metadata){ 0 };
	copy_part(metadata->path, sizeof(metadata->path), path, length);
	for (const char *c = path; c < end;) {
		const char *slash = memchr(c, '/', end - c);
		struct part name = { c, (slash ? slash : end) - c };

		c = slash ? slash + 1 : end;
		if (!name.length)
			continue;
		if (equals(name, "kubepods") || has_prefix(name, "kubepods."))
			in_kubepods = true;
		if (is_unit(name))
			unit_part(metadata, name);
		else
			plain_part(metadata, name, parent, in_kubepods);
		parent = name;
	}
}

/* One line of /proc/PID/cgroup: "hierarchy:controllers:path". */
struct cgroup_line {
	bool unified; /* "0::" */
	bool systemd; /* v1's name=systemd hierarchy */
	const char *path;
	size_t path_length;
};

static bool split_line(const char *line, size_t length, struct cgroup_line *out)
{
	const char *first = memchr(line, ':', length), *second;

	if (!first)
		return false;
	second = memchr(first + 1, ':', line + length - first - 1);
	if (!second || second + 1 >= line + length || second[1] != '/')
		return false;
	out->unified = first == line + 1 && *line == '0' && second == first + 1;
	out->systemd = second - first - 1 == 12 && !memcmp(first + 1, "name=systemd", 12);
	out->path = second + 1;
	out->path_length = line + length - out->path;
	return true;
}

/*
 * The line that tells most: one naming a container, then the unified
 * hierarchy, then v1's name=systemd, then any.
 */
static int line_rank(const struct cgroup_line *line, const struct cgroup_metadata *metadata)
{
	return metadata->container_id[0] ? 3 : line->unified ? 2 : line->systemd ? 1 : 0;
}

int cgroup_metadata_parse(const char *text, size_t len, struct cgroup_metadata *metadata)
{
	const char *end = text + len;
	int best = -1;

	*metadata = (struct cgroup_metadata){ 0 };
	for (const char *c = text; c < end;) {
		const char *newline = memchr(c, '\n', end - c);
		size_t length = (newline ? newline : end) - c;
		struct cgroup_metadata candidate;
		struct cgroup_line line;

		if (split_line(c, length, &line)) {
			parse_path(line.path, line.path_length, &candidate);
			int rank = line_rank(&line, &candidate);

			if (rank > best) {
				best = rank;
				*metadata = candidate;
			}
		}
		c = newline ? newline + 1 : end;
	}
	return best < 0 ? -EINVAL : 0;
}
