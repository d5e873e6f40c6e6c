// SPDX-License-Identifier: Apache-2.0
/* The spool's record format: labels round trip, and malformed records refused. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/array.h"
#include "agent/push/record.h"
#include "tests/unit/testing.h"

static void test_profile_labels_round_trip(void)
{
	struct push_record in = {
		.off_cpu = true,
		.pid = 4242,
		.comm = "web worker\n=1",
		.service_name = "checkout",
		.hostname = "node-7.example",
		.start_ns = 1795281900123456789LL,
		.duration_ns = 10000000000LL,
	}, out;
	char text[1024];

	CHECK(push_record__format(&in, text, sizeof(text)) == 0);
	CHECK(push_record_parse(text, &out) == 0);
	CHECK(out.off_cpu && out.pid == 4242 && out.start_ns == in.start_ns &&
	      out.duration_ns == in.duration_ns);
	/* Kept on one line: control characters and spaces become '_'. */
	CHECK_STR(out.comm, "web_worker_=1");
	CHECK_STR(out.service_name, "checkout");
	CHECK_STR(out.hostname, "node-7.example");
	CHECK(push_record_parse("kind=cpu\npid=1\n", &out) == -EINVAL);
	CHECK(push_record_parse("garbage", &out) == -EINVAL);
}

static const char valid[] = "kind=cpu\npid=7\ncomm=sh\nservice_name=sh\nhostname=h\n"
			    "start_ns=1\nduration_ns=2\n";

static void test_labels_round_trip(void)
{
	struct push_record in = { .pid = 3, .comm = "a", .service_name = "a", .hostname = "h" };
	struct push_record out;
	char long_value[400], text[PUSH_RECORD_TEXT_MAX];

	CHECK(push_record__add_label(&in, "cmdline", "python3 -m http.server 100%") == 0);
	CHECK(push_record__add_label(&in, "team", "caf\xc3\xa9\nline=2") == 0);
	CHECK(push_record__add_label(&in, "bad-name", "x") == -EINVAL);
	CHECK(push_record__add_label(&in, "", "x") == -EINVAL);
	/* Cut to fit, between characters: 'é' is two bytes, not split. */
	memset(long_value, 'a', sizeof(long_value));
	memcpy(long_value + PUSH_LABEL_VALUE_SIZE - 2, "\xc3\xa9", 2);
	long_value[sizeof(long_value) - 1] = '\0';
	CHECK(push_record__add_label(&in, "long", long_value) == 1);
	CHECK(strlen(push_record__label(&in, "long")) == PUSH_LABEL_VALUE_SIZE - 2);
	CHECK(push_record__format(&in, text, sizeof(text)) == 0);
	/* One line each: the newline and the '%' are escaped. */
	CHECK(strstr(text, "label.team=caf%C3%A9%0Aline=2\n") != NULL);
	CHECK(strstr(text, "label.cmdline=python3 -m http.server 100%25\n") != NULL);
	CHECK(push_record_parse(text, &out) == 0);
	CHECK(out.label_count == 3);
	CHECK_STR(push_record__label(&out, "cmdline"), "python3 -m http.server 100%");
	CHECK_STR(push_record__label(&out, "team"), "caf\xc3\xa9\nline=2");
	CHECK_STR(push_record__label(&out, "long"), push_record__label(&in, "long"));
	CHECK(push_record__label(&out, "nope") == NULL);
}

static void test_labels_bounded(void)
{
	struct push_record record = {};
	char name[16];

	for (int i = 0; i < PUSH_RECORD_MAX_LABELS; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		CHECK(push_record__add_label(&record, name, "v") == 0);
	}
	CHECK(push_record__add_label(&record, "one_more", "v") == -ENOSPC);
	CHECK(record.label_count == PUSH_RECORD_MAX_LABELS);
}

static void test_labels_malformed(void)
{
	static const char *const lines[] = {
		"label.a=%", "label.a=%4",	 "label.a=%zz",		 "label.a=%00",
		"label.a=",  "label.bad-name=x", "label.a=x\nlabel.a=y",
	};
	struct push_record out;
	char text[512];

	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		snprintf(text, sizeof(text), "%s%s\n", valid, lines[i]);
		CHECK(push_record_parse(text, &out) == -EINVAL);
	}
	snprintf(text, sizeof(text), "%slabel.a=%%41b\n", valid);
	CHECK(push_record_parse(text, &out) == 0);
	CHECK(out.label_count == 1 && !strcmp(out.labels[0].value, "Ab"));
}

static void test_sanitize(void)
{
	char out[16];

	push_label_sanitize("a,b{c}d=e", ",{}=", out, sizeof(out));
	CHECK_STR(out, "a_b_c_d_e");
	push_label_sanitize("\xc3\xa9t\xe9", "", out, sizeof(out));
	CHECK_STR(out, "__t_");
	push_label_sanitize("", "", out, sizeof(out));
	CHECK_STR(out, "unknown");
	push_label_sanitize("0123456789abcdefghij", "", out, sizeof(out));
	CHECK_STR(out, "0123456789abcde");
}

static void test_parse_valid_and_extensible(void)
{
	struct push_record out;
	char text[512];

	CHECK(push_record_parse(valid, &out) == 0);
	CHECK(!out.off_cpu && out.pid == 7 && out.start_ns == 1 && out.duration_ns == 2);
	CHECK_STR(out.comm, "sh");
	/* Keys a newer kiln adds are skipped; the last line needs no newline. */
	snprintf(text, sizeof(text), "%sfuture=1\nduration_ns=3", valid);
	CHECK(push_record_parse(text, &out) == 0);
	CHECK(out.duration_ns == 3);
}

static void test_parse_rejects_malformed(void)
{
	static const struct {
		const char *from, *to; /* valid with from replaced by to */
	} cases[] = {
		{ "kind=cpu", "kind=gpu" },
		{ "kind=cpu\n", "" }, /* a field missing */
		{ "pid=7", "pid=0" },
		{ "pid=7", "pid=-7" },
		{ "pid=7", "pid=4294967296" },
		{ "pid=7", "pid=7x" },
		{ "pid=7", "pid=" },
		{ "start_ns=1", "start_ns=99999999999999999999" },
		{ "duration_ns=2", "duration_ns=-2" },
		{ "hostname=h", "hostname" }, /* no '=' */
		{ "comm=sh", "comm=0123456789012345678901234567890123" }, /* over comm[32] */
	};
	struct push_record out = { .pid = 99 };

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[512];
		const char *at = strstr(valid, cases[i].from);

		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - valid), valid, cases[i].to,
			 at + strlen(cases[i].from));
		if (push_record_parse(text, &out) != -EINVAL)
			fprintf(stderr, "accepted: %s\n", text);
		CHECK(push_record_parse(text, &out) == -EINVAL);
	}
	/* A value too long for any field, and a key too long to be one. */
	char text[1024];

	snprintf(text, sizeof(text), "%shostname=%0300d\n", valid, 0);
	CHECK(push_record_parse(text, &out) == -EINVAL);
	snprintf(text, sizeof(text), "%s%080d=1\n", valid, 0);
	CHECK(push_record_parse(text, &out) == -EINVAL);
	CHECK(push_record_parse("", &out) == -EINVAL);
	/* Untouched on failure. */
	CHECK(out.pid == 99);
}

/* A whole window's request (OTLP) has pid 0, and says what its payload is. */
static void test_window_request_round_trip(void)
{
	const struct push_record in = { .window_request = true,
					.comm = "12",
					.service_name = "kiln",
					.hostname = "h",
					.start_ns = 5,
					.duration_ns = 6 };
	struct push_record out = {};
	char text[PUSH_RECORD_TEXT_MAX], *payload;

	CHECK(push_record__format(&in, text, sizeof(text)) == 0);
	CHECK(push_record_parse(text, &out) == 0);
	CHECK(out.window_request && out.pid == 0 && out.start_ns == 5);
	CHECK_STR(out.comm, "12");
	/* Without its payload line, pid 0 is no process's. */
	payload = strstr(text, "payload=otlp_request\n");
	CHECK(payload != NULL);
	if (payload)
		memmove(payload, payload + strlen("payload=otlp_request\n"),
			strlen(payload + strlen("payload=otlp_request\n")) + 1);
	CHECK(push_record_parse(text, &out) == -EINVAL);
	CHECK(push_record_parse("kind=cpu\npid=1\ncomm=a\nservice_name=a\nhostname=h\n"
				"start_ns=1\nduration_ns=1\npayload=json\n",
				&out) == -EINVAL);
}

static void test_format_too_small(void)
{
	const struct push_record in = { .pid = 1, .comm = "a", .hostname = "h" };
	char text[1024];

	CHECK(push_record__format(&in, text, 40) == -ENAMETOOLONG);
	CHECK(push_record__format(&in, text, sizeof(text)) == 0);
}

TEST_MAIN("record", TEST(test_profile_labels_round_trip), TEST(test_labels_round_trip),
	  TEST(test_labels_bounded), TEST(test_labels_malformed), TEST(test_sanitize),
	  TEST(test_parse_valid_and_extensible), TEST(test_parse_rejects_malformed),
	  TEST(test_window_request_round_trip), TEST(test_format_too_small))
