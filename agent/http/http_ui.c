// SPDX-License-Identifier: Apache-2.0
/*
 * The flame graph page's paths. Profiles are merged and filtered on the
 * server thread, on demand: the page and `go tool pprof` read the same
 * URLs, and nothing is kept between requests.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http/http_ui.h"
#include "agent/http/ui_assets.h"
#include "lib/gzip.h"
#include "lib/log.h"
#include "proto/pprof_merge.h"

/*
 * The page and the viewer load only their own files; speedscope sets
 * styles inline, shows its icons as data: and blob: URLs and compiles
 * WebAssembly (its JFR importer; 'wasm-unsafe-eval' allows that, not
 * eval). No frames of other origins, no forms, no plugins.
 */
#define UI_CSP                                                                                         \
	"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; " \
	"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "                      \
	"frame-src 'self'; frame-ancestors 'self'; object-src 'none'; base-uri 'none'; "               \
	"form-action 'none'"
#define PPROF_CONTENT_TYPE "application/octet-stream"
#define JSON_CONTENT_TYPE "application/json"

bool http_ui_has_viewer(void)
{
	for (uint64_t i = 0; i < ui_asset_count; i++) {
		if (!strcmp(ui_assets[i].path, "viewer/index.html"))
			return true;
	}
	return false;
}

static const struct ui_asset *find_asset(const char *path)
{
	for (uint64_t i = 0; i < ui_asset_count; i++) {
		if (!strcmp(ui_assets[i].path, path))
			return &ui_assets[i];
	}
	return NULL;
}

static const char *content_type_of(const char *path)
{
	static const struct {
		const char *suffix, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".json", "application/json" },
	};
	size_t length = strlen(path);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t suffix = strlen(types[i].suffix);

		if (length >= suffix && !strcmp(path + length - suffix, types[i].suffix))
			return types[i].type;
	}
	return "text/plain; charset=utf-8";
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status, void *body,
			       size_t length, enum MHD_ResponseMemoryMode mode,
			       const char *content_type, bool cache)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(length, body, mode);
	enum MHD_Result result;

	if (!response) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, "Content-Security-Policy", UI_CSP);
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
				cache ? "max-age=3600" : "no-store");
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned int status,
				    const char *format, ...) __attribute__((format(printf, 3, 4)));

static enum MHD_Result respond_text(struct MHD_Connection *connection, unsigned int status,
				    const char *format, ...)
{
	char text[512];
	va_list args;

	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	return respond(connection, status, text, strlen(text), MHD_RESPMEM_MUST_COPY,
		       "text/plain; charset=utf-8", false);
}

static enum MHD_Result respond_json(struct MHD_Connection *connection, json_object *object)
{
	const char *text = json_object_to_json_string_ext(object, JSON_C_TO_STRING_PLAIN);
	enum MHD_Result result;

	result = text ? respond(connection, MHD_HTTP_OK, (void *)text, strlen(text),
				MHD_RESPMEM_MUST_COPY, JSON_CONTENT_TYPE, false)
		      : respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	json_object_put(object);
	return result;
}

/* What a request selects: which windows, and which of their samples. */
struct selection {
	enum profile_kind kind;
	const char *name; /* one window by name; NULL: the newest, or the last minutes */
	unsigned int minutes; /* 0: one window */
	struct pprof_filter filter;
	char label_key[HTTP_UI_MAX_PARAMETER + 1];
	bool filtered;
};

/* A query parameter, NULL when absent; *bad set when too long. */
static const char *parameter(struct MHD_Connection *connection, const char *key, const char **bad)
{
	const char *value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);

	if (value && strnlen(value, HTTP_UI_MAX_PARAMETER + 1) > HTTP_UI_MAX_PARAMETER && !*bad)
		*bad = key;
	return value && *value ? value : NULL;
}

static bool parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long value;

	if (!text || *text < '0' || *text > '9')
		return false;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end || value < min || value > max)
		return false;
	*ret = value;
	return true;
}

/* Fills selection from the query; false with the reason in why. */
static bool parse_selection(struct MHD_Connection *connection, struct selection *selection,
			    char *why, size_t why_size)
{
	const char *bad = NULL, *kind, *minutes, *pid, *tid, *container, *label, *equals;
	uint64_t number;

	*selection = (struct selection){ .kind = PROFILE_KIND_CPU };
	kind = parameter(connection, "kind", &bad);
	minutes = parameter(connection, "minutes", &bad);
	pid = parameter(connection, "pid", &bad);
	tid = parameter(connection, "tid", &bad);
	selection->filter.comm = parameter(connection, "comm", &bad);
	container = parameter(connection, "container", &bad);
	label = parameter(connection, "label", &bad);
	if (bad) {
		snprintf(why, why_size, "%s: longer than %d bytes\n", bad, HTTP_UI_MAX_PARAMETER);
		return false;
	}
	if (kind && !strcmp(kind, "offcpu")) {
		selection->kind = PROFILE_KIND_OFF_CPU;
	} else if (kind && strcmp(kind, "cpu")) {
		snprintf(why, why_size, "kind: cpu or offcpu, not %s\n", kind);
		return false;
	}
	if (minutes) {
		if (!parse_number(minutes, 1, HTTP_UI_MAX_MINUTES, &number)) {
			snprintf(why, why_size, "minutes: a whole number from 1 to %d\n",
				 HTTP_UI_MAX_MINUTES);
			return false;
		}
		selection->minutes = (unsigned int)number;
	}
	if (pid) {
		if (!parse_number(pid, 1, INT32_MAX, &number)) {
			snprintf(why, why_size, "pid: a process id\n");
			return false;
		}
		selection->filter.pid = (int64_t)number;
	}
	if (tid) {
		if (!parse_number(tid, 1, INT32_MAX, &number)) {
			snprintf(why, why_size, "tid: a thread id\n");
			return false;
		}
		selection->filter.tid = (int64_t)number;
	}
	if (container && label) {
		snprintf(why, why_size, "container and label: one of them\n");
		return false;
	}
	if (container) {
		snprintf(selection->label_key, sizeof(selection->label_key), "container_id");
		selection->filter.label_value = container;
	} else if (label) {
		equals = strchr(label, '=');
		if (!equals || equals == label) {
			snprintf(why, why_size, "label: KEY=VALUE\n");
			return false;
		}
		snprintf(selection->label_key, sizeof(selection->label_key), "%.*s",
			 (int)(equals - label), label);
		selection->filter.label_value = equals + 1;
	}
	if (selection->label_key[0])
		selection->filter.label_key = selection->label_key;
	selection->filtered = selection->filter.pid || selection->filter.tid ||
			      selection->filter.comm || selection->filter.label_key;
	return true;
}

/*
 * The windows a selection reads, newest first, in *ret (malloc'd): the
 * named one, the newest of its kind, or those of its kind that started
 * within its minutes of the newest's start. Returns how many.
 */
static int selected_windows(struct profile_windows *windows, const struct selection *selection,
			    struct profile_window **ret)
{
	struct profile_window *list;
	int count, kept = 0;

	count = profile_windows__list(windows, SIZE_MAX, &list);
	if (count < 0)
		return count;
	for (int i = 0; i < count && kept < HTTP_UI_MAX_MERGED_WINDOWS; i++) {
		const struct profile_window *window = &list[i];

		if (selection->name) {
			if (strcmp(window->name, selection->name))
				continue;
		} else if (window->kind != selection->kind ||
			   (kept &&
			    (!selection->minutes ||
			     window->start_ns <= list[0].start_ns - (int64_t)selection->minutes *
									    60000000000LL))) {
			continue;
		}
		/* kept <= i: nothing not yet looked at is overwritten; list[0] sets the span. */
		memmove(&list[kept++], window, sizeof(*window));
		if (selection->name || !selection->minutes)
			break;
	}
	*ret = list;
	return kept;
}

/* The selected windows' samples that pass the filter, merged. */
static int merge_selection(struct profile_windows *windows, const struct profile_window *list,
			   int count, const struct selection *selection,
			   struct pprof_merge **ret_merge)
{
	struct pprof_merge *merge = pprof_merge__new();
	uint64_t read_bytes = 0;
	int err = 0;

	if (!merge)
		return -ENOMEM;
	for (int i = 0; i < count && !err; i++) {
		uint8_t *packed = NULL, *raw = NULL;
		size_t packed_size, raw_size;

		err = profile_windows__read(windows, list[i].name, &packed, &packed_size);
		if (err == -ENOENT) {
			/* Deleted by the retention since it was listed. */
			err = 0;
			continue;
		}
		if (err)
			break;
		read_bytes += packed_size;
		if (read_bytes > HTTP_UI_MAX_MERGED_BYTES) {
			free(packed);
			log_debug("http: merging windows: past %llu bytes, the older ones left out",
				  HTTP_UI_MAX_MERGED_BYTES);
			break;
		}
		err = gzip_decompress(packed, packed_size, HTTP_UI_MAX_PROFILE_BYTES, &raw,
				      &raw_size);
		free(packed);
		if (!err)
			err = pprof_merge__add(merge, raw, raw_size,
					       selection->filtered ? &selection->filter : NULL);
		free(raw);
		if (err == -EINVAL) {
			/* A window not readable as a profile: the others are still served. */
			log_debug("http: %s: not a profile, left out", list[i].name);
			err = 0;
		}
	}
	if (err) {
		pprof_merge__free(merge);
		return err;
	}
	*ret_merge = merge;
	return 0;
}

static enum MHD_Result answer_profile(struct profile_windows *windows,
				      struct MHD_Connection *connection, const char *which)
{
	struct selection selection;
	struct profile_window *list = NULL;
	struct pprof_merge *merge = NULL;
	uint8_t *data = NULL;
	size_t size = 0;
	char why[256];
	int count, err;

	if (!parse_selection(connection, &selection, why, sizeof(why)))
		return respond_text(connection, MHD_HTTP_BAD_REQUEST, "%s", why);
	if (!strcmp(which, "last")) {
		if (!selection.minutes)
			return respond_text(connection, MHD_HTTP_BAD_REQUEST,
					    "/profiles/last needs minutes=N\n");
	} else if (!strcmp(which, "latest")) {
		selection.minutes = 0;
	} else {
		selection.name = which;
		selection.minutes = 0;
	}
	count = selected_windows(windows, &selection, &list);
	if (count <= 0) {
		free(list);
		if (count < 0)
			return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
					    "listing the windows: %s\n", strerror(-count));
		return respond_text(connection, MHD_HTTP_NOT_FOUND, "no such window%s\n",
				    selection.name ? "" : " yet");
	}
	if (count == 1 && !selection.filtered) {
		/* One window as it was written: the same bytes as the file. */
		err = profile_windows__read(windows, list[0].name, &data, &size);
	} else {
		err = merge_selection(windows, list, count, &selection, &merge);
		if (!err)
			err = pprof_merge__encode_gzip(merge, &data, &size);
		pprof_merge__free(merge);
	}
	free(list);
	if (err == -ENOENT)
		return respond_text(connection, MHD_HTTP_NOT_FOUND, "no such window\n");
	if (err)
		return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "reading the windows: %s\n", strerror(-err));
	return respond(connection, MHD_HTTP_OK, data, size, MHD_RESPMEM_MUST_FREE,
		       PPROF_CONTENT_TYPE, false);
}

static json_object *window_json(const struct profile_window *window)
{
	json_object *object = json_object_new_object();

	json_object_object_add(object, "name", json_object_new_string(window->name));
	json_object_object_add(
		object, "kind",
		json_object_new_string(window->kind == PROFILE_KIND_CPU ? "cpu" : "offcpu"));
	json_object_object_add(object, "start_ns", json_object_new_int64(window->start_ns));
	json_object_object_add(object, "bytes", json_object_new_int64((int64_t)window->bytes));
	return object;
}

static enum MHD_Result answer_windows(struct profile_windows *windows,
				      struct MHD_Connection *connection)
{
	struct profile_windows_stats stats;
	struct profile_window *list = NULL;
	json_object *object, *array;
	int count;

	count = profile_windows__list(windows, HTTP_UI_MAX_LISTED, &list);
	if (count < 0)
		return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "listing the windows: %s\n", strerror(-count));
	profile_windows__stats(windows, &stats);
	object = json_object_new_object();
	array = json_object_new_array();
	for (int i = 0; i < count; i++)
		json_object_array_add(array, window_json(&list[i]));
	free(list);
	json_object_object_add(object, "windows", array);
	json_object_object_add(object, "viewer", json_object_new_boolean(http_ui_has_viewer()));
	json_object_object_add(object, "in_memory",
			       json_object_new_boolean(profile_windows__in_memory(windows)));
	json_object_object_add(object, "dropped", json_object_new_int64((int64_t)stats.dropped));
	return respond_json(connection, object);
}

static int add_process(void *ctx, const struct pprof_merge_process *process)
{
	json_object *item = json_object_new_object();

	json_object_object_add(item, "pid", json_object_new_int64(process->pid));
	json_object_object_add(item, "comm", json_object_new_string(process->comm));
	json_object_object_add(item, "container", json_object_new_string(process->container_id));
	json_object_object_add(item, "value", json_object_new_int64(process->value));
	json_object_array_add(ctx, item);
	return 0;
}

static int compare_values(const void *a, const void *b)
{
	int64_t x =
		json_object_get_int64(json_object_object_get(*(json_object *const *)a, "value"));
	int64_t y =
		json_object_get_int64(json_object_object_get(*(json_object *const *)b, "value"));

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The processes of a selection (its filter but the pid's), largest first. */
static enum MHD_Result answer_processes(struct profile_windows *windows,
					struct MHD_Connection *connection)
{
	struct selection selection;
	struct profile_window *list = NULL;
	struct pprof_merge *merge = NULL;
	struct pprof_merge_stats stats;
	json_object *object, *array;
	const char *name;
	char why[256];
	int count, err;

	if (!parse_selection(connection, &selection, why, sizeof(why)))
		return respond_text(connection, MHD_HTTP_BAD_REQUEST, "%s", why);
	name = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "window");
	if (name && strcmp(name, "latest"))
		selection.name = name, selection.minutes = 0;
	selection.filter.pid = 0;
	selection.filtered =
		selection.filter.tid || selection.filter.comm || selection.filter.label_key;
	count = selected_windows(windows, &selection, &list);
	if (count < 0) {
		free(list);
		return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "listing the windows: %s\n", strerror(-count));
	}
	err = merge_selection(windows, list, count, &selection, &merge);
	free(list);
	if (err)
		return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "reading the windows: %s\n", strerror(-err));
	array = json_object_new_array();
	pprof_merge__for_each_process(merge, add_process, array);
	json_object_array_sort(array, compare_values);
	pprof_merge__stats(merge, &stats);
	pprof_merge__free(merge);
	object = json_object_new_object();
	json_object_object_add(object, "windows", json_object_new_int64(count));
	json_object_object_add(object, "processes", array);
	json_object_object_add(object, "other_processes",
			       json_object_new_int64((int64_t)stats.other_processes));
	return respond_json(connection, object);
}

static enum MHD_Result answer_asset(struct MHD_Connection *connection, const char *path)
{
	const struct ui_asset *asset = find_asset(path);

	if (!asset) {
		if (!strncmp(path, "viewer/", strlen("viewer/")) && !http_ui_has_viewer())
			return respond_text(connection, MHD_HTTP_NOT_FOUND,
					    "the viewer (speedscope) was not built into this kiln: "
					    "run scripts/install-deps.sh, then make\n");
		return respond_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
	}
	return respond(connection, MHD_HTTP_OK, (void *)asset->data, asset->size,
		       MHD_RESPMEM_PERSISTENT, content_type_of(path), true);
}

bool http_ui__answer(struct profile_windows *windows, struct MHD_Connection *connection,
		     const char *url, enum MHD_Result *ret_result)
{
	char path[64];

	if (!strcmp(url, "/")) {
		*ret_result = answer_asset(connection, "ui/index.html");
	} else if (!strncmp(url, "/ui/", 4) || !strncmp(url, "/viewer/", 8)) {
		/* Embedded names only: a longer or stranger path matches none. */
		if (snprintf(path, sizeof(path), "%s", url + 1) >= (int)sizeof(path))
			*ret_result = respond_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
		else
			*ret_result = answer_asset(
				connection, !strcmp(path, "viewer/") ? "viewer/index.html" : path);
	} else if (!strncmp(url, "/profiles/", 10) && windows) {
		*ret_result = answer_profile(windows, connection, url + 10);
	} else if (!strcmp(url, "/api/windows") && windows) {
		*ret_result = answer_windows(windows, connection);
	} else if (!strcmp(url, "/api/processes") && windows) {
		*ret_result = answer_processes(windows, connection);
	} else {
		return false;
	}
	return true;
}
