// SPDX-License-Identifier: Apache-2.0
/*
 * CPython code objects: every interpreter of this machine (pyenv's 3.6 to
 * 3.13, Debian's 3.11) runs tests/fixtures/python/code_objects.py, which
 * prints its code objects, the line of each of their instruction indexes
 * and its live frames as the interpreter itself maps them, then waits; each
 * is resolved through the cache and compared. The process exiting is a
 * counted failure. Then objects forged in this test's own memory, read back
 * the same way: each line table format by hand, an address reused by
 * another code object, hostile lengths, types and tables, and eviction.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/python/python_code.h"
#include "tests/unit/testing.h"

#ifndef FIXTURE_SOURCE_DIR
#define FIXTURE_SOURCE_DIR "tests/fixtures"
#endif

/* What the script printed: code objects, instruction lines, live frames. */
struct expected_code {
	uint64_t address;
	uint32_t first_line;
	char *function;
	char *file;
};

struct expected_line {
	uint64_t address;
	uint32_t index;
	uint32_t line;
	bool frame;
};

struct expected {
	struct expected_code *codes;
	size_t code_count;
	struct expected_line *lines;
	size_t line_count;
	unsigned minor;
};

static void expected_free(struct expected *expected)
{
	for (size_t i = 0; i < expected->code_count; i++) {
		free(expected->codes[i].function);
		free(expected->codes[i].file);
	}
	free(expected->codes);
	free(expected->lines);
}

/* Splits a tab-separated line in place into at most max fields. */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t count = 0;

	line[strcspn(line, "\n")] = '\0';
	while (count < max) {
		fields[count++] = line;
		line = strchr(line, '\t');
		if (!line)
			break;
		*line++ = '\0';
	}
	return count;
}

/* Reads the script's lines up to "ready". Returns 0, or -1 if it ended first. */
static int read_expected(FILE *in, struct expected *expected)
{
	char *line = NULL, *fields[5];
	size_t size = 0;
	int err = -1;

	while (getline(&line, &size, in) > 0) {
		size_t count = split_fields(line, fields, 5);

		if (!strcmp(fields[0], "ready") && count == 2) {
			expected->minor = (unsigned)strtoul(fields[1], NULL, 10);
			err = 0;
			break;
		}
		if (!strcmp(fields[0], "code") && count == 5) {
			expected->codes = realloc(expected->codes, (expected->code_count +
								    1) * sizeof(*expected->codes));
			expected->codes[expected->code_count++] = (struct expected_code){
				.address = strtoull(fields[1], NULL, 10),
				.first_line = (uint32_t)strtoul(fields[2], NULL, 10),
				.function = strdup(fields[3]),
				.file = strdup(fields[4]),
			};
		} else if ((!strcmp(fields[0], "line") || !strcmp(fields[0], "frame")) &&
			   count == 4) {
			expected->lines = realloc(expected->lines, (expected->line_count +
								    1) * sizeof(*expected->lines));
			expected->lines[expected->line_count++] = (struct expected_line){
				.address = strtoull(fields[1], NULL, 10),
				.index = (uint32_t)strtoul(fields[2], NULL, 10),
				.line = (uint32_t)strtoul(fields[3], NULL, 10),
				.frame = fields[0][0] == 'f',
			};
		}
	}
	free(line);
	return err;
}

struct child {
	pid_t pid;
	FILE *out; /* its stdout */
	int in; /* its stdin */
};

/* Starts python on script, its stdin and stdout piped to us. */
static int child_start(const char *python, const char *script, struct child *ret_child)
{
	int to_child[2], from_child[2];
	pid_t pid;

	if (pipe(to_child) || pipe(from_child))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		close(to_child[1]);
		close(from_child[0]);
		setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
		unsetenv("PYTHONPATH");
		unsetenv("PYTHONHOME");
		execl(python, python, "-E", script, (char *)NULL);
		_exit(127);
	}
	close(to_child[0]);
	close(from_child[1]);
	*ret_child =
		(struct child){ .pid = pid, .out = fdopen(from_child[0], "r"), .in = to_child[1] };
	return 0;
}

/* Lets the script return from its wait and reaps it. */
static void child_finish(struct child *child)
{
	int status;

	if (write(child->in, "\n", 1) != 1)
		kill(child->pid, SIGKILL);
	close(child->in);
	fclose(child->out);
	waitpid(child->pid, &status, 0);
}

static bool has_function(const struct expected *expected, const char *name)
{
	for (size_t i = 0; i < expected->code_count; i++)
		if (!strcmp(expected->codes[i].function, name))
			return true;
	return false;
}

/* Every code object's names, every instruction's line, every frame's line. */
static void check_against(struct python_code_cache *cache, pid_t pid, const char *label,
			  const struct expected *expected)
{
	struct python_frame_info info;
	size_t wrong_lines = 0, frames = 0;

	for (size_t i = 0; i < expected->code_count; i++) {
		const struct expected_code *code = &expected->codes[i];
		int err = python_code_cache__resolve(cache, pid, expected->minor, code->address, 0,
						     &info);

		CHECK(err == 0);
		if (err) {
			fprintf(stderr, "%s: %s: %s\n", label, code->function, strerror(-err));
			continue;
		}
		CHECK_STR(info.function, code->function);
		CHECK_STR(info.file, code->file);
		CHECK(info.first_line == code->first_line);
	}
	for (size_t i = 0; i < expected->line_count; i++) {
		const struct expected_line *want = &expected->lines[i];
		int err = python_code_cache__resolve(cache, pid, expected->minor, want->address,
						     want->index, &info);

		frames += want->frame;
		if (err == 0 && info.line == want->line)
			continue;
		if (wrong_lines++ < 5)
			fprintf(stderr, "%s: code %#llx index %u: %s line %u, want %u%s\n", label,
				(unsigned long long)want->address, want->index,
				err ? strerror(-err) : "", err ? 0 : info.line, want->line,
				want->frame ? " (a live frame)" : "");
	}
	CHECK(wrong_lines == 0);
	/* The chain below report: 𠀀, 関数, grüße, long_function, method, <module>. */
	CHECK(frames == 6);
}

/* Runs one interpreter on the script and checks all it prints. */
static void check_interpreter(const char *python, unsigned minor)
{
	char dir[] = "/tmp/kiln-python-code-XXXXXX", script[PATH_MAX], label[64];
	struct python_code_cache *cache = python_code_cache__new(0);
	struct python_code_stats stats;
	struct expected expected = { 0 };
	struct python_frame_info info;
	struct child child = { 0 };

	snprintf(label, sizeof(label), "3.%u (%s)", minor, python);
	if (!cache || !mkdtemp(dir)) {
		fprintf(stderr, "%s: %s\n", label, strerror(errno));
		CHECK(false);
		python_code_cache__free(cache);
		return;
	}
	/* A latin-1 file name: co_filename is a compact str of kind 1, not ASCII. */
	snprintf(script, sizeof(script),
		 "%s/k\xc3\xafln_c\xc3\xb6"
		 "de.py",
		 dir);
	if (symlink(FIXTURE_SOURCE_DIR "/python/code_objects.py", script) ||
	    child_start(python, script, &child)) {
		fprintf(stderr, "%s: cannot start: %s\n", label, strerror(errno));
		CHECK(false);
		unlink(script);
		rmdir(dir);
		python_code_cache__free(cache);
		return;
	}
	CHECK(read_expected(child.out, &expected) == 0);
	CHECK(expected.minor == minor);
	CHECK(expected.code_count > 10);
	CHECK(has_function(&expected, minor >= 11 ? "Outer.method" : "method"));
	CHECK(has_function(&expected, "gr\xc3\xbc\xc3\x9f"
				      "e")); /* latin-1 */
	CHECK(has_function(&expected, "\xe9\x96\xa2\xe6\x95\xb0")); /* UCS-2 */
	CHECK(has_function(&expected, "\xf0\xa0\x80\x80")); /* UCS-4 */
	CHECK(expected.code_count && strstr(expected.codes[0].file, script));

	check_against(cache, child.pid, label, &expected);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.entries == expected.code_count);
	CHECK(stats.hits == stats.resolutions - expected.code_count);
	CHECK(stats.failed_read + stats.failed_not_code + stats.failed_string +
		      stats.failed_line_table ==
	      0);
	printf("     %s: %zu code objects, %zu lines checked, %llu KiB cached\n", label,
	       expected.code_count, expected.line_count, (unsigned long long)stats.bytes >> 10);

	python_code_cache__forget_process(cache, child.pid);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.entries == 0 && stats.processes == 0 && stats.bytes == 0);

	/* Gone: a counted failure, not a crash. */
	child_finish(&child);
	if (expected.code_count)
		CHECK(python_code_cache__resolve(cache, child.pid, minor, expected.codes[0].address,
						 0, &info) == -ESRCH);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.failed_read == 1);

	unlink(script);
	rmdir(dir);
	expected_free(&expected);
	python_code_cache__free(cache);
}

/* $(pyenv root), else ~/.pyenv. */
static void pyenv_root(char *root, size_t size)
{
	FILE *pipe = popen("pyenv root 2>/dev/null", "r");

	root[0] = '\0';
	if (pipe) {
		if (!fgets(root, (int)size, pipe))
			root[0] = '\0';
		pclose(pipe);
	}
	root[strcspn(root, "\n")] = '\0';
	if (!root[0])
		snprintf(root, size, "%s/.pyenv", getenv("HOME") ? getenv("HOME") : "/root");
}

static void test_every_interpreter(void)
{
	char root[PATH_MAX], pattern[PATH_MAX + 64];

	pyenv_root(root, sizeof(root));
	for (unsigned minor = 6; minor <= 13; minor++) {
		glob_t found;

		snprintf(pattern, sizeof(pattern), "%s/versions/3.%u.*/bin/python3", root, minor);
		if (glob(pattern, 0, NULL, &found) == 0) {
			check_interpreter(found.gl_pathv[0], minor);
			globfree(&found);
		} else {
			printf("skip 3.%u: no %s\n", minor, pattern);
		}
	}
	if (access("/usr/bin/python3.11", X_OK) == 0)
		check_interpreter("/usr/bin/python3.11", 11);
	else
		printf("skip Debian's 3.11: no /usr/bin/python3.11\n");
}

/*
 * Objects forged in this process, in a version's layout, for cases no
 * interpreter makes on demand. Types are named as CPython names them.
 */
struct forged_type {
	uint8_t bytes[176];
};

static struct forged_type code_type, str_type, bytes_type, other_type;

static void forge_type(struct forged_type *type, const char *name, uint64_t flags)
{
	uint64_t name_addr = (uintptr_t)name;

	memset(type, 0, sizeof(*type));
	memcpy(type->bytes + 24, &name_addr, 8);
	memcpy(type->bytes + 168, &flags, 8);
}

static void forge_types(void)
{
	forge_type(&code_type, "code", 0);
	forge_type(&str_type, "str", 1ul << 28);
	forge_type(&bytes_type, "bytes", 1ul << 27);
	forge_type(&other_type, "dict", 1ul << 29);
}

static void put_u64(uint8_t *object, size_t offset, uint64_t value)
{
	memcpy(object + offset, &value, 8);
}

static void put_type(uint8_t *object, const struct forged_type *type)
{
	put_u64(object, 8, (uintptr_t)type);
}

/* A compact str: ASCII after a header of ascii_size, else UCS-2 after one of compact_size. */
struct forged_str {
	uint8_t bytes[4096 + 72];
};

static void forge_ascii(struct forged_str *str, size_t ascii_size, const char *text)
{
	memset(str, 0, sizeof(*str));
	put_type(str->bytes, &str_type);
	put_u64(str->bytes, 16, strlen(text));
	str->bytes[32] = 0x20 | 0x40 | 1 << 2; /* compact, ascii, kind 1 */
	memcpy(str->bytes + ascii_size, text, strlen(text));
}

static void forge_ucs2(struct forged_str *str, size_t compact_size, const uint16_t *text,
		       size_t length)
{
	memset(str, 0, sizeof(*str));
	put_type(str->bytes, &str_type);
	put_u64(str->bytes, 16, length);
	str->bytes[32] = 0x20 | 2 << 2; /* compact, kind 2 */
	memcpy(str->bytes + compact_size, text, length * 2);
}

struct forged_bytes {
	uint8_t bytes[32 + 256];
};

static void forge_bytes(struct forged_bytes *object, const uint8_t *data, size_t len)
{
	memset(object, 0, sizeof(*object));
	put_type(object->bytes, &bytes_type);
	put_u64(object->bytes, 16, len);
	memcpy(object->bytes + 32, data, len);
}

struct forged_code {
	uint8_t bytes[256];
};

/* Offsets as CPython's headers give them (the module's table, written again). */
struct forged_layout {
	unsigned minor;
	size_t first_line, filename, name, qualname, line_table, ascii_size, compact_size;
};

static const struct forged_layout layout_3_8 = { 8, 40, 104, 112, 0, 120, 48, 72 };
static const struct forged_layout layout_3_10 = { 10, 40, 104, 112, 0, 120, 48, 72 };
static const struct forged_layout layout_3_12 = { 12, 68, 112, 120, 128, 136, 40, 56 };

static struct forged_str name_str, file_str;
static struct forged_bytes table_bytes;

static void forge_code(struct forged_code *code, const struct forged_layout *layout,
		       int32_t first_line, const uint8_t *table, size_t table_len)
{
	memset(code, 0, sizeof(*code));
	put_type(code->bytes, &code_type);
	memcpy(code->bytes + layout->first_line, &first_line, 4);
	forge_ascii(&name_str, layout->ascii_size, "Forged.function");
	forge_ascii(&file_str, layout->ascii_size, "/forged/file.py");
	forge_bytes(&table_bytes, table, table_len);
	put_u64(code->bytes, layout->filename, (uintptr_t)&file_str);
	put_u64(code->bytes, layout->name, (uintptr_t)&name_str);
	if (layout->qualname)
		put_u64(code->bytes, layout->qualname, (uintptr_t)&name_str);
	put_u64(code->bytes, layout->line_table, (uintptr_t)&table_bytes);
}

/* The line resolve gives for index, or -1 on failure. */
static long line_at(struct python_code_cache *cache, unsigned minor, const struct forged_code *code,
		    uint32_t index)
{
	struct python_frame_info info;

	if (python_code_cache__resolve(cache, getpid(), minor, (uintptr_t)code, index, &info))
		return -1;
	return info.line;
}

/* 3.8's co_lnotab: offsets in bytes, signed line increments, several pairs for a long jump. */
static void test_lnotab(void)
{
	static const uint8_t table[] = { 6, 1, 4, 0xff, 0, 2, 255, 0, 10, 5 };
	struct python_code_cache *cache = python_code_cache__new(0);
	struct forged_code code;

	forge_types();
	forge_code(&code, &layout_3_8, 10, table, sizeof(table));
	CHECK(line_at(cache, 8, &code, 0) == 10);
	CHECK(line_at(cache, 8, &code, 2) == 10); /* byte 4 */
	CHECK(line_at(cache, 8, &code, 3) == 11); /* byte 6 */
	CHECK(line_at(cache, 8, &code, 5) == 12); /* byte 10: -1 then +2 */
	CHECK(line_at(cache, 8, &code, 132) == 12); /* byte 264 */
	CHECK(line_at(cache, 8, &code, 133) == 12); /* byte 266: past 265, no increment */
	CHECK(line_at(cache, 8, &code, 138) == 17); /* byte 276: past 275 */
	python_code_cache__free(cache);
}

/* 3.10's co_linetable: byte ranges, -128 for none, empty ranges that only move the line. */
static void test_pep626(void)
{
	static const uint8_t table[] = { 4, 1, 2, 0x80, 0, 3, 6, 0xfe };
	struct python_code_cache *cache = python_code_cache__new(0);
	struct forged_code code;

	forge_types();
	forge_code(&code, &layout_3_10, 20, table, sizeof(table));
	CHECK(line_at(cache, 10, &code, 0) == 21);
	CHECK(line_at(cache, 10, &code, 1) == 21);
	CHECK(line_at(cache, 10, &code, 2) == 0); /* no line */
	CHECK(line_at(cache, 10, &code, 3) == 22); /* 21 + 3 - 2 */
	CHECK(line_at(cache, 10, &code, 5) == 22);
	CHECK(line_at(cache, 10, &code, 6) == 0); /* past the table */
	python_code_cache__free(cache);
}

/* 3.11+'s location table: each kind of entry, in code units. */
static const uint8_t locations[] = {
	0x80 | 13 << 3 | 1,
	4, /* no columns, +2, units 0-1 */
	0x80 | 15 << 3 | 0, /* no location, unit 2 */
	0x80 | 14 << 3 | 0,
	3,
	0,
	0x41,
	0x01,
	7, /* long, -1, end line, columns (a 2-byte varint) */
	0x80 | 11 << 3 | 2,
	5,
	9, /* one line, +1, units 4-6 */
	0x80 | 0 << 3 | 0,
	0x12, /* short, same line, unit 7 */
	0x80 | 13 << 3 | 0,
	0x41,
	0x02, /* no columns, -64 (see below), unit 8 */
};

static void test_locations(void)
{
	struct python_code_cache *cache = python_code_cache__new(0);
	struct forged_code code;

	forge_types();
	forge_code(&code, &layout_3_12, 100, locations, sizeof(locations));
	CHECK(line_at(cache, 12, &code, 0) == 102);
	CHECK(line_at(cache, 12, &code, 1) == 102);
	CHECK(line_at(cache, 12, &code, 2) == 0);
	CHECK(line_at(cache, 12, &code, 3) == 101);
	CHECK(line_at(cache, 12, &code, 4) == 102);
	CHECK(line_at(cache, 12, &code, 6) == 102);
	CHECK(line_at(cache, 12, &code, 7) == 102);
	/* varint 0x41 0x02: 1 | 2 << 6 = 129, odd: -(129 >> 1) = -64. */
	CHECK(line_at(cache, 12, &code, 8) == 38);
	CHECK(line_at(cache, 12, &code, 9) == 0); /* past the table */
	python_code_cache__free(cache);
}

/* A code object freed and another allocated at its address: the cached one is not served. */
static void test_address_reused(void)
{
	static const uint16_t ucs2_name[] = { 0x95a2, 0x6570 }; /* 関数 */
	struct python_code_cache *cache = python_code_cache__new(0);
	struct python_code_stats stats;
	struct python_frame_info info;
	struct forged_code code;
	int32_t first_line = 500;

	forge_types();
	forge_code(&code, &layout_3_12, 100, locations, sizeof(locations));
	CHECK(line_at(cache, 12, &code, 0) == 102);
	CHECK(line_at(cache, 12, &code, 0) == 102);
	memcpy(code.bytes + layout_3_12.first_line, &first_line, 4);
	forge_ucs2(&name_str, layout_3_12.compact_size, ucs2_name, 2);
	CHECK(python_code_cache__resolve(cache, getpid(), 12, (uintptr_t)&code, 0, &info) == 0);
	CHECK(info.line == 502 && info.first_line == 500);
	CHECK_STR(info.function, "\xe9\x96\xa2\xe6\x95\xb0");
	python_code_cache__stats(cache, &stats);
	CHECK(stats.resolutions == 3 && stats.hits == 1 && stats.reread == 1);
	CHECK(stats.entries == 1);
	python_code_cache__free(cache);
}

/* With windows, an entry is checked once a window: a change shows in the next. */
static void test_windows(void)
{
	struct python_code_cache *cache = python_code_cache__new(0);
	struct python_code_stats stats;
	struct forged_code code;
	int32_t first_line = 500;

	forge_types();
	forge_code(&code, &layout_3_12, 100, locations, sizeof(locations));
	python_code_cache__begin_window(cache);
	CHECK(line_at(cache, 12, &code, 0) == 102);
	CHECK(line_at(cache, 12, &code, 0) == 102);
	memcpy(code.bytes + layout_3_12.first_line, &first_line, 4);
	CHECK(line_at(cache, 12, &code, 0) == 102); /* trusted until the window ends */
	python_code_cache__stats(cache, &stats);
	CHECK(stats.hits == 2 && stats.hits_unchecked == 2 && stats.reread == 0);
	python_code_cache__begin_window(cache);
	CHECK(line_at(cache, 12, &code, 0) == 502);
	CHECK(line_at(cache, 12, &code, 0) == 502);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.hits == 3 && stats.hits_unchecked == 3 && stats.reread == 1);
	python_code_cache__free(cache);
}

/* Resolving forged code with one part spoiled: the error and its counter. */
static int resolve_spoiled(struct python_code_cache *cache, const struct forged_code *code,
			   uint32_t index)
{
	struct python_frame_info info;

	return python_code_cache__resolve(cache, getpid(), 12, (uintptr_t)code, index, &info);
}

static void test_hostile(void)
{
	static const uint8_t no_entry_bit[] = { 0x80 | 13 << 3, 2, 0x12 };
	static const uint8_t endless_varint[] = { 0x80 | 13 << 3, 0x40, 0x40, 0x40 };
	static const uint8_t varint_too_long[] = { 0x80 | 13 << 3, 0x7f, 0x7f, 0x7f, 0x7f,
						   0x7f,	   0x7f, 0x7f, 0x01 };
	struct python_code_cache *cache = python_code_cache__new(0);
	struct python_code_stats stats;
	struct python_frame_info info;
	struct forged_code code;

	forge_types();
	/* A str longer than the bound, then one not compact, then one of another type. */
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	put_u64(name_str.bytes, 16, 1u << 30);
	CHECK(resolve_spoiled(cache, &code, 0) == -EBADMSG);
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	name_str.bytes[32] &= (uint8_t)~0x20;
	CHECK(resolve_spoiled(cache, &code, 0) == -EBADMSG);
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	put_type(file_str.bytes, &other_type);
	CHECK(resolve_spoiled(cache, &code, 0) == -EBADMSG);
	/* ASCII claimed, a byte not ASCII. */
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	name_str.bytes[layout_3_12.ascii_size] = 0xe9;
	CHECK(resolve_spoiled(cache, &code, 0) == -EBADMSG);

	/* Line tables: too long, not bytes, malformed. */
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	put_u64(table_bytes.bytes, 16, 1u << 20);
	CHECK(resolve_spoiled(cache, &code, 0) == -EILSEQ);
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	put_u64(table_bytes.bytes, 16, UINT64_MAX);
	CHECK(resolve_spoiled(cache, &code, 0) == -EILSEQ);
	forge_code(&code, &layout_3_12, 1, locations, sizeof(locations));
	put_type(table_bytes.bytes, &str_type);
	CHECK(resolve_spoiled(cache, &code, 0) == -EILSEQ);
	forge_code(&code, &layout_3_12, 1, no_entry_bit, sizeof(no_entry_bit));
	CHECK(resolve_spoiled(cache, &code, 0) == 0);
	CHECK(resolve_spoiled(cache, &code, 1) == -EILSEQ);
	/* Each with another first line: the same pointers would otherwise be a cache hit. */
	forge_code(&code, &layout_3_12, 2, endless_varint, sizeof(endless_varint));
	CHECK(resolve_spoiled(cache, &code, 0) == -EILSEQ);
	forge_code(&code, &layout_3_12, 3, varint_too_long, sizeof(varint_too_long));
	CHECK(resolve_spoiled(cache, &code, 0) == -EILSEQ);

	/* Not a code object: another type, then an address with nothing there. */
	forge_code(&code, &layout_3_12, 4, locations, sizeof(locations));
	put_type(code.bytes, &other_type);
	CHECK(resolve_spoiled(cache, &code, 0) == -EINVAL);
	CHECK(python_code_cache__resolve(cache, getpid(), 12, 4096, 0, &info) == -EFAULT);
	CHECK(python_code_cache__resolve(cache, getpid(), 5, (uintptr_t)&code, 0, &info) ==
	      -ENOTSUP);

	python_code_cache__stats(cache, &stats);
	CHECK(stats.failed_string == 4);
	CHECK(stats.failed_line_table == 6);
	CHECK(stats.failed_not_code == 1);
	CHECK(stats.failed_read == 1);
	CHECK(stats.failed_version == 1);
	CHECK(stats.resolutions == 14);
	python_code_cache__free(cache);

	/* A process whose every resolution fails is not kept. */
	cache = python_code_cache__new(0);
	CHECK(resolve_spoiled(cache, &code, 0) == -EINVAL);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.processes == 0 && stats.bytes == 0);
	python_code_cache__free(cache);
}

/* Past max_bytes the least recently used go, counted; forgetting the process empties it. */
static void test_eviction(void)
{
	enum { COUNT = 16 };
	static struct forged_code codes[COUNT];
	struct python_code_cache *cache = python_code_cache__new(2000);
	struct python_code_stats stats;

	forge_types();
	for (int i = 0; i < COUNT; i++) {
		forge_code(&codes[i], &layout_3_12, 100 + i, locations, sizeof(locations));
		CHECK(line_at(cache, 12, &codes[i], 0) == 102 + i);
	}
	python_code_cache__stats(cache, &stats);
	CHECK(stats.evicted > 0);
	CHECK(stats.bytes <= 2000);
	CHECK(stats.entries + stats.evicted == COUNT);
	/* The most recent is held, the first is read again. */
	CHECK(line_at(cache, 12, &codes[COUNT - 1], 1) == 102 + COUNT - 1);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.hits == 1);
	CHECK(line_at(cache, 12, &codes[0], 0) == 102);
	python_code_cache__stats(cache, &stats);
	CHECK(stats.hits == 1);

	python_code_cache__forget_process(cache, getpid());
	python_code_cache__stats(cache, &stats);
	CHECK(stats.entries == 0 && stats.bytes == 0 && stats.processes == 0);
	python_code_cache__free(cache);
}

TEST_MAIN("python_code", TEST(test_every_interpreter), TEST(test_lnotab), TEST(test_pep626),
	  TEST(test_locations), TEST(test_address_reused), TEST(test_windows), TEST(test_hostile),
	  TEST(test_eviction))
