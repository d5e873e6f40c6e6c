// SPDX-License-Identifier: Apache-2.0
/* The config file: YAML through libyaml's document loader, checked with lines. */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "agent/config.h"
#include "lib/array.h"
#include "symbolizer/process_files.h"

/* What reading one file needs: the document, and where errors go. */
struct loader {
	const char *path;
	yaml_document_t *document;
	struct kiln_config *config;
	size_t setting_capacity;
	char *error;
	size_t error_size;
};

static int fail(struct loader *loader, const yaml_node_t *node, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct loader *loader, const yaml_node_t *node, const char *format, ...)
{
	size_t n = snprintf(loader->error, loader->error_size, "%s:%zu: ", loader->path,
			    node ? node->start_mark.line + 1 : 1);
	va_list args;

	if (n >= loader->error_size)
		return -EINVAL;
	va_start(args, format);
	vsnprintf(loader->error + n, loader->error_size - n, format, args);
	va_end(args);
	return -EINVAL;
}

static yaml_node_t *node(struct loader *loader, int id)
{
	return yaml_document_get_node(loader->document, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/*
 * The file's bytes: a regular file (checked before it is opened, so a FIFO
 * cannot block the start), at most CONFIG_MAX_BYTES.
 */
static int read_file(const char *path, char **ret, size_t *ret_size, char *error, size_t size)
{
	int fd = process_files_open_regular(path);
	struct stat st;
	ssize_t n = -1;
	char *data = NULL;
	const char *why;

	if (fd < 0) {
		snprintf(error, size, "%s: %s", path,
			 fd == -EPERM ? "not a regular file" : strerror(-fd));
		return fd;
	}
	if (fstat(fd, &st))
		why = strerror(errno);
	else if (st.st_size > CONFIG_MAX_BYTES)
		why = "larger than 1 MiB";
	else if (!(data = malloc(st.st_size + 1)))
		why = "out of memory";
	else if ((n = read(fd, data, st.st_size + 1)) < 0)
		why = strerror(errno);
	else if (n > st.st_size)
		why = "grew while read";
	else
		why = NULL;
	close(fd);
	if (why) {
		snprintf(error, size, "%s: %s", path, why);
		free(data);
		return -EINVAL;
	}
	*ret = data;
	*ret_size = n;
	return 0;
}

static int add_setting(struct loader *loader, const char *name, const yaml_node_t *value)
{
	struct kiln_config *config = loader->config;
	const char *text = scalar(value);

	if (!text)
		return fail(loader, value, "%s: a value or a list of values", name);
	if (config->setting_count == CONFIG_MAX_SETTINGS)
		return fail(loader, value, "more than %d settings", CONFIG_MAX_SETTINGS);
	if (ARRAY_RESERVE_ONE(config->settings, config->setting_count, loader->setting_capacity,
			      32))
		return -ENOMEM;
	config->settings[config->setting_count++] = (struct config_setting){
		.name = name,
		.value = text,
		.line = value->start_mark.line + 1,
	};
	return 0;
}

/* "frequency: 99" or "pid: [1, 2]": one setting per value. */
static int setting(struct loader *loader, const char *name, const yaml_node_t *value)
{
	if (value->type != YAML_SEQUENCE_NODE)
		return add_setting(loader, name, value);
	for (yaml_node_item_t *item = value->data.sequence.items.start;
	     item < value->data.sequence.items.top; item++) {
		int err = add_setting(loader, name, node(loader, *item));

		if (err)
			return err;
	}
	return 0;
}

/* A rule's source_labels: a list of names (or one name). */
static int source_labels(struct loader *loader, const char *where, const yaml_node_t *value,
			 const char **names, size_t *count)
{
	if (scalar(value)) {
		names[(*count)++] = scalar(value);
		return 0;
	}
	if (value->type != YAML_SEQUENCE_NODE)
		return fail(loader, value, "%s.source_labels: a list of label names", where);
	for (yaml_node_item_t *item = value->data.sequence.items.start;
	     item < value->data.sequence.items.top; item++) {
		const char *name = scalar(node(loader, *item));

		if (!name)
			return fail(loader, value, "%s.source_labels: a list of label names",
				    where);
		if (*count == CONFIG_MAX_SOURCE_LABELS)
			return fail(loader, value, "%s.source_labels: more than %d", where,
				    CONFIG_MAX_SOURCE_LABELS);
		names[(*count)++] = name;
	}
	return 0;
}

/* Where each field of a rule was, so that the rule's error names its line. */
struct rule_lines {
	const yaml_node_t *fields[RELABEL_FIELD__COUNT];
};

static int rule_field(struct loader *loader, const char *where, const char *key,
		      const yaml_node_t *value, struct relabel_spec *spec, const char **names,
		      struct rule_lines *lines)
{
	const char **text_fields[] = {
		[RELABEL_FIELD_ACTION] = &spec->action,
		[RELABEL_FIELD_SEPARATOR] = &spec->separator,
		[RELABEL_FIELD_REGEX] = &spec->regex,
		[RELABEL_FIELD_TARGET_LABEL] = &spec->target_label,
		[RELABEL_FIELD_REPLACEMENT] = &spec->replacement,
	};

	for (int f = 0; f < RELABEL_FIELD__COUNT; f++) {
		if (strcmp(key, relabel_field_name(f)))
			continue;
		lines->fields[f] = value;
		if (f == RELABEL_FIELD_SOURCE_LABELS)
			return source_labels(loader, where, value, names, &spec->source_count);
		if (!scalar(value))
			return fail(loader, value, "%s.%s: a single value", where, key);
		if (f == RELABEL_FIELD_MODULUS) {
			char *end;

			errno = 0;
			spec->modulus = strtoull(scalar(value), &end, 10);
			if (errno || *end || !*scalar(value) || *scalar(value) == '-')
				return fail(loader, value, "%s.modulus: '%s' is not a whole number",
					    where, scalar(value));
			return 0;
		}
		*text_fields[f] = scalar(value);
		return 0;
	}
	return fail(loader, value, "%s: unknown field '%s'", where, key);
}

static int relabel_rule(struct loader *loader, size_t index, const yaml_node_t *rule)
{
	const char *names[CONFIG_MAX_SOURCE_LABELS];
	struct relabel_spec spec = { .source_labels = names };
	struct rule_lines lines = { 0 };
	enum relabel_field field;
	char where[48], reason[256];
	int err;

	snprintf(where, sizeof(where), "relabel_configs[%zu]", index);
	if (rule->type != YAML_MAPPING_NODE)
		return fail(loader, rule, "%s: a mapping of fields (action, regex, ...)", where);
	for (yaml_node_pair_t *pair = rule->data.mapping.pairs.start;
	     pair < rule->data.mapping.pairs.top; pair++) {
		const yaml_node_t *key = node(loader, pair->key);

		if (!scalar(key))
			return fail(loader, key, "%s: a field name must be text", where);
		err = rule_field(loader, where, scalar(key), node(loader, pair->value), &spec,
				 names, &lines);
		if (err)
			return err;
	}
	err = relabel_rules__add(loader->config->rules, &spec, &field, reason, sizeof(reason));
	if (err == -EINVAL)
		return fail(loader, lines.fields[field] ? lines.fields[field] : rule, "%s.%s: %s",
			    where, relabel_field_name(field), reason);
	return err;
}

static int relabel_configs(struct loader *loader, const yaml_node_t *value)
{
	if (value->type != YAML_SEQUENCE_NODE)
		return fail(loader, value, "relabel_configs: a list of rules");
	for (yaml_node_item_t *item = value->data.sequence.items.start;
	     item < value->data.sequence.items.top; item++) {
		size_t index = item - value->data.sequence.items.start;
		int err;

		if (index == CONFIG_MAX_RULES)
			return fail(loader, value, "relabel_configs: more than %d rules",
				    CONFIG_MAX_RULES);
		err = relabel_rule(loader, index, node(loader, *item));
		if (err)
			return err;
	}
	return 0;
}

static int load_root(struct loader *loader)
{
	const yaml_node_t *root = yaml_document_get_root_node(loader->document);

	if (!root || (scalar(root) && !*scalar(root)))
		return 0; /* an empty file */
	if (root->type != YAML_MAPPING_NODE)
		return fail(loader, root, "a mapping of settings (name: value) at the top");
	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		const yaml_node_t *key = node(loader, pair->key),
				  *value = node(loader, pair->value);
		int err;

		if (!scalar(key))
			return fail(loader, key, "a setting's name must be text");
		if (!strcmp(scalar(key), "relabel_configs"))
			err = relabel_configs(loader, value);
		else
			err = setting(loader, scalar(key), value);
		if (err)
			return err;
	}
	return 0;
}

/* libyaml's own reading: a syntax error names its line. */
static int parse(struct loader *loader, const char *data, size_t size)
{
	yaml_parser_t parser;
	int err = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, size);
	if (!yaml_parser_load(&parser, loader->document)) {
		snprintf(loader->error, loader->error_size, "%s:%zu: %s%s%s", loader->path,
			 parser.problem_mark.line + 1, parser.problem ? parser.problem : "bad YAML",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		err = -EINVAL;
	}
	yaml_parser_delete(&parser);
	return err;
}

int config_load(const char *path, struct kiln_config **ret_config, char *error, size_t size)
{
	struct kiln_config *config = calloc(1, sizeof(*config));
	struct loader loader = { path, NULL, config, 0, error, size };
	char *data = NULL;
	size_t length = 0;
	int err;

	if (!config)
		return -ENOMEM;
	config->path = strdup(path);
	config->rules = relabel_rules__new();
	config->document = loader.document = calloc(1, sizeof(yaml_document_t));
	if (!config->path || !config->rules || !config->document) {
		free(config->document);
		config->document = NULL;
		config_free(config);
		return -ENOMEM;
	}
	err = read_file(path, &data, &length, error, size);
	if (!err)
		err = parse(&loader, data, length);
	free(data);
	if (err) {
		free(config->document);
		config->document = NULL;
		config_free(config);
		return err;
	}
	err = load_root(&loader);
	if (err) {
		if (err == -ENOMEM)
			snprintf(error, size, "%s: out of memory", path);
		config_free(config);
		return err;
	}
	*ret_config = config;
	return 0;
}

void config_free(struct kiln_config *config)
{
	if (!config)
		return;
	if (config->document) {
		yaml_document_delete(config->document);
		free(config->document);
	}
	relabel_rules__free(config->rules);
	free(config->settings);
	free(config->path);
	free(config);
}
