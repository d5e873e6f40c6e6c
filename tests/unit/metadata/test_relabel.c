// SPDX-License-Identifier: Apache-2.0
/*
 * Relabeling against Prometheus's documented behaviour: each case gives
 * labels in, one or two rules, and the labels out (or that they are
 * dropped); then the checks a config's rule must pass, and the bounds.
 */
#include <errno.h>
#include <string.h>

#include "agent/metadata/relabel.h"
#include "tests/unit/testing.h"

#define MAX_LABELS 8
#define MAX_RULES 3

/* "name=value" pairs, NULL-terminated; the expected output NULL when dropped. */
struct relabel_case {
	const char *what;
	const char *in[MAX_LABELS];
	struct relabel_spec rules[MAX_RULES];
	bool dropped;
	const char *out[MAX_LABELS];
};

#define SOURCES(...)                                                                               \
	.source_labels = (const char *const[]){ __VA_ARGS__ },                                     \
	.source_count = sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

static const struct relabel_case cases[] = {
	{ "replace copies with the default regex and replacement",
	  { "a=foo" },
	  { { SOURCES("a"), .target_label = "b" } },
	  false,
	  { "a=foo", "b=foo" } },
	{ "replace takes a group",
	  { "__meta_cgroup=/system.slice/docker-0123456789abcdef.scope" },
	  { { SOURCES("__meta_cgroup"), .regex = ".*/docker-([0-9a-f]{12}).*",
	      .target_label = "container" } },
	  false,
	  { "__meta_cgroup=/system.slice/docker-0123456789abcdef.scope",
	    "container=0123456789ab" } },
	{ "replace: no match leaves the labels",
	  { "a=foo", "b=keep" },
	  { { SOURCES("a"), .regex = "bar", .target_label = "b", .replacement = "x" } },
	  false,
	  { "a=foo", "b=keep" } },
	{ "the regex is anchored at both ends",
	  { "a=foobar", "b=keep" },
	  { { SOURCES("a"), .regex = "foo", .target_label = "b", .replacement = "x" },
	    { SOURCES("a"), .regex = "bar", .target_label = "b", .replacement = "y" } },
	  false,
	  { "a=foobar", "b=keep" } },
	{ "an empty replacement removes the target",
	  { "a=foo", "b=old" },
	  { { SOURCES("a"), .target_label = "b", .replacement = "" } },
	  false,
	  { "a=foo" } },
	{ "$1x is group '1x', which does not exist; ${1}x is group 1 then x",
	  { "a=foo" },
	  { { SOURCES("a"), .target_label = "b", .replacement = "$1x" },
	    { SOURCES("a"), .target_label = "c", .replacement = "${1}x" } },
	  false,
	  { "a=foo", "c=foox" } },
	{ "$$ is a literal $, a $ before no name is itself",
	  { "a=foo" },
	  { { SOURCES("a"), .target_label = "b", .replacement = "$$1-$-${1}" } },
	  false,
	  { "a=foo", "b=$1-$-foo" } },
	{ "named groups, and a target made from a group",
	  { "kv=env=prod" },
	  { { SOURCES("kv"), .regex = "(?P<key>[a-z]+)=(?P<value>.*)", .target_label = "${key}",
	      .replacement = "$value" } },
	  false,
	  { "env=prod", "kv=env=prod" } },
	{ "a target that expands to an invalid name is skipped",
	  { "kv=1bad=x" },
	  { { SOURCES("kv"), .regex = "([^=]*)=(.*)", .target_label = "$1", .replacement = "$2" } },
	  false,
	  { "kv=1bad=x" } },
	{ "source labels are joined by the separator, a missing one as empty",
	  { "a=x", "c=z" },
	  { { SOURCES("a", "b", "c"), .target_label = "j" },
	    { SOURCES("a", "c"), .separator = "/", .target_label = "k" } },
	  false,
	  { "a=x", "c=z", "j=x;;z", "k=x/z" } },
	{ "keep: a matching value is kept",
	  { "__meta_comm=nginx" },
	  { { .action = "keep", SOURCES("__meta_comm"), .regex = "nginx|redis" } },
	  false,
	  { "__meta_comm=nginx" } },
	{ "keep: any other value is dropped",
	  { "__meta_comm=nginx-worker" },
	  { { .action = "keep", SOURCES("__meta_comm"), .regex = "nginx|redis" } },
	  true },
	{ "drop: a matching value is dropped",
	  { "__meta_comm=sshd" },
	  { { .action = "drop", SOURCES("__meta_comm"), .regex = "ssh.*" } },
	  true },
	{ "drop on an absent label matches the empty value",
	  { "a=1" },
	  { { .action = "drop", SOURCES("missing"), .regex = "" } },
	  true },
	{ "keepequal keeps when the target equals the joined sources",
	  { "a=1", "b=1" },
	  { { .action = "keepequal", SOURCES("a"), .target_label = "b" } },
	  false,
	  { "a=1", "b=1" } },
	{ "keepequal drops when it differs",
	  { "a=1", "b=2" },
	  { { .action = "keepequal", SOURCES("a"), .target_label = "b" } },
	  true },
	{ "dropequal drops when equal",
	  { "a=1", "b=1" },
	  { { .action = "dropequal", SOURCES("a"), .target_label = "b" } },
	  true },
	{ "hashmod: MD5's last 8 bytes, big-endian, modulo",
	  { "a=foo", "b=10.0.0.1:9100", "c=web" },
	  { { .action = "hashmod", SOURCES("a"), .target_label = "h", .modulus = 1000 },
	    { .action = "hashmod", SOURCES("b", "c"), .target_label = "i", .modulus = 7 },
	    { .action = "hashmod", SOURCES("none"), .target_label = "j", .modulus = 1000 } },
	  false,
	  { "a=foo", "b=10.0.0.1:9100", "c=web", "h=696", "i=6", "j=958" } },
	{ "labelmap copies matching names, keeping the originals",
	  { "__meta_kubernetes_pod_label_app=web", "__meta_kubernetes_pod_label_tier=front",
	    "other=1" },
	  { { .action = "LabelMap", .regex = "__meta_kubernetes_pod_label_(.+)" } },
	  false,
	  { "__meta_kubernetes_pod_label_app=web", "__meta_kubernetes_pod_label_tier=front",
	    "app=web", "other=1", "tier=front" } },
	{ "labelmap with a replacement around the group",
	  { "__meta_x_a=1" },
	  { { .action = "labelmap", .regex = "__meta_x_(.*)", .replacement = "x_${1}_y" } },
	  false,
	  { "__meta_x_a=1", "x_a_y=1" } },
	{ "labeldrop removes matching names",
	  { "a=1", "ab=2", "b=3" },
	  { { .action = "labeldrop", .regex = "a.*" } },
	  false,
	  { "b=3" } },
	{ "labelkeep removes the others",
	  { "a=1", "ab=2", "b=3" },
	  { { .action = "labelkeep", .regex = "a.*" } },
	  false,
	  { "a=1", "ab=2" } },
	{ "lowercase and uppercase",
	  { "a=MiXeD-Case" },
	  { { .action = "lowercase", SOURCES("a"), .target_label = "l" },
	    { .action = "Uppercase", SOURCES("a"), .target_label = "u" } },
	  false,
	  { "a=MiXeD-Case", "l=mixed-case", "u=MIXED-CASE" } },
	{ "rules run in order, each on the labels the one before left",
	  { "__meta_systemd_unit=nginx.service" },
	  { { SOURCES("__meta_systemd_unit"), .regex = "(.*)\\.service",
	      .target_label = "service_name" },
	    { .action = "keep", SOURCES("service_name"), .regex = "nginx" },
	    { .action = "labeldrop", .regex = "__meta_.*" } },
	  false,
	  { "service_name=nginx" } },
};

/* Fills set from "name=value" strings. */
static void fill(struct label_set *set, const char *const *pairs)
{
	for (size_t i = 0; i < MAX_LABELS && pairs[i]; i++) {
		char name[128];
		const char *equals = strchr(pairs[i], '=');

		memcpy(name, pairs[i], equals - pairs[i]);
		name[equals - pairs[i]] = '\0';
		CHECK(label_set__set(set, name, equals + 1) == 0);
	}
}

static void check_labels(const char *what, const struct label_set *set, const char *const *want)
{
	size_t count = 0;

	while (count < MAX_LABELS && want[count])
		count++;
	if (set->count != count)
		fprintf(stderr, "%s: %zu labels, want %zu\n", what, set->count, count);
	CHECK(set->count == count);
	for (size_t i = 0; i < set->count && i < count; i++) {
		char got[512];

		snprintf(got, sizeof(got), "%s=%s", set->labels[i].name, set->labels[i].value);
		if (strcmp(got, want[i]))
			fprintf(stderr, "%s: label %zu\n", what, i);
		CHECK_STR(got, want[i]);
	}
}

static struct relabel_rules *build(const struct relabel_spec *specs, size_t count)
{
	struct relabel_rules *rules = relabel_rules__new();
	enum relabel_field field;
	char error[256];

	for (size_t i = 0; rules && i < count; i++) {
		if (!specs[i].action && !specs[i].target_label && !specs[i].regex)
			break; /* the case's unused rule slots */
		int err = relabel_rules__add(rules, &specs[i], &field, error, sizeof(error));

		if (err)
			fprintf(stderr, "rule %zu: %s: %s\n", i, relabel_field_name(field), error);
		CHECK(err == 0);
	}
	return rules;
}

static void test_cases(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct relabel_case *c = &cases[i];
		struct relabel_rules *rules = build(c->rules, MAX_RULES);
		struct label_set set = { 0 };
		int kept;

		fill(&set, c->in);
		kept = relabel_rules__apply(rules, &set, NULL);
		if (kept != !c->dropped)
			fprintf(stderr, "%s: apply gave %d\n", c->what, kept);
		CHECK(kept == !c->dropped);
		if (!c->dropped)
			check_labels(c->what, &set, c->out);
		label_set__clear(&set);
		relabel_rules__free(rules);
	}
}

/* Each bad rule is refused, naming the field a config file would be told about. */
static void test_bad_rules(void)
{
	const struct {
		struct relabel_spec spec;
		enum relabel_field field;
		const char *reason; /* part of the error text */
	} bad[] = {
		{ { .action = "rename" }, RELABEL_FIELD_ACTION, "unknown action 'rename'" },
		{ { .action = "hashmod", SOURCES("a"), .target_label = "h" },
		  RELABEL_FIELD_MODULUS,
		  "non-zero modulus" },
		{ { SOURCES("a") }, RELABEL_FIELD_TARGET_LABEL, "requires a target_label" },
		{ { SOURCES("a"), .target_label = "bad-name" },
		  RELABEL_FIELD_TARGET_LABEL,
		  "'bad-name' is not a valid" },
		{ { SOURCES("a"), .target_label = "t", .regex = "(unclosed" },
		  RELABEL_FIELD_REGEX,
		  "'(unclosed' is not a valid regex" },
		{ { SOURCES("0a"), .target_label = "t" },
		  RELABEL_FIELD_SOURCE_LABELS,
		  "'0a' is not a valid label name" },
		{ { .action = "labeldrop", SOURCES("a"), .regex = "x" },
		  RELABEL_FIELD_SOURCE_LABELS,
		  "takes only a regex" },
		{ { .action = "labelkeep", .regex = "x", .replacement = "y" },
		  RELABEL_FIELD_REPLACEMENT,
		  "takes only a regex" },
		{ { .action = "lowercase", SOURCES("a"), .target_label = "l", .replacement = "x" },
		  RELABEL_FIELD_REPLACEMENT,
		  "takes no replacement" },
		{ { .action = "keepequal", SOURCES("a"), .target_label = "b", .regex = "x" },
		  RELABEL_FIELD_REGEX,
		  "only source_labels and target_label" },
		{ { .action = "labelmap", .regex = "(.*)", .replacement = "a-$1" },
		  RELABEL_FIELD_REPLACEMENT,
		  "not a valid label name" },
	};
	struct relabel_rules *rules = relabel_rules__new();

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		enum relabel_field field = RELABEL_FIELD__COUNT;
		char error[256] = "";

		CHECK(relabel_rules__add(rules, &bad[i].spec, &field, error, sizeof(error)) ==
		      -EINVAL);
		if (field != bad[i].field || !strstr(error, bad[i].reason))
			fprintf(stderr, "bad rule %zu: %s: %s\n", i, relabel_field_name(field),
				error);
		CHECK(field == bad[i].field);
		CHECK(strstr(error, bad[i].reason) != NULL);
	}
	CHECK(relabel_rules__count(rules) == 0);
	/* What Prometheus accepts is accepted: defaults written out, a target on keep. */
	const struct relabel_spec fine[] = {
		{ .action = "keepequal",
		  SOURCES("a"),
		  .target_label = "b",
		  .regex = "(.*)",
		  .separator = ";",
		  .replacement = "$1" },
		{ .action = "keep", SOURCES("a"), .target_label = "ignored" },
		{ .action = "labeldrop", .regex = "x", .separator = ";" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fine); i++) {
		enum relabel_field field;
		char error[256];

		CHECK(relabel_rules__add(rules, &fine[i], &field, error, sizeof(error)) == 0);
	}
	CHECK(relabel_rules__count(rules) == ARRAY_SIZE(fine));
	CHECK_STR(relabel_field_name(RELABEL_FIELD_TARGET_LABEL), "target_label");
	relabel_rules__free(rules);
}

/*
 * A process controls its command line: a value that makes a backtracking
 * regex explode stops at the match limit, counts, and does not match.
 */
static void test_match_limit(void)
{
	const struct relabel_spec spec = { .action = "drop",
					   SOURCES("cmdline"),
					   .regex = "(a+)+b" };
	struct relabel_rules *rules = build(&spec, 1);
	struct relabel_counters counters = { 0 };
	struct label_set set = { 0 };
	char value[64];

	memset(value, 'a', 40);
	strcpy(value + 40, "Xb");
	label_set__set(&set, "cmdline", value);
	CHECK(relabel_rules__apply(rules, &set, &counters) == 1);
	CHECK(counters.match_limit == 1);
	/* The same rule still drops what it matches. */
	label_set__set(&set, "cmdline", "aaab");
	CHECK(relabel_rules__apply(rules, &set, &counters) == 0);
	CHECK(counters.match_limit == 1);
	label_set__clear(&set);
	relabel_rules__free(rules);
}

/* Bytes that are not UTF-8 never match and never crash; long values are cut, not overrun. */
static void test_hostile_values(void)
{
	const struct relabel_spec specs[] = {
		{ SOURCES("v"), .target_label = "copy" },
		{ .action = "uppercase", SOURCES("long"), .target_label = "upper" },
	};
	struct relabel_rules *rules = build(specs, ARRAY_SIZE(specs));
	struct label_set set = { 0 };
	static char long_value[10000];

	memset(long_value, 'x', sizeof(long_value) - 1);
	label_set__set(&set, "v", "\xff\xfe");
	label_set__set(&set, "long", long_value);
	CHECK(relabel_rules__apply(rules, &set, NULL) == 1);
	CHECK(label_set__get(&set, "copy") == NULL);
	CHECK(label_set__get(&set, "upper") && strlen(label_set__get(&set, "upper")) == 4096);
	label_set__clear(&set);
	relabel_rules__free(rules);
}

static void test_label_set(void)
{
	struct label_set set = { 0 }, copy = { 0 };

	CHECK(label_set__set(&set, "b", "2") == 0);
	CHECK(label_set__set(&set, "a", "1") == 0);
	CHECK(label_set__set(&set, "__meta_x", "m") == 0);
	CHECK(label_set__set(&set, "c", "") == 0); /* empty: no label */
	CHECK(set.count == 3);
	CHECK_STR(set.labels[0].name, "__meta_x");
	CHECK_STR(set.labels[1].name, "a");
	CHECK(label_set__copy(&copy, &set) == 0 && copy.count == 3);
	label_set__remove_prefix(&set, "__meta_");
	CHECK(set.count == 2 && label_set__get(&set, "__meta_x") == NULL);
	CHECK(label_set__set(&set, "a", "") == 0 && label_set__get(&set, "a") == NULL);
	CHECK_STR(label_set__get(&copy, "__meta_x"), "m");
	CHECK(label_name_is_valid("_a1") && !label_name_is_valid("1a") &&
	      !label_name_is_valid("") && !label_name_is_valid("a.b"));
	label_set__clear(&set);
	label_set__clear(&copy);
}

TEST_MAIN("relabel", TEST(test_cases), TEST(test_bad_rules), TEST(test_match_limit),
	  TEST(test_hostile_values), TEST(test_label_set))
