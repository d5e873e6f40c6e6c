// SPDX-License-Identifier: Apache-2.0
/* This node's pods from the Kubernetes API's JSON, read with json-c, and the labels they give. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/kubernetes_pods.h"
#include "lib/hashmap.h"

/* A label of a pod, or an annotation: the name as the API gives it. */
struct pair {
	char *name;
	char *value;
};

struct container {
	char *id; /* without the runtime's "containerd://" */
	char *name;
};

struct pod {
	char *uid; /* the map's key */
	char *namespace, *name, *node_name, *ip, *controller_kind, *controller_name;
	struct pair labels[KUBERNETES_POD_MAX_PAIRS], annotations[KUBERNETES_POD_MAX_PAIRS];
	size_t label_count, annotation_count;
	struct container containers[KUBERNETES_POD_MAX_CONTAINERS];
	size_t container_count;
	uint64_t list_generation; /* the last list that named it */
};

struct kubernetes_pods {
	pthread_mutex_t lock;
	struct hashmap *by_uid; /* uid -> struct pod */
	size_t max_pods;
	uint64_t list_generation;
	struct kubernetes_pods_stats stats;
};

struct kubernetes_pods *kubernetes_pods__new(size_t max_pods)
{
	struct kubernetes_pods *pods;

	if (!max_pods) {
		errno = EINVAL;
		return NULL;
	}
	pods = calloc(1, sizeof(*pods));
	if (!pods)
		return NULL;
	pods->max_pods = max_pods;
	pods->by_uid = hashmap__new(hashmap_hash_str, hashmap_equal_str, NULL);
	if (!pods->by_uid) {
		free(pods);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&pods->lock, NULL);
	return pods;
}

static void free_pod(struct pod *pod)
{
	if (!pod)
		return;
	free(pod->uid);
	free(pod->namespace);
	free(pod->name);
	free(pod->node_name);
	free(pod->ip);
	free(pod->controller_kind);
	free(pod->controller_name);
	for (size_t i = 0; i < pod->label_count; i++) {
		free(pod->labels[i].name);
		free(pod->labels[i].value);
	}
	for (size_t i = 0; i < pod->annotation_count; i++) {
		free(pod->annotations[i].name);
		free(pod->annotations[i].value);
	}
	for (size_t i = 0; i < pod->container_count; i++) {
		free(pod->containers[i].id);
		free(pod->containers[i].name);
	}
	free(pod);
}

void kubernetes_pods__free(struct kubernetes_pods *pods)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	if (!pods)
		return;
	while (hashmap__next(pods->by_uid, &iter, NULL, &value))
		free_pod(value);
	hashmap__free(pods->by_uid);
	pthread_mutex_destroy(&pods->lock);
	free(pods);
}

/* The string at a path of object keys, or NULL when any step is missing or not that type. */
static const char *string_at(struct json_object *object, const char *first, const char *second)
{
	struct json_object *value;

	if (!json_object_object_get_ex(object, first, &value))
		return NULL;
	if (second && !json_object_object_get_ex(value, second, &value))
		return NULL;
	return json_object_is_type(value, json_type_string) ? json_object_get_string(value) : NULL;
}

/* A copy of text when it is a usable value: not empty, at most KUBERNETES_VALUE_MAX bytes. */
static char *copy_value(const char *text)
{
	size_t length;
	char *copy;

	if (!text || !*text)
		return NULL;
	length = strnlen(text, KUBERNETES_VALUE_MAX + 1);
	if (length > KUBERNETES_VALUE_MAX)
		return NULL;
	copy = strndup(text, length);
	/* A label value goes into files and push protocols: no control characters. */
	for (char *c = copy; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '_';
	return copy;
}

/* Copies an object of strings (metadata.labels, .annotations) into pairs; counts what is left. */
static void read_pairs(struct kubernetes_pods *pods, struct json_object *object, struct pair *pairs,
		       size_t *count)
{
	if (!object || !json_object_is_type(object, json_type_object))
		return;
	json_object_object_foreach(object, name, value)
	{
		const char *text = json_object_get_string(value);
		char *copy;

		if (!json_object_is_type(value, json_type_string) ||
		    *count == KUBERNETES_POD_MAX_PAIRS || strlen(name) > 253) {
			pods->stats.values_left_out++;
			continue;
		}
		/* An empty value is a label Prometheus shows as present only. */
		copy = *text ? copy_value(text) : strdup("");
		pairs[*count].name = strdup(name);
		pairs[*count].value = copy;
		if (!pairs[*count].name || !copy) {
			free(pairs[*count].name);
			free(copy);
			pods->stats.values_left_out++;
			continue;
		}
		(*count)++;
	}
}

/* status.containerStatuses (and the init and ephemeral ones): each container's ID and name. */
static void read_containers(struct kubernetes_pods *pods, struct json_object *status,
			    struct pod *pod)
{
	static const char *const lists[] = { "containerStatuses", "initContainerStatuses",
					     "ephemeralContainerStatuses" };

	for (size_t l = 0; status && l < sizeof(lists) / sizeof(lists[0]); l++) {
		struct json_object *array;

		if (!json_object_object_get_ex(status, lists[l], &array) ||
		    !json_object_is_type(array, json_type_array))
			continue;
		for (size_t i = 0; i < json_object_array_length(array); i++) {
			struct json_object *item = json_object_array_get_idx(array, i);
			const char *id = string_at(item, "containerID", NULL);
			const char *name = string_at(item, "name", NULL);
			const char *scheme = id ? strstr(id, "://") : NULL;
			struct container *container;

			if (!id || !name)
				continue; /* not started yet: no ID */
			if (pod->container_count == KUBERNETES_POD_MAX_CONTAINERS) {
				pods->stats.values_left_out++;
				continue;
			}
			container = &pod->containers[pod->container_count];
			container->id = copy_value(scheme ? scheme + 3 : id);
			container->name = copy_value(name);
			if (!container->id || !container->name) {
				free(container->id);
				free(container->name);
				pods->stats.values_left_out++;
				continue;
			}
			pod->container_count++;
		}
	}
}

/* metadata.ownerReferences: the one whose controller is true. */
static void read_controller(struct json_object *metadata, struct pod *pod)
{
	struct json_object *owners;

	if (!json_object_object_get_ex(metadata, "ownerReferences", &owners) ||
	    !json_object_is_type(owners, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(owners); i++) {
		struct json_object *owner = json_object_array_get_idx(owners, i), *controller;

		if (!json_object_object_get_ex(owner, "controller", &controller) ||
		    !json_object_get_boolean(controller))
			continue;
		pod->controller_kind = copy_value(string_at(owner, "kind", NULL));
		pod->controller_name = copy_value(string_at(owner, "name", NULL));
		return;
	}
}

/* A Pod object; NULL (counted as malformed) without metadata's uid, name and namespace. */
static struct pod *read_pod(struct kubernetes_pods *pods, struct json_object *object)
{
	struct json_object *metadata, *field;
	struct pod *pod;

	if (!json_object_object_get_ex(object, "metadata", &metadata) ||
	    !json_object_is_type(metadata, json_type_object))
		goto malformed;
	pod = calloc(1, sizeof(*pod));
	if (!pod)
		return NULL;
	pod->uid = copy_value(string_at(metadata, "uid", NULL));
	pod->name = copy_value(string_at(metadata, "name", NULL));
	pod->namespace = copy_value(string_at(metadata, "namespace", NULL));
	if (!pod->uid || !pod->name || !pod->namespace || strlen(pod->uid) >= 64) {
		free_pod(pod);
		goto malformed;
	}
	pod->node_name = copy_value(string_at(object, "spec", "nodeName"));
	pod->ip = copy_value(string_at(object, "status", "podIP"));
	read_controller(metadata, pod);
	if (json_object_object_get_ex(metadata, "labels", &field))
		read_pairs(pods, field, pod->labels, &pod->label_count);
	if (json_object_object_get_ex(metadata, "annotations", &field))
		read_pairs(pods, field, pod->annotations, &pod->annotation_count);
	if (json_object_object_get_ex(object, "status", &field))
		read_containers(pods, field, pod);
	return pod;
malformed:
	pods->stats.malformed++;
	return NULL;
}

/* Puts pod in place of the one with its uid (locked by the caller); takes pod. */
static void store_pod(struct kubernetes_pods *pods, struct pod *pod)
{
	void *old = NULL;
	uintptr_t old_key;

	pod->list_generation = pods->list_generation;
	if (!hashmap__find(pods->by_uid, (uintptr_t)pod->uid, NULL) &&
	    hashmap__size(pods->by_uid) >= pods->max_pods) {
		pods->stats.pods_full++;
		free_pod(pod);
		return;
	}
	if (hashmap__set(pods->by_uid, (uintptr_t)pod->uid, pod, &old_key, &old)) {
		pods->stats.pods_full++;
		free_pod(pod);
		return;
	}
	free_pod(old);
}

static void remove_pod(struct kubernetes_pods *pods, const char *uid)
{
	void *old;

	if (hashmap__delete(pods->by_uid, (uintptr_t)uid, NULL, &old))
		free_pod(old);
}

static void copy_resource_version(struct json_object *object,
				  char resource_version[KUBERNETES_RESOURCE_VERSION_MAX])
{
	const char *version = string_at(object, "metadata", "resourceVersion");

	if (version && strlen(version) < KUBERNETES_RESOURCE_VERSION_MAX)
		strcpy(resource_version, version);
}

/* Parses length bytes of JSON into an object; NULL when they are not one JSON object. */
static struct json_object *parse_object(const char *json, size_t length)
{
	struct json_tokener *tokener = json_tokener_new();
	struct json_object *object;

	if (!tokener)
		return NULL;
	object = length <= INT32_MAX ? json_tokener_parse_ex(tokener, json, (int)length) : NULL;
	if (object && (json_tokener_get_error(tokener) != json_tokener_success ||
		       !json_object_is_type(object, json_type_object))) {
		json_object_put(object);
		object = NULL;
	}
	json_tokener_free(tokener);
	return object;
}

void kubernetes_pods__begin_list(struct kubernetes_pods *pods)
{
	pthread_mutex_lock(&pods->lock);
	pods->list_generation++;
	pthread_mutex_unlock(&pods->lock);
}

int kubernetes_pods__add_page(struct kubernetes_pods *pods, const char *json, size_t length,
			      char resource_version[KUBERNETES_RESOURCE_VERSION_MAX],
			      char *continue_token, size_t continue_size)
{
	struct json_object *page = parse_object(json, length), *items;
	const char *next;

	if (!page || !json_object_object_get_ex(page, "items", &items) ||
	    !json_object_is_type(items, json_type_array)) {
		json_object_put(page);
		pthread_mutex_lock(&pods->lock);
		pods->stats.malformed++;
		pthread_mutex_unlock(&pods->lock);
		return -EINVAL;
	}
	pthread_mutex_lock(&pods->lock);
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct pod *pod = read_pod(pods, json_object_array_get_idx(items, i));

		if (pod)
			store_pod(pods, pod);
	}
	pods->stats.pods = hashmap__size(pods->by_uid);
	pthread_mutex_unlock(&pods->lock);
	copy_resource_version(page, resource_version);
	next = string_at(page, "metadata", "continue");
	snprintf(continue_token, continue_size, "%s",
		 next && strlen(next) < continue_size ? next : "");
	json_object_put(page);
	return 0;
}

void kubernetes_pods__end_list(struct kubernetes_pods *pods)
{
	struct hashmap_iter iter = HASHMAP_ITER_INIT;
	void *value;

	pthread_mutex_lock(&pods->lock);
	while (hashmap__next(pods->by_uid, &iter, NULL, &value)) {
		struct pod *pod = value;

		/* Deleting the entry just returned is allowed. */
		if (pod->list_generation != pods->list_generation)
			remove_pod(pods, pod->uid);
	}
	pods->stats.pods = hashmap__size(pods->by_uid);
	pthread_mutex_unlock(&pods->lock);
}

int kubernetes_pods__apply_event(struct kubernetes_pods *pods, const char *json, size_t length,
				 char resource_version[KUBERNETES_RESOURCE_VERSION_MAX],
				 char *error, size_t error_size)
{
	struct json_object *event = parse_object(json, length), *object;
	const char *type = event ? string_at(event, "type", NULL) : NULL;
	int err = 0;

	if (!type || !json_object_object_get_ex(event, "object", &object) ||
	    !json_object_is_type(object, json_type_object)) {
		err = -EINVAL;
		goto out;
	}
	if (!strcmp(type, "ERROR")) {
		struct json_object *code;
		const char *message = string_at(object, "message", NULL);

		snprintf(error, error_size, "%s", message ? message : "no message");
		err = json_object_object_get_ex(object, "code", &code) &&
				      json_object_get_int(code) == 410
			      ? -ESTALE
			      : -EPROTO;
		goto out;
	}
	pthread_mutex_lock(&pods->lock);
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		struct pod *pod = read_pod(pods, object);

		if (pod)
			store_pod(pods, pod);
	} else if (!strcmp(type, "DELETED")) {
		const char *uid = string_at(object, "metadata", "uid");

		if (uid)
			remove_pod(pods, uid);
	} else if (strcmp(type, "BOOKMARK")) {
		pods->stats.malformed++;
	}
	pods->stats.events++;
	pods->stats.pods = hashmap__size(pods->by_uid);
	pthread_mutex_unlock(&pods->lock);
	copy_resource_version(object, resource_version);
out:
	if (err == -EINVAL) {
		pthread_mutex_lock(&pods->lock);
		pods->stats.malformed++;
		pthread_mutex_unlock(&pods->lock);
	}
	json_object_put(event);
	return err;
}

/* prefix + name with what Prometheus's label names cannot hold made '_'. */
static int set_sanitized(struct label_set *labels, const char *prefix, const char *name,
			 const char *value)
{
	char label[320];
	size_t length = strlen(prefix);

	snprintf(label, sizeof(label), "%s%s", prefix, name);
	for (char *c = label + length; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			*c = '_';
	return label_set__set(labels, label, value);
}

static int add_pairs(struct label_set *labels, const struct pair *pairs, size_t count,
		     const char *kind)
{
	char prefix[64], present[64];
	int err = 0;

	snprintf(prefix, sizeof(prefix), "__meta_kubernetes_pod_%s_", kind);
	snprintf(present, sizeof(present), "__meta_kubernetes_pod_%spresent_", kind);
	for (size_t i = 0; i < count && !err; i++) {
		err = set_sanitized(labels, prefix, pairs[i].name, pairs[i].value);
		if (!err)
			err = set_sanitized(labels, present, pairs[i].name, "true");
	}
	return err;
}

/* pod's labels (locked by the caller); container may be NULL. */
static int add_pod_labels(struct label_set *labels, const struct pod *pod,
			  const struct container *container)
{
	const struct {
		const char *name, *value;
	} fields[] = {
		{ "__meta_kubernetes_namespace", pod->namespace },
		{ "__meta_kubernetes_pod_name", pod->name },
		{ "__meta_kubernetes_node_name", pod->node_name },
		{ "__meta_kubernetes_pod_ip", pod->ip },
		{ "__meta_kubernetes_pod_controller_kind", pod->controller_kind },
		{ "__meta_kubernetes_pod_controller_name", pod->controller_name },
		{ "__meta_kubernetes_pod_container_name", container ? container->name : NULL },
	};
	int err = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && !err; i++)
		if (fields[i].value)
			err = label_set__set(labels, fields[i].name, fields[i].value);
	if (!err)
		err = add_pairs(labels, pod->labels, pod->label_count, "label");
	if (!err)
		err = add_pairs(labels, pod->annotations, pod->annotation_count, "annotation");
	return err;
}

int kubernetes_pods__annotate(struct kubernetes_pods *pods, struct label_set *labels)
{
	const char *uid = label_set__get(labels, "__meta_kubernetes_pod_uid");
	const char *container_id = label_set__get(labels, "__meta_container_id");
	const struct container *container = NULL;
	const struct pod *pod;
	void *value;
	int err;

	if (!uid)
		return 0;
	pthread_mutex_lock(&pods->lock);
	if (!hashmap__find(pods->by_uid, (uintptr_t)uid, &value)) {
		pods->stats.lookups_missed++;
		pthread_mutex_unlock(&pods->lock);
		return 1;
	}
	pod = value;
	for (size_t i = 0; container_id && i < pod->container_count; i++)
		if (!strcmp(pod->containers[i].id, container_id))
			container = &pod->containers[i];
	err = add_pod_labels(labels, pod, container);
	if (!err && container_id && !container) {
		/* The kubelet writes a container's ID to the pod's status after it starts. */
		pods->stats.lookups_missed++;
		err = 1;
	}
	pthread_mutex_unlock(&pods->lock);
	return err;
}

int kubernetes_status_message(const char *json, size_t length, char *buf, size_t size)
{
	struct json_object *status = parse_object(json, length);
	const char *message = status ? string_at(status, "message", NULL) : NULL;

	if (message)
		snprintf(buf, size, "%s", message);
	json_object_put(status);
	return message ? 0 : -EINVAL;
}

void kubernetes_pods__stats(struct kubernetes_pods *pods, struct kubernetes_pods_stats *ret_stats)
{
	pthread_mutex_lock(&pods->lock);
	*ret_stats = pods->stats;
	pthread_mutex_unlock(&pods->lock);
}
