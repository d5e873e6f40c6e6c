// SPDX-License-Identifier: Apache-2.0
/* Prometheus relabeling over label sets, with PCRE2 for the regexes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <md5.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metadata/relabel.h"
#include "lib/array.h"

/* Backtracking steps one match may take: far beyond any sane rule on a label value. */
#define MATCH_LIMIT 100000
#define DEPTH_LIMIT 10000
/* A replacement's expansion, or a joined source value, past this is cut. */
#define MAX_VALUE 4096

#define RELABEL_ACTIONS(X)                                                                         \
	X(REPLACE, "replace")                                                                      \
	X(KEEP, "keep")                                                                            \
	X(DROP, "drop")                                                                            \
	X(HASHMOD, "hashmod")                                                                      \
	X(LABELMAP, "labelmap")                                                                    \
	X(LABELDROP, "labeldrop")                                                                  \
	X(LABELKEEP, "labelkeep")                                                                  \
	X(LOWERCASE, "lowercase")                                                                  \
	X(UPPERCASE, "uppercase")                                                                  \
	X(KEEPEQUAL, "keepequal")                                                                  \
	X(DROPEQUAL, "dropequal")

#define ACTION_ENUM(id, text) ACTION_##id,
enum action { RELABEL_ACTIONS(ACTION_ENUM) ACTION__COUNT };
#undef ACTION_ENUM

#define ACTION_TEXT(id, text) text,
static const char *const action_names[] = { RELABEL_ACTIONS(ACTION_TEXT) };
#undef ACTION_TEXT

#define FIELD_TEXT(id, text) text,
static const char *const field_names[] = { RELABEL_FIELDS(FIELD_TEXT) };
#undef FIELD_TEXT

static const char DEFAULT_SEPARATOR[] = ";";
static const char DEFAULT_REGEX[] = "(.*)";
static const char DEFAULT_REPLACEMENT[] = "$1";

struct rule {
	enum action action;
	char **source_labels;
	size_t source_count;
	char *separator;
	pcre2_code *regex;
	char *target_label; /* NULL when the rule has none */
	char *replacement;
	uint64_t modulus;
};

struct relabel_rules {
	struct rule *rules;
	size_t count;
	size_t capacity;
	pcre2_match_context *context;
};

const char *relabel_field_name(enum relabel_field field)
{
	return field < RELABEL_FIELD__COUNT ? field_names[field] : "?";
}

struct relabel_rules *relabel_rules__new(void)
{
	struct relabel_rules *rules = calloc(1, sizeof(*rules));

	if (!rules)
		return NULL;
	rules->context = pcre2_match_context_create(NULL);
	if (!rules->context) {
		free(rules);
		return NULL;
	}
	pcre2_set_match_limit(rules->context, MATCH_LIMIT);
	pcre2_set_depth_limit(rules->context, DEPTH_LIMIT);
	return rules;
}

static void rule_free(struct rule *rule)
{
	for (size_t i = 0; i < rule->source_count; i++)
		free(rule->source_labels[i]);
	free(rule->source_labels);
	free(rule->separator);
	pcre2_code_free(rule->regex);
	free(rule->target_label);
	free(rule->replacement);
}

void relabel_rules__free(struct relabel_rules *rules)
{
	if (!rules)
		return;
	for (size_t i = 0; i < rules->count; i++)
		rule_free(&rules->rules[i]);
	free(rules->rules);
	pcre2_match_context_free(rules->context);
	free(rules);
}

size_t relabel_rules__count(const struct relabel_rules *rules)
{
	return rules->count;
}

static int fail(enum relabel_field *field, enum relabel_field which, char *error, size_t size,
		const char *format, ...) __attribute__((format(printf, 5, 6)));

static int fail(enum relabel_field *field, enum relabel_field which, char *error, size_t size,
		const char *format, ...)
{
	va_list args;

	*field = which;
	va_start(args, format);
	vsnprintf(error, size, format, args);
	va_end(args);
	return -EINVAL;
}

static int parse_action(const char *text, enum action *action)
{
	for (int i = 0; i < ACTION__COUNT; i++) {
		if (!strcasecmp(text, action_names[i])) {
			*action = i;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Prometheus's rule for what replace's target_label and labelmap's
 * replacement may be: label-name characters and $name / ${name} references.
 */
static bool is_label_template(const char *text)
{
	if (!*text)
		return false;
	for (const char *c = text; *c;) {
		if (*c == '$') {
			bool brace = *++c == '{';
			const char *name = c += brace;

			while (*c == '_' || isalnum((unsigned char)*c))
				c++;
			if (c == name || (brace && *c++ != '}'))
				return false;
		} else if (*c == '_' || isalnum((unsigned char)*c)) {
			c++;
		} else {
			return false;
		}
	}
	return !isdigit((unsigned char)text[0]);
}

static int compile_regex(const char *text, pcre2_code **ret, char *error, size_t size)
{
	int code;
	PCRE2_SIZE offset;
	/* Anchored at both ends, as Prometheus anchors ^(?:regex)$; UTF-8, bad bytes never match. */
	uint32_t options = PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;

	*ret = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, options, &code, &offset,
			     NULL);
	if (*ret)
		return 0;
	PCRE2_UCHAR message[160];

	pcre2_get_error_message(code, message, sizeof(message));
	snprintf(error, size, "'%s' is not a valid regex at offset %zu: %s", text, (size_t)offset,
		 (const char *)message);
	return -EINVAL;
}

/* Whether a config set a field to other than its default, as Prometheus compares. */
static bool is_set(const char *value, const char *otherwise)
{
	return value && strcmp(value, otherwise);
}

/*
 * Prometheus's checks of a rule's fields against its action, no stricter:
 * what Prometheus ignores (a target_label on keep) is ignored here too, so
 * a rule copied from a Prometheus config reads the same.
 */
static int check_spec(const struct relabel_spec *spec, enum action action,
		      enum relabel_field *field, char *error, size_t size)
{
	const char *name = action_names[action];
	const char *target = spec->target_label;
	bool needs_target = action == ACTION_REPLACE || action == ACTION_HASHMOD ||
			    action == ACTION_LOWERCASE || action == ACTION_UPPERCASE ||
			    action == ACTION_KEEPEQUAL || action == ACTION_DROPEQUAL;
	bool plain_target = needs_target && action != ACTION_REPLACE && action != ACTION_HASHMOD;
	bool regex, separator, replacement;

	for (size_t i = 0; i < spec->source_count; i++) {
		if (!label_name_is_valid(spec->source_labels[i]))
			return fail(field, RELABEL_FIELD_SOURCE_LABELS, error, size,
				    "'%s' is not a valid label name", spec->source_labels[i]);
	}
	if (needs_target && (!target || !*target))
		return fail(field, RELABEL_FIELD_TARGET_LABEL, error, size,
			    "the %s action requires a target_label", name);
	if (plain_target && !label_name_is_valid(target))
		return fail(field, RELABEL_FIELD_TARGET_LABEL, error, size,
			    "'%s' is not a valid label name", target);
	if ((action == ACTION_REPLACE || action == ACTION_HASHMOD) && !is_label_template(target))
		return fail(field, RELABEL_FIELD_TARGET_LABEL, error, size,
			    "'%s' is not a valid label name or $-template", target);
	if (action == ACTION_HASHMOD && !spec->modulus)
		return fail(field, RELABEL_FIELD_MODULUS, error, size,
			    "the hashmod action requires a non-zero modulus");
	regex = is_set(spec->regex, DEFAULT_REGEX);
	separator = is_set(spec->separator, DEFAULT_SEPARATOR);
	replacement = is_set(spec->replacement, DEFAULT_REPLACEMENT);

	if ((action == ACTION_LOWERCASE || action == ACTION_UPPERCASE) && replacement)
		return fail(field, RELABEL_FIELD_REPLACEMENT, error, size,
			    "the %s action takes no replacement", name);
	if ((action == ACTION_KEEPEQUAL || action == ACTION_DROPEQUAL) &&
	    (regex || separator || replacement || spec->modulus))
		return fail(field,
			    regex	  ? RELABEL_FIELD_REGEX
			    : separator	  ? RELABEL_FIELD_SEPARATOR
			    : replacement ? RELABEL_FIELD_REPLACEMENT
					  : RELABEL_FIELD_MODULUS,
			    error, size, "the %s action takes only source_labels and target_label",
			    name);
	if ((action == ACTION_LABELDROP || action == ACTION_LABELKEEP) &&
	    (spec->source_count || (target && *target) || separator || replacement ||
	     spec->modulus))
		return fail(field,
			    spec->source_count	? RELABEL_FIELD_SOURCE_LABELS
			    : target && *target ? RELABEL_FIELD_TARGET_LABEL
			    : separator		? RELABEL_FIELD_SEPARATOR
			    : replacement	? RELABEL_FIELD_REPLACEMENT
						: RELABEL_FIELD_MODULUS,
			    error, size, "the %s action takes only a regex", name);
	if (action == ACTION_LABELMAP && replacement && !is_label_template(spec->replacement))
		return fail(field, RELABEL_FIELD_REPLACEMENT, error, size,
			    "'%s' is not a valid label name or $-template", spec->replacement);
	return 0;
}

static char *dup_or(const char *text, const char *otherwise)
{
	return strdup(text ? text : otherwise);
}

int relabel_rules__add(struct relabel_rules *rules, const struct relabel_spec *spec,
		       enum relabel_field *field, char *error, size_t error_size)
{
	struct rule rule = { 0 };
	int err;

	if (parse_action(spec->action ? spec->action : "replace", &rule.action))
		return fail(field, RELABEL_FIELD_ACTION, error, error_size, "unknown action '%s'",
			    spec->action);
	err = check_spec(spec, rule.action, field, error, error_size);
	if (err)
		return err;
	if (compile_regex(spec->regex ? spec->regex : DEFAULT_REGEX, &rule.regex, error,
			  error_size)) {
		*field = RELABEL_FIELD_REGEX;
		return -EINVAL;
	}
	rule.modulus = spec->modulus;
	rule.separator = dup_or(spec->separator, DEFAULT_SEPARATOR);
	rule.replacement = dup_or(spec->replacement, DEFAULT_REPLACEMENT);
	rule.target_label = spec->target_label ? strdup(spec->target_label) : NULL;

	rule.source_labels = calloc(spec->source_count ? spec->source_count : 1, sizeof(char *));
	err = !rule.separator || !rule.replacement || !rule.source_labels ||
	      (spec->target_label && !rule.target_label);
	for (size_t i = 0; !err && i < spec->source_count; i++) {
		rule.source_labels[i] = strdup(spec->source_labels[i]);
		err = !rule.source_labels[rule.source_count++];
	}
	if (err || ARRAY_RESERVE_ONE(rules->rules, rules->count, rules->capacity, 8)) {
		rule_free(&rule);
		return -ENOMEM;
	}
	rules->rules[rules->count++] = rule;
	return 0;
}

/* Text grown by appending, cut at MAX_VALUE. */
struct text {
	char data[MAX_VALUE + 1];
	size_t length;
};

static void append(struct text *text, const char *bytes, size_t length)
{
	size_t room = MAX_VALUE - text->length;

	if (length > room)
		length = room;
	memcpy(text->data + text->length, bytes, length);
	text->length += length;
	text->data[text->length] = '\0';
}

/* The source labels' values joined by the separator; an absent label is "". */
static void source_value(const struct rule *rule, const struct label_set *labels,
			 struct text *value)
{
	value->length = 0;
	value->data[0] = '\0';
	for (size_t i = 0; i < rule->source_count; i++) {
		const char *v = label_set__get(labels, rule->source_labels[i]);

		if (i)
			append(value, rule->separator, strlen(rule->separator));
		if (v)
			append(value, v, strlen(v));
	}
}

/* Whether the rule's regex matches all of subject; match data holds its groups. */
static bool matches(const struct relabel_rules *rules, const struct rule *rule, const char *subject,
		    pcre2_match_data *data, struct relabel_counters *counters)
{
	int rc = pcre2_match(rule->regex, (PCRE2_SPTR)subject, strlen(subject), 0, 0, data,
			     rules->context);

	if ((rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) && counters)
		counters->match_limit++;
	return rc >= 0;
}

/*
 * Go's regexp.Expand: $$ is a $; $name and ${name} the named or numbered
 * group ($1x is group "1x", which does not exist: empty); a $ not
 * followed by a name is itself.
 */
static void expand(const struct rule *rule, const char *template, const char *subject,
		   pcre2_match_data *data, struct text *out)
{
	PCRE2_SIZE *groups = pcre2_get_ovector_pointer(data);
	uint32_t group_count = pcre2_get_ovector_count(data);

	out->length = 0;
	out->data[0] = '\0';
	for (const char *c = template; *c;) {
		const char *dollar = strchr(c, '$');

		if (!dollar) {
			append(out, c, strlen(c));
			break;
		}
		append(out, c, dollar - c);
		c = dollar + 1;
		if (*c == '$') {
			append(out, "$", 1);
			c++;
			continue;
		}
		bool brace = *c == '{';
		const char *name = c + brace, *end = name;

		while (*end == '_' || isalnum((unsigned char)*end))
			end++;
		if (end == name || (brace && *end != '}')) {
			append(out, "$", 1); /* malformed: the $ is text */
			continue;
		}
		c = end + brace;

		char group_name[128];
		size_t length = end - name;
		long number = -1;

		if (length >= sizeof(group_name))
			continue;
		memcpy(group_name, name, length);
		group_name[length] = '\0';
		if (strspn(group_name, "0123456789") == length && length <= 8)
			number = strtol(group_name, NULL, 10);
		else
			number = pcre2_substring_number_from_name(rule->regex,
								  (PCRE2_SPTR)group_name);
		if (number < 0 || (uint32_t)number >= group_count ||
		    groups[2 * number] == PCRE2_UNSET)
			continue;
		append(out, subject + groups[2 * number],
		       groups[2 * number + 1] - groups[2 * number]);
	}
}

/* Prometheus's hashmod: the MD5 digest's last 8 bytes, big-endian, modulo. */
static uint64_t hash_mod(const char *value, uint64_t modulus)
{
	uint8_t digest[MD5_DIGEST_LENGTH];
	uint64_t sum = 0;
	MD5_CTX context;

	MD5Init(&context);
	MD5Update(&context, (const uint8_t *)value, strlen(value));
	MD5Final(digest, &context);
	for (int i = 8; i < MD5_DIGEST_LENGTH; i++)
		sum = sum << 8 | digest[i];
	return sum % modulus;
}

static int change_case(struct label_set *labels, const char *target, const char *value,
		       int (*convert)(int))
{
	char copy[MAX_VALUE + 1];
	size_t i;

	for (i = 0; value[i] && i < MAX_VALUE; i++)
		copy[i] = (char)convert((unsigned char)value[i]);
	copy[i] = '\0';
	return label_set__set(labels, target, copy);
}

static int replace(const struct rule *rule, struct label_set *labels, const struct text *value,
		   pcre2_match_data *data)
{
	struct text target, result;

	expand(rule, rule->target_label, value->data, data, &target);
	if (!label_name_is_valid(target.data))
		return 0;
	expand(rule, rule->replacement, value->data, data, &result);
	return label_set__set(labels, target.data, result.data);
}

/* labelmap: every label whose name matches is copied to the replacement's name. */
static int label_map(const struct relabel_rules *rules, const struct rule *rule,
		     struct label_set *labels, pcre2_match_data *data,
		     struct relabel_counters *counters)
{
	struct label_set before = { 0 };
	struct text name;
	int err = label_set__copy(&before, labels);

	for (size_t i = 0; !err && i < before.count; i++) {
		if (!matches(rules, rule, before.labels[i].name, data, counters))
			continue;
		expand(rule, rule->replacement, before.labels[i].name, data, &name);
		if (label_name_is_valid(name.data))
			err = label_set__set(labels, name.data, before.labels[i].value);
	}
	label_set__clear(&before);
	return err;
}

/* labeldrop / labelkeep: removes labels whose name matches (drop) or does not (keep). */
static void label_filter(const struct relabel_rules *rules, const struct rule *rule,
			 struct label_set *labels, pcre2_match_data *data, bool keep,
			 struct relabel_counters *counters)
{
	for (size_t i = labels->count; i-- > 0;) {
		if (matches(rules, rule, labels->labels[i].name, data, counters) != keep)
			label_set__remove(labels, labels->labels[i].name);
	}
}

/* One rule: 1 to go on, 0 when it drops the labels, -ENOMEM. */
static int apply_rule(const struct relabel_rules *rules, const struct rule *rule,
		      struct label_set *labels, pcre2_match_data *data,
		      struct relabel_counters *counters)
{
	struct text value;
	const char *target_value;
	char number[24];

	source_value(rule, labels, &value);
	switch (rule->action) {
	case ACTION_DROP:
		return !matches(rules, rule, value.data, data, counters);
	case ACTION_KEEP:
		return matches(rules, rule, value.data, data, counters);
	case ACTION_DROPEQUAL:
	case ACTION_KEEPEQUAL:
		target_value = label_set__get(labels, rule->target_label);
		return !strcmp(target_value ? target_value : "", value.data) ==
		       (rule->action == ACTION_KEEPEQUAL);
	case ACTION_REPLACE:
		if (!matches(rules, rule, value.data, data, counters))
			return 1;
		return replace(rule, labels, &value, data) ?: 1;
	case ACTION_HASHMOD:
		snprintf(number, sizeof(number), "%llu",
			 (unsigned long long)hash_mod(value.data, rule->modulus));
		return label_set__set(labels, rule->target_label, number) ?: 1;
	case ACTION_LOWERCASE:
		return change_case(labels, rule->target_label, value.data, tolower) ?: 1;
	case ACTION_UPPERCASE:
		return change_case(labels, rule->target_label, value.data, toupper) ?: 1;
	case ACTION_LABELMAP:
		return label_map(rules, rule, labels, data, counters) ?: 1;
	case ACTION_LABELDROP:
	case ACTION_LABELKEEP:
		label_filter(rules, rule, labels, data, rule->action == ACTION_LABELKEEP, counters);
		return 1;
	case ACTION__COUNT:
		break;
	}
	return 1;
}

int relabel_rules__apply(const struct relabel_rules *rules, struct label_set *labels,
			 struct relabel_counters *counters)
{
	pcre2_match_data *data;
	int result = 1;

	if (!rules->count)
		return 1;
	data = pcre2_match_data_create(32, NULL);
	if (!data)
		return -ENOMEM;
	for (size_t i = 0; result == 1 && i < rules->count; i++)
		result = apply_rule(rules, &rules->rules[i], labels, data, counters);
	pcre2_match_data_free(data);
	return result;
}
